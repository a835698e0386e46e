"""kill -9 of each service (roles, skills, incentives) in the middle of a load of creates.

Every committed row has exactly its one event in the stream, a request that
failed without committing produced none, and after the restart the backlog
left in the outbox is published once. The broker is paused (SIGSTOP) before
the kill, so the outbox holds a backlog (and the relay may have sent rows the
broker stores but the dead process never marked) when the process dies.
Failed calls are retried with their request id after the restart: a create
that had committed before the kill returns its first result, not a second row.

roles runs on SQLite and PostgreSQL (assignments: ids made by the service);
skills and incentives on SQLite (skills and behaviour types: ids chosen by the
client, the same outbox and relay).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from engage.incentives.v1 import behaviours_pb2, behaviours_pb2_grpc
from engage.roles.v1 import assignments_pb2, assignments_pb2_grpc, directory_pb2_grpc, roles_pb2_grpc
from engage.skills.v1 import catalogue_pb2, catalogue_pb2_grpc

from services.platform.db import Database
from tests.conftest import _drop_pg_database, fresh_database_url
from tests.support.company import load_company
from tests.support.events import published
from tests.support.processes import QUICK_STOP, IncentivesProcess, RolesProcess, ServiceProcess, SkillsProcess
from tests.support.service_state import Metadata, all_names, backlog
from tests.support.waiting import eventually

TOTAL = 200
WORKERS = 8


@dataclass(frozen=True)
class Load:
    """What one service is made to create while it is killed."""

    service: type[ServiceProcess]
    event_type: str  # the event of each create
    prefix: str  # the names (and event subjects) the load's creates get
    create: Callable[[grpc.aio.Channel, int, Metadata, float], Awaitable[str]]  # request i -> name
    listed: Callable[[grpc.aio.Channel, Metadata], Awaitable[list[str]]]  # every row of the kind
    prepare: Callable[[grpc.aio.Channel, Metadata], Awaitable[None]] | None = None


# roles: assignments of four people to one role, one a year each (they may not overlap).
PEOPLE = [("A1", "SALES-N"), ("A2", "SALES-N"), ("S1", "SVC-1"), ("S2", "SVC-1")]


def assignment_request(i: int) -> assignments_pb2.CreateAssignmentRequest:
    person, unit = PEOPLE[i % len(PEOPLE)]
    year = 2100 + i // len(PEOPLE)
    a = assignments_pb2.Assignment(
        person=f"people/{person}", role="roles/service-agent", org_unit=f"orgUnits/{unit}", reason="load"
    )
    a.valid_from.FromDatetime(datetime(year, 1, 1, tzinfo=UTC))
    a.valid_to.FromDatetime(datetime(year, 12, 1, tzinfo=UTC))
    return assignments_pb2.CreateAssignmentRequest(assignment=a, request_id=f"kill-load-{i}")


async def load_roles_company(channel: grpc.aio.Channel, admin: Metadata) -> None:
    client = SimpleNamespace(
        directory=directory_pb2_grpc.DirectoryServiceStub(channel),
        roles=roles_pb2_grpc.RoleServiceStub(channel),
        admin=admin,
    )
    await load_company(client)


async def create_assignment(channel: grpc.aio.Channel, i: int, admin: Metadata, timeout: float) -> str:
    stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
    return (await stub.CreateAssignment(assignment_request(i), metadata=admin, timeout=timeout)).name


async def all_assignments(channel: grpc.aio.Channel, admin: Metadata) -> list[str]:
    stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
    return await all_names(stub.ListAssignments, assignments_pb2.ListAssignmentsRequest, "assignments", admin)


async def create_skill(channel: grpc.aio.Channel, i: int, admin: Metadata, timeout: float) -> str:
    request = catalogue_pb2.CreateSkillRequest(
        skill_id=f"kill-{i}",
        skill=catalogue_pb2.Skill(preferred_name=f"Kill load skill {i}", type=catalogue_pb2.SKILL_TYPE_SKILL),
        request_id=f"kill-load-{i}",
    )
    stub = catalogue_pb2_grpc.CatalogueServiceStub(channel)
    return (await stub.CreateSkill(request, metadata=admin, timeout=timeout)).name


async def all_skills(channel: grpc.aio.Channel, admin: Metadata) -> list[str]:
    stub = catalogue_pb2_grpc.CatalogueServiceStub(channel)
    return await all_names(stub.ListSkills, catalogue_pb2.ListSkillsRequest, "skills", admin)


async def create_behaviour_type(channel: grpc.aio.Channel, i: int, admin: Metadata, timeout: float) -> str:
    request = behaviours_pb2.CreateBehaviourTypeRequest(
        behaviour_type_id=f"kill-{i}",
        behaviour_type=behaviours_pb2.BehaviourType(
            display_name=f"Kill load behaviour {i}", category=behaviours_pb2.BEHAVIOUR_CATEGORY_TEAMING, unit="case"
        ),
        request_id=f"kill-load-{i}",
    )
    stub = behaviours_pb2_grpc.BehaviourServiceStub(channel)
    return (await stub.CreateBehaviourType(request, metadata=admin, timeout=timeout)).name


async def all_behaviour_types(channel: grpc.aio.Channel, admin: Metadata) -> list[str]:
    stub = behaviours_pb2_grpc.BehaviourServiceStub(channel)
    return await all_names(stub.ListBehaviourTypes, behaviours_pb2.ListBehaviourTypesRequest, "behaviour_types", admin)


LOADS = {
    "roles": Load(
        RolesProcess,
        "engage.roles.v1.assignment.created",
        "assignments/",
        create_assignment,
        all_assignments,
        load_roles_company,
    ),
    "skills": Load(SkillsProcess, "engage.skills.v1.skill.created", "skills/kill-", create_skill, all_skills),
    "incentives": Load(
        IncentivesProcess,
        "engage.incentives.v1.behaviour_type.created",
        "behaviourTypes/kill-",
        create_behaviour_type,
        all_behaviour_types,
    ),
}
CASES = [("roles", "sqlite"), ("roles", "postgresql"), ("skills", "sqlite"), ("incentives", "sqlite")]


@pytest.mark.parametrize(("service", "backend"), CASES, ids=[f"{s}-{b}" for s, b in CASES])
async def test_kill_9_of_a_service_mid_load_loses_no_event_and_invents_none(
    service: str, backend: str, tmp_path: Path, workdir: Path, mint, nats_server, scenario
):
    load = LOADS[service]
    scenario.load = f"{TOTAL} creates ({load.event_type.split('.')[-2]}), {WORKERS} workers, {backend}"
    url, pg_name = await fresh_database_url(backend, workdir)
    db = Database(url)
    process = load.service(url, nats_server.url, mint, tmp_path, ENGAGE_OUTBOX_POLL_SECONDS="0.2", **QUICK_STOP)
    admin = mint.metadata("hr", roles=["hr_admin"])
    results: dict[int, str] = {}  # request index -> name
    failed: dict[int, grpc.StatusCode] = {}
    try:
        process.migrate()
        process.start()
        async with grpc.aio.insecure_channel(process.target) as channel:
            if load.prepare is not None:
                await load.prepare(channel, admin)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(TOTAL):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    try:
                        results[i] = await load.create(channel, i, admin, 5)
                    except grpc.aio.AioRpcError as exc:
                        failed[i] = exc.code()

            workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            await eventually(lambda: _count(results), lambda n: n >= 40, 60, "40 committed creates")
            nats_server.pause()  # the relay can no longer publish: a backlog builds up
            await eventually(lambda: _count(results), lambda n: n >= 100, 60, "100 committed creates")
            process.kill()
            await asyncio.gather(*workers)
        left = await backlog(db)
        nats_server.resume()
        scenario.faults = f"NATS paused, {service} kill -9 with {left} events unpublished, restart"
        assert failed, "the kill cut no call: the load was over too soon"
        assert left > 0, "no backlog at the kill: the scenario did not test the restart's publish"
        # Only errors a client may retry on.
        assert set(failed.values()) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}, failed

        process.start()
        async with grpc.aio.insecure_channel(process.target) as channel:
            for i in sorted(failed):
                results[i] = await load.create(channel, i, admin, 10)
            names = [n for n in await load.listed(channel, admin) if n.startswith(load.prefix)]
        await eventually(lambda: backlog(db), lambda n: n == 0, 30, "the outbox backlog published after restart")
    finally:
        process.stop()
        nats_server.resume()
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)

    events = await published(nats_server.url)
    created = [e.subject for e in events if e.type == load.event_type and e.subject.startswith(load.prefix)]
    scenario.count(names, created)
    assert len(names) == TOTAL and len(set(results.values())) == TOTAL  # no create twice
    assert Counter(created) == Counter(names)  # each committed row exactly one event, no event without a row
    assert len({e.id for e in events}) == len(events)


async def _count(d: dict[int, str]) -> int:
    return len(d)
