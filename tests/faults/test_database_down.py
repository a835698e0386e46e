"""The database gone for 10 s in the middle of a load of writes, on PostgreSQL and on SQLite.

PostgreSQL is reached through a TCP proxy that the test partitions (every
connection reset and new ones refused, or bytes swallowed); SQLite's file is
locked by another process (`BEGIN EXCLUSIVE`, as a backup tool or a stray
script would). Writers keep calling throughout, each create with its request
id. Calls during the outage fail fast with UNAVAILABLE (a retryable answer),
nothing is half written (every row has its one event and every event its row),
the service recovers without a restart, and every failed create retried with
its request id afterwards exists once. No client ever reads "database is
locked", neither then nor under 64 concurrent writers on one SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from google.protobuf.field_mask_pb2 import FieldMask

from services.platform.db import Database
from tests.conftest import POSTGRES, _drop_pg_database, fresh_database_url
from tests.support.company import ROOT_UNIT, person_in_root, person_row, stream
from tests.support.events import published
from tests.support.processes import QUICK_STOP, RolesProcess
from tests.support.service_state import Metadata, all_names, backlog
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

OUTAGE = 10.0
WRITERS = 8
DEADLINE = 8.0  # each call's deadline: failing fast means well inside it
FAST = 6.0  # the slowest a failed call may take during the outage
BACK_OFF = 0.1
# The service's bounds on waiting for the database, below the calls' deadline: a silent PostgreSQL or a
# SQLite file locked by another process fails calls with UNAVAILABLE instead of holding them.
DB_TIMEOUTS = {"ENGAGE_DB_CONNECT_TIMEOUT_SECONDS": "2", "ENGAGE_DB_STATEMENT_TIMEOUT_SECONDS": "2"}


def person(i: int) -> directory_pb2.CreatePersonRequest:
    return person_in_root(f"D{i:05d}")


@dataclass
class Call:
    index: int
    started: float
    seconds: float
    code: grpc.StatusCode
    message: str = ""


@dataclass
class Writers:
    """Writers creating people until told to stop; every call's outcome kept."""

    stub: directory_pb2_grpc.DirectoryServiceStub
    admin: Metadata
    calls: list[Call] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    attempted: int = 0  # creates taken up so far (people D00000 .. attempted-1)

    async def run(self) -> None:
        await asyncio.gather(*(self._writer() for _ in range(WRITERS)))

    async def _writer(self) -> None:
        """Creates one person after another; a failed create is retried with its request id, as a client would."""
        while not self.stop.is_set() and self.attempted < 20_000:
            i, self.attempted = self.attempted, self.attempted + 1
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    await self.stub.CreatePerson(person(i), metadata=self.admin, timeout=DEADLINE)
                    self.calls.append(Call(i, started, time.monotonic() - started, grpc.StatusCode.OK))
                    break
                except grpc.aio.AioRpcError as exc:
                    self.calls.append(Call(i, started, time.monotonic() - started, exc.code(), exc.details() or ""))
                    await asyncio.sleep(BACK_OFF)  # the client's back-off (its pace, not a wait for a condition)

    async def ok_since(self, moment: float) -> int:
        return sum(c.code == grpc.StatusCode.OK and c.started >= moment for c in self.calls)


@dataclass
class Outage:
    """How to take the database away and give it back."""

    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]


async def run_outage(
    service: RolesProcess, db: Database, nats_url: str, admin: Metadata, outage: Outage, scenario
) -> None:
    """The load, the outage in its middle, recovery, and the checks every database shares."""
    async with grpc.aio.insecure_channel(service.target) as channel:
        stub = directory_pb2_grpc.DirectoryServiceStub(channel)
        await stub.CreateOrgUnit(ROOT_UNIT, metadata=admin, timeout=10)
        load = Writers(stub, admin)
        running = asyncio.create_task(load.run())
        start = time.monotonic()
        await eventually(lambda: load.ok_since(start), lambda n: n >= 50, 60, "50 creates before the outage")
        await outage.begin()
        down = time.monotonic()
        await asyncio.sleep(OUTAGE)  # the outage's length is the scenario itself, not a wait for a condition
        await outage.end()
        up = time.monotonic()
        await eventually(lambda: load.ok_since(up), lambda n: n >= 50, 60, "50 creates after the outage")
        recovered = min(c.started + c.seconds for c in load.calls if c.code == grpc.StatusCode.OK and c.started >= up)
        load.stop.set()
        await running
        # Every create that failed, retried with its request id: made once, whether or not it had committed.
        failed = sorted({c.index for c in load.calls if c.code != grpc.StatusCode.OK})
        for i in sorted(set(range(load.attempted)) - {c.index for c in load.calls if c.code == grpc.StatusCode.OK}):
            await stub.CreatePerson(person(i), metadata=admin, timeout=30)  # those the stop cut short
        names = await all_names(stub.ListPeople, directory_pb2.ListPeopleRequest, "people", admin)
    await eventually(lambda: backlog(db), lambda n: n == 0, 30, "the outbox to drain")
    during = [c for c in load.calls if down <= c.started < up]
    codes = Counter(c.code.name for c in during)
    slowest = max((c.seconds for c in during if c.code != grpc.StatusCode.OK), default=0.0)
    scenario.faults += (
        f" for {OUTAGE:g}s: calls during it {dict(codes)}, slowest failure {slowest:.1f}s, "
        f"recovered {recovered - up:.1f}s after, {len(failed)} failed creates retried"
    )
    events = await published(nats_url)
    created = [e.subject for e in events if e.type == "engage.roles.v1.person.created"]
    made = [n for n in names if n.startswith("people/D")]
    scenario.count(made, created)
    assert all("locked" not in c.message.lower() for c in load.calls), Counter(c.message for c in load.calls)
    assert codes["UNAVAILABLE"] > 0, "no call failed: the outage did not reach the service"
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes  # failures are UNAVAILABLE, never a deadline or INTERNAL
    assert slowest < FAST, slowest  # failing fast, not waiting out the deadline
    assert len(made) == load.attempted  # every create attempted exists once (retried ones included)
    assert Counter(created) == Counter(made)  # nothing half written: each row its one event, no event without row


