"""Nothing lost, nothing twice: the outbox across broker failures."""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from engage.roles.v1 import assignments_pb2, assignments_pb2_grpc, directory_pb2, directory_pb2_grpc, roles_pb2_grpc
from sqlmodel import col, select

from services.platform.db import Database
from services.platform.outbox import OutboxRow
from tests.conftest import BACKENDS, _drop_pg_database, fresh_database_url
from tests.support.company import company_rows, load_company, person_row, stream
from tests.support.events import published
from tests.support.processes import QUICK_STOP, RolesProcess
from tests.support.service_state import Metadata, all_names, backlog, last_outbox_seq
from tests.support.waiting import eventually

# 10,000 on SQLite, the figure (1-2 minutes at this machine's 100-200 creates/s);
# PostgreSQL runs the same scenario smaller, to keep `make test` within its budget.
TOTALS = {"sqlite": 10_000, "postgresql": 1_000}
WRITERS = 16
TEAM = [f"K{i:03d}" for i in range(100)]  # each gets one assignment a year, so none overlap
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
DRAIN_SECONDS = 30.0


def team_rows() -> list[directory_pb2.ImportDirectoryRequest]:
    return [person_row(p, f"Agent {p}", "SVC-1", "TL-S", 3) for p in TEAM]


def assignment(i: int) -> assignments_pb2.CreateAssignmentRequest:
    year = 2100 + i // len(TEAM)
    a = assignments_pb2.Assignment(
        person=f"people/{TEAM[i % len(TEAM)]}", role="roles/service-agent", org_unit="orgUnits/SVC-1", reason="load"
    )
    a.valid_from.FromDatetime(datetime(year, 1, 1, tzinfo=UTC))
    a.valid_to.FromDatetime(datetime(year, 12, 1, tzinfo=UTC))
    return assignments_pb2.CreateAssignmentRequest(assignment=a, request_id=f"nats-kill-{i}")


@dataclass
class Writers:
    """The load: creates taken from one queue, each retried with its request id on a retryable error."""

    stub: assignments_pb2_grpc.AssignmentServiceStub
    admin: Metadata
    total: int
    committed: dict[int, str] = field(default_factory=dict)  # request index -> assignment name
    retried: Counter[str] = field(default_factory=Counter)  # retryable errors seen, by code
    refused: list[grpc.StatusCode] = field(default_factory=list)  # anything a client must not retry

    async def run(self, count: int) -> None:
        todo = iter(range(self.total))
        await asyncio.gather(*(self._writer(todo) for _ in range(count)))

    async def _writer(self, todo: Iterator[int]) -> None:
        for i in todo:
            for _attempt in range(50):
                try:
                    created = await self.stub.CreateAssignment(assignment(i), metadata=self.admin, timeout=10)
                    self.committed[i] = created.name
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRYABLE:
                        self.refused.append(exc.code())
                        break
                    self.retried[exc.code().name] += 1

    async def count(self) -> int:
        return len(self.committed)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_killing_nats_in_the_middle_of_the_assignments_loses_no_event_and_duplicates_none(
    backend: str, tmp_path: Path, workdir: Path, mint, nats_server, scenario
):
    total = TOTALS[backend]
    scenario.load = f"{total:,} CreateAssignment by {WRITERS} writers ({backend})"
    url, pg_name = await fresh_database_url(backend, workdir)
    db = Database(url)
    service = RolesProcess(url, nats_server.url, mint, tmp_path, ENGAGE_OUTBOX_POLL_SECONDS="0.2", **QUICK_STOP)
    admin = mint.metadata("hr", roles=["hr_admin"])
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
            imported = await client.directory.ImportDirectory(stream(team_rows()), metadata=admin, timeout=60)
            assert imported.rejected_count == 0
            load = Writers(assignments_pb2_grpc.AssignmentServiceStub(channel), admin, total)
            running = asyncio.create_task(load.run(WRITERS))
            await eventually(load.count, lambda n: n >= total // 4, 600, "a quarter of the creates committed")
            nats_server.kill()  # kill -9 in the middle of the load
            killed_at = len(load.committed)
            # The service keeps accepting changes while the broker is down: its outbox holds them.
            await eventually(load.count, lambda n: n >= total * 3 // 4, 600, "three quarters committed")
            held, held_seq = await backlog(db), await last_outbox_seq(db)
            nats_server.start()
            restarted = time.monotonic()
            # What the outbox held when the broker came back drains while the load goes on.
            await eventually(
                lambda: backlog(db, up_to=held_seq), lambda n: n == 0, DRAIN_SECONDS, "the held backlog to drain"
            )
            drained = time.monotonic() - restarted
            await running
            await eventually(lambda: backlog(db), lambda n: n == 0, DRAIN_SECONDS, "the outbox to drain")
            names = await all_names(
                load.stub.ListAssignments, assignments_pb2.ListAssignmentsRequest, "assignments", admin
            )
    finally:
        service.stop()
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)

    events = await published(nats_server.url)
    created = [e.subject for e in events if e.type == "engage.roles.v1.assignment.created"]
    errors = ", ".join(f"{n} {code}" for code, n in sorted(load.retried.items())) or "none"
    scenario.faults = (
        f"NATS kill -9 at {killed_at:,} committed, restart with {held:,} events held; "
        f"they drained in {drained:.1f}s (load going on); client errors (retried): {errors}"
    )
    scenario.count(names, created)
    assert load.refused == []  # clients saw only errors they may retry
    assert len(load.committed) == total and len(set(load.committed.values())) == total
    assert sorted(names) == sorted(load.committed.values())  # a retry never made a second row
    assert Counter(created) == Counter(names)  # each committed change exactly once in the stream
    assert len({e.id for e in events}) == len(events)


async def test_a_republish_after_the_ack_is_dropped_by_jetstream(roles, scenario):
    scenario.load, scenario.faults = "directory import (14 events)", "relay republishes acknowledged rows"
    """The relay crashed after the broker acknowledged but before it marked the rows."""
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    await roles.settle()
    async with roles.app.db.read() as session:
        rows = (await session.exec(select(OutboxRow).order_by(col(OutboxRow.seq)))).all()
    assert len(rows) == 14
    # Publish the same rows again, as a relay that never marked them would.
    done = await roles.app.relay._publish(rows)
    assert len(done) == 14
    events = await published(roles.nats.url)
    scenario.count([r.event_id for r in rows], [e.id for e in events])
    assert len(events) == 14 and len({e.id for e in events}) == 14
