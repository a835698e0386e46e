"""Breaking the roles service on purpose: SIGTERM under load, the database gone, oversized requests."""

import asyncio
import signal
import time
from collections import Counter

import grpc
import pytest
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.company import ROOT_UNIT, person_in_root
from tests.support.events import published
from tests.support.grpc_errors import call_error
from tests.support.processes import PostgresServer, RolesProcess
from tests.support.waiting import eventually


def person(i: int) -> directory_pb2.CreatePersonRequest:
    return person_in_root(f"F{i:05d}")


async def test_sigterm_during_200_calls_fails_none_and_health_turns_first(tmp_path, mint, nats_server, scenario):
    scenario.load = "200 concurrent CreatePerson (SQLite)"
    scenario.faults = "SIGTERM mid-load; NOT_SERVING seen, then a new call answered while draining"
    service = RolesProcess(
        f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        nats_server.url,
        mint,
        tmp_path,
        ENGAGE_DRAIN_SECONDS="1.5",
        ENGAGE_GRACE_SECONDS="10",
    )
    service.migrate()
    service.start()
    admin = mint.metadata("hr", roles=["hr_admin"])
    try:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            await stub.CreateOrgUnit(ROOT_UNIT, metadata=admin, timeout=10)
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="readiness"), timeout=30
            )
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            calls = [
                asyncio.ensure_future(stub.CreatePerson(person(i), metadata=admin, timeout=30)) for i in range(200)
            ]
            service.signal(signal.SIGTERM)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            # NOT_SERVING came first: the listener still takes a new call while it drains.
            await stub.ListPeople(directory_pb2.ListPeopleRequest(page_size=1), metadata=admin, timeout=5)
            results = await asyncio.gather(*calls, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert service.wait(timeout=30) == 0
    finally:
        service.stop()
    events = await published(nats_server.url)
    created = Counter(e.subject for e in events if e.type == "engage.roles.v1.person.created")
    scenario.count([f"people/{person(i).person_id}" for i in range(200)], created.elements())
    assert len(created) == 200 and set(created.values()) == {1}


@pytest.fixture
def own_postgres():
    server = PostgresServer()
    server.init()
    server.start()
    yield server
    server.remove()


async def test_database_down_fails_fast_with_unavailable_and_recovers_without_restart(
    tmp_path, mint, nats_server, own_postgres, scenario
):
    scenario.load, scenario.faults = "7 CreatePerson (PostgreSQL)", "PostgreSQL stopped (immediate), restarted"
    service = RolesProcess(own_postgres.url, nats_server.url, mint, tmp_path)
    service.migrate()
    service.start()
    admin = mint.metadata("hr", roles=["hr_admin"])
    try:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            await stub.CreateOrgUnit(ROOT_UNIT, metadata=admin, timeout=10)
            await stub.CreatePerson(person(1), metadata=admin, timeout=10)
            own_postgres.stop("immediate")
            started = time.monotonic()
            for i in range(2, 7):
                err = await call_error(stub.CreatePerson(person(i), metadata=admin, timeout=20))
                assert err.code == grpc.StatusCode.UNAVAILABLE, err
            assert time.monotonic() - started < 15  # fails fast, no hanging
            health = health_pb2_grpc.HealthStub(channel)
            await eventually(
                lambda: health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5),
                lambda h: h.status == health_pb2.HealthCheckResponse.NOT_SERVING,
                what="readiness to report the database down",
            )
            own_postgres.start()
            # Same process, no restart: calls succeed again once the database is back.
            await eventually(
                lambda: _try(stub.CreatePerson(person(7), metadata=admin, timeout=5)),
                lambda ok: ok,
                timeout=30,
                what="a write to succeed after recovery",
            )
            people = await stub.ListPeople(directory_pb2.ListPeopleRequest(page_size=100), metadata=admin, timeout=5)
            # Nothing half written: exactly the calls that succeeded.
            assert sorted(p.name for p in people.people) == ["people/F00001", "people/F00007"]
    finally:
        service.stop()
    events = await eventually(
        lambda: published(nats_server.url),
        lambda ev: sum(e.type == "engage.roles.v1.person.created" for e in ev) == 2,
        what="exactly the two committed people as events",
    )
    scenario.count(["people/F00001", "people/F00007"], [e.subject for e in events if e.type.endswith("person.created")])
    assert {e.subject for e in events if e.type == "engage.roles.v1.person.created"} == {
        "people/F00001",
        "people/F00007",
    }


async def _try(call) -> bool:
    try:
        await call
        return True
    except grpc.aio.AioRpcError:
        return False


async def test_an_oversized_request_gets_a_clear_error_and_the_service_carries_on(roles, scenario):
    scenario.load, scenario.faults = "1 CreatePerson", "40 MiB request"
    huge = directory_pb2.CreatePersonRequest(
        person_id="BIG", person=directory_pb2.Person(display_name="x" * (40 * 1024 * 1024), management_level=1)
    )
    err = await call_error(
        roles.directory.CreatePerson(huge, metadata=roles.admin, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert "larger than max" in err.message.lower() or "received message" in err.message.lower()
    ok = await roles.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=roles.admin, timeout=5)
    assert ok.people == []