@pytest.fixture
async def postgres_database(workdir: Path) -> AsyncIterator[tuple[str, str]]:
    url, name = await fresh_database_url("postgresql", workdir)
    assert name is not None
    yield url, name
    await _drop_pg_database(name)


@pytest.mark.parametrize("mode", ["cut", "blackhole"])
async def test_postgresql_cut_off_for_10s_during_load_fails_fast_and_recovers(
    mode: str, postgres_database: tuple[str, str], tmp_path: Path, mint, nats_server, scenario
):
    scenario.load = f"CreatePerson by {WRITERS} writers (PostgreSQL)"
    scenario.faults = {"cut": "connections to PostgreSQL reset", "blackhole": "PostgreSQL partitioned"}[mode]
    url, _name = postgres_database
    host, port = POSTGRES.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    proxied = url.replace(f"{host}:{port}", proxy.address)
    service = RolesProcess(proxied, nats_server.url, mint, tmp_path, **QUICK_STOP, **DB_TIMEOUTS)
    db = Database(url)  # the test's own view, around the proxy
    try:
        # In threads: the proxy lives on this event loop and must keep forwarding meanwhile.
        await asyncio.to_thread(service.migrate)
        await asyncio.to_thread(service.start)
        admin = mint.metadata("hr", roles=["hr_admin"])

        async def partition() -> None:
            proxy.set(mode)

        async def heal() -> None:
            proxy.set("pass")

        await run_outage(service, db, nats_server.url, admin, Outage(partition, heal), scenario)
    finally:
        service.stop()
        await proxy.stop()
        await db.dispose()


async def test_sqlite_locked_by_another_process_for_10s_during_load_fails_fast_and_recovers(
    tmp_path: Path, mint, nats_server, scenario
):
    scenario.load = f"CreatePerson by {WRITERS} writers (SQLite)"
    scenario.faults = "SQLite file held by BEGIN EXCLUSIVE elsewhere"
    path = tmp_path / "roles.db"
    url = f"sqlite+aiosqlite:///{path}"
    service = RolesProcess(url, nats_server.url, mint, tmp_path, **QUICK_STOP, **DB_TIMEOUTS)
    db = Database(url)
    # Its own thread: taking the lock waits for the service's current write to end.
    holder = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)

    async def lock() -> None:
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")

    async def unlock() -> None:
        await asyncio.to_thread(holder.execute, "COMMIT")

    try:
        service.migrate()
        service.start()
        admin = mint.metadata("hr", roles=["hr_admin"])
        await run_outage(service, db, nats_server.url, admin, Outage(lock, unlock), scenario)
    finally:
        holder.close()
        service.stop()
        await db.dispose()


async def test_sqlite_under_64_concurrent_writers_never_tells_a_client_database_is_locked(
    tmp_path: Path, mint, nats_server, scenario
):
    """One writer at a time is SQLite's rule; the service queues its writers (group commit), so many at
    once see only success: no "database is locked", no error at all."""
    creators, updaters, importers = 40, 16, 8
    scenario.load = f"SQLite: {creators} creating, {updaters} updating, {importers} importing, side by side"
    scenario.faults = "64 concurrent writers on one file"
    url = f"sqlite+aiosqlite:///{tmp_path / 'roles.db'}"
    service = RolesProcess(url, nats_server.url, mint, tmp_path, **QUICK_STOP)
    db = Database(url)
    admin = mint.metadata("hr", roles=["hr_admin"])
    errors: Counter[str] = Counter()
    created: list[str] = []

    async def guarded(call: Awaitable[object]) -> object:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            errors[f"{exc.code().name}: {exc.details()}"] += 1
            return None

    try:
        service.migrate()
        service.start()
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            await stub.CreateOrgUnit(ROOT_UNIT, metadata=admin, timeout=10)
            for i in range(updaters):
                await stub.CreatePerson(person_in_root(f"U{i:03d}"), metadata=admin, timeout=10)

            async def create(w: int) -> None:
                for i in range(10):
                    made = await guarded(stub.CreatePerson(person(w * 100 + i), metadata=admin, timeout=30))
                    if made is not None:
                        created.append(made.name)  # type: ignore[attr-defined]

            async def update(w: int) -> None:
                for i in range(10):
                    renamed = directory_pb2.Person(name=f"people/U{w:03d}", display_name=f"Renamed {i}")
                    request = directory_pb2.UpdatePersonRequest(
                        person=renamed, update_mask=FieldMask(paths=["display_name"])
                    )
                    await guarded(stub.UpdatePerson(request, metadata=admin, timeout=30))

            async def load_directory(w: int) -> None:
                rows = [person_row(f"I{w}{i:03d}", f"Imported {i}", "ROOT", "", 2) for i in range(50)]
                await guarded(stub.ImportDirectory(stream(rows), metadata=admin, timeout=60))

            await asyncio.gather(
                *(create(w) for w in range(creators)),
                *(update(w) for w in range(updaters)),
                *(load_directory(w) for w in range(importers)),
            )
        await eventually(lambda: backlog(db), lambda n: n == 0, 30, "the outbox to drain")
    finally:
        service.stop()
        await db.dispose()
    events = await published(nats_server.url)
    made = set(created)
    scenario.count(created, [e.subject for e in events if e.type.endswith("person.created") and e.subject in made])
    assert errors == Counter(), errors
    assert len(created) == creators * 10
