"""kill -9 the roles service in the middle of a load of CreateAssignment calls.

Every committed assignment has exactly its one event in the stream, a request
that failed without committing produced none, and after the restart the
backlog left in the outbox is published once. The broker is paused (SIGSTOP)
before the kill, so the outbox holds a backlog (and the relay may have sent
rows the broker stores but the dead process never marked) when the process
dies.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
import sqlalchemy as sa
from engage.roles.v1 import assignments_pb2, assignments_pb2_grpc, directory_pb2_grpc, roles_pb2_grpc
from sqlmodel import col, select

from services.platform.db import Database
from services.platform.outbox import OutboxRow
from tests.conftest import BACKENDS, _drop_pg_database, fresh_database_url
from tests.support.company import load_company
from tests.support.events import published
from tests.support.processes import RolesProcess
from tests.support.waiting import eventually

PEOPLE = [("A1", "SALES-N"), ("A2", "SALES-N"), ("S1", "SVC-1"), ("S2", "SVC-1")]
PER_PERSON = 50  # one assignment a year per person: 200 creates in all
WORKERS = 8


def request(i: int) -> assignments_pb2.CreateAssignmentRequest:
    person, unit = PEOPLE[i % len(PEOPLE)]
    year = 2100 + i // len(PEOPLE)
    a = assignments_pb2.Assignment(
        person=f"people/{person}", role="roles/service-agent", org_unit=f"orgUnits/{unit}", reason="load"
    )
    a.valid_from.FromDatetime(datetime(year, 1, 1, tzinfo=UTC))
    a.valid_to.FromDatetime(datetime(year, 12, 1, tzinfo=UTC))
    return assignments_pb2.CreateAssignmentRequest(assignment=a, request_id=f"kill-load-{i}")


async def backlog(db: Database) -> int:
    async with db.read() as s:
        count = (
            await s.exec(select(sa.func.count()).select_from(OutboxRow).where(col(OutboxRow.published_at).is_(None)))
        ).one()
    return int(count)


async def all_assignments(stub: assignments_pb2_grpc.AssignmentServiceStub, admin: object) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListAssignments(
            assignments_pb2.ListAssignmentsRequest(page_size=1000, page_token=token), metadata=admin, timeout=10
        )
        names += [a.name for a in page.assignments]
        token = page.next_page_token
        if not token:
            return names


@pytest.mark.parametrize("backend", BACKENDS)
async def test_kill_9_of_the_roles_service_mid_load_loses_no_event_and_invents_none(
    backend: str, tmp_path: Path, workdir: Path, mint, nats_server, scenario
):
    total = PER_PERSON * len(PEOPLE)
    scenario.load = f"{total} CreateAssignment, {WORKERS} workers"
    url, pg_name = await fresh_database_url(backend, workdir)
    db = Database(url)
    service = RolesProcess(url, nats_server.url, mint, tmp_path, ENGAGE_OUTBOX_POLL_SECONDS="0.2")
    admin = mint.metadata("hr", roles=["hr_admin"])
    results: dict[int, str] = {}  # request index -> assignment name
    failed: dict[int, grpc.StatusCode] = {}
    try:
        service.migrate()
        service.start()
        async with grpc.aio.insecure_channel(service.target) as channel:
            client = SimpleNamespace(
                directory=directory_pb2_grpc.DirectoryServiceStub(channel),
                roles=roles_pb2_grpc.RoleServiceStub(channel),
                admin=admin,
            )
            await load_company(client)
            stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(total):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    try:
                        results[i] = (await stub.CreateAssignment(request(i), metadata=admin, timeout=5)).name
                    except grpc.aio.AioRpcError as exc:
                        failed[i] = exc.code()

            workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            await eventually(lambda: _count(results), lambda n: n >= 40, 60, "40 committed creates")
            nats_server.pause()  # the relay can no longer publish: a backlog builds up
            await eventually(lambda: _count(results), lambda n: n >= 100, 60, "100 committed creates")
            service.kill()
            await asyncio.gather(*workers)
        left = await backlog(db)
        nats_server.resume()
        scenario.faults = f"NATS paused, roles kill -9 with {left} events unpublished, restart"
        assert failed, "the kill cut no call: the load was over too soon"
        assert left > 0, "no backlog at the kill: the scenario did not test the restart's publish"
        # Only errors a client may retry on.
        assert set(failed.values()) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}, failed

        service.start()
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
            # Retrying with the same request id: a create that had committed
            # before the kill returns its first result instead of a second row.
            for i in sorted(failed):
                results[i] = (await stub.CreateAssignment(request(i), metadata=admin, timeout=10)).name
            names = await all_assignments(stub, admin)
        await eventually(lambda: backlog(db), lambda n: n == 0, 30, "the outbox backlog published after restart")
    finally:
        service.stop()
        nats_server.resume()
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)

    events = await published(nats_server.url)
    created = [e.subject for e in events if e.type == "engage.roles.v1.assignment.created"]
    scenario.count(names, created)
    assert len(names) == total and len(set(results.values())) == total  # no create twice
    assert Counter(created) == Counter(names)  # each committed row exactly one event, no event without a row
    assert len({e.id for e in events}) == len(events)


async def _count(d: dict[int, str]) -> int:
    return len(d)
