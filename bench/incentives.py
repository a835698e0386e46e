"""`python -m bench.incentives`: the performance table of the incentives service.

In one run, each server in a process of its own and the read client in another:
1. a bare grpc.aio echo server: the baseline, at concurrency 1 and 16,
   measured right before each read figure it is the baseline of;
2. per backend (SQLite, PostgreSQL), a fresh database holding a projected
   directory of 10,000 people (100 teams in 5 lines of business, written
   straight into the projection tables: the roles service's own import has
   its bench) and 1,000,000 credited behaviour events in January 2025
   (written straight into the credit rows a close reads), and the incentives
   service on it with a monthly scheme of three measures:
   - ingestion capacity: 50,000 CRM behaviour events of February 2025 (open)
     published on NATS while the service is stopped (the publisher is not
     measured), then the rate at which the restarted service's consumer
     applies the backlog with scorecards kept current (the scheme published
     and a reader asking for February's scorecards every 50 ms, so the
     replica's scorecard board holds the period throughout);
   - sustained ingestion: events published at 5,000/s for 10 s while the
     consumer runs; the rate applied (events / time from the first publish
     to the last one applied), publisher and service sharing the machine;
   - the lag from publishing a probe event to its scorecard showing it
     (GetScorecard polled every 20 ms), probes sent twice a second while
     1,000 events/s are published;
   - scorecard reads: GetScorecard of February for random people, at
     concurrency 1 and 16, as a ratio against the echo figure;
   - ClosePeriod of January: every participant's scorecard frozen and award
     proposed, timed by the caller.

Every figure is measured in this run. Missed targets are printed, not fatal.
`--quick` runs small sizes (1,000 people, 20,000 credits, 1-3 s of ingestion).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import multiprocessing
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
import sqlalchemy as sa
from engage.incentives.v1 import (
    awards_pb2,
    awards_pb2_grpc,
    behaviours_pb2,
    schemes_pb2,
    schemes_pb2_grpc,
    scorecards_pb2,
    scorecards_pb2_grpc,
)
from google.protobuf.timestamp_pb2 import Timestamp

from bench import echo, procs
from bench.load import CHANNEL_OPTIONS, ECHO_PAYLOAD, connect, percentile
from bench.run import Report, Row, progress
from services.incentives.settings import IncentivesSettings
from services.incentives.store.tables import (
    BehaviourEventRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    ProjectedPersonUnitRow,
)
from services.platform.cloudevents import CloudEvent
from services.platform.db import Database
from services.platform.jetstream import ensure_stream

CONCURRENCIES = (1, 16)
READ_TARGET = 0.4  # scorecard reads: at least this much of echo's rate
INGEST_TARGET = 5000.0  # events/s applied
CLOSE_TARGET_S = 20.0
CLOSED_PERIOD = "2025-01"
OPEN_PERIOD = "2025-02"
JANUARY = datetime(2025, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2025, 2, 1, tzinfo=UTC)
SCHEME = "bench"
KINDS = ("case-solved-cross-department", "customer-satisfaction-score", "knowledge-article-published")
CRM_STREAM = IncentivesSettings.model_fields["crm_stream"].default
CRM_SUBJECTS = IncentivesSettings.model_fields["crm_subjects"].default
CALL_TIMEOUT = 10.0
CLOSE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Sizes:
    people: int
    credits: int
    ingest_rate: float  # the capacity run's backlog is rate x seconds events
    ingest_seconds: float
    lag_rate: float  # events/s offered while probes measure the lag
    lag_seconds: float
    reads: int
    warmup: int


FULL = Sizes(10_000, 1_000_000, 5000.0, 10.0, 1000.0, 10.0, reads=2000, warmup=100)
QUICK = Sizes(1_000, 20_000, 5000.0, 1.0, 500.0, 3.0, reads=300, warmup=30)


# JetStream as the project ships it (config/nats/engage.conf, the Kubernetes
# cluster): every write flushed to disk (issue #2). On this disk that caps one
# synchronous publisher at a few hundred messages/s; the bench publishes many
# messages at once, so the server flushes them together.
NATS_CONFIG = """
listen: 127.0.0.1:{port}
jetstream {{
  store_dir: "{store}"
  sync_interval: always
}}
"""


def nats_server(workdir: Path) -> tuple[procs.Child, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    (workdir / "nats.conf").write_text(NATS_CONFIG.format(port=port, store=workdir / "store"))
    binary = Path(sys.executable).parent / "nats-server"
    child = procs.Child("nats-server", [str(binary), "-c", str(workdir / "nats.conf")], workdir / "nats.log")
    child.start()
    try:
        procs.wait_for_tcp(child, port)
    except BaseException:
        child.stop()
        raise
    return child, f"nats://127.0.0.1:{port}"


# ---- the read client: closed loop, in a process of its own ---------------------------


@dataclass(frozen=True)
class Reads:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str = ""


def _read_requests(kind: str, people: int, count: int) -> list[Any]:
    if kind == "echo":
        return [ECHO_PAYLOAD] * count
    rng = random.Random(count)
    return [
        scorecards_pb2.GetScorecardRequest(
            name=f"schemes/{SCHEME}/periods/{OPEN_PERIOD}/scorecards/{person_id(rng.randrange(people))}"
        )
        for _ in range(count)
    ]


async def _closed_loop(kind: str, target: str, concurrency: int, count: int, warmup: int, people: int) -> Reads:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, target)
        send: Callable[..., Any]
        if kind == "echo":
            send = channel.unary_unary(echo.METHOD, request_serializer=echo.raw, response_deserializer=echo.raw)
        else:
            send = scorecards_pb2_grpc.ScorecardServiceStub(channel).GetScorecard
        requests = _read_requests(kind, people, warmup + count)
        for r in requests[:warmup]:
            await send(r, timeout=CALL_TIMEOUT)
        queue = list(reversed(requests[warmup:]))
        took: list[float] = []
        errors: list[str] = []

        async def caller() -> None:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                try:
                    await send(request, timeout=CALL_TIMEOUT)
                    took.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    took.sort()
    return Reads(
        len(took) / seconds if seconds > 0 else 0.0,
        percentile(took, 50) * 1000,
        percentile(took, 99) * 1000,
        len(errors),
        errors[0] if errors else "",
    )


def _read_process(kind: str, target: str, concurrency: int, count: int, warmup: int, people: int) -> Reads:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    return asyncio.run(_closed_loop(kind, target, concurrency, count, warmup, people))


def read_load(
    pool: concurrent.futures.Executor, kind: str, target: str, concurrency: int, sizes: Sizes, people: int = 0
) -> Reads:
    future = pool.submit(_read_process, kind, target, concurrency, sizes.reads, sizes.warmup, people)
    return future.result(timeout=600)


# ---- the data -------------------------------------------------------------------------


def person_id(index: int) -> str:
    return f"P{index:06d}"


def _team_of(index: int, people: int) -> int:
    return index % max(1, people // 100)


async def seed(db_url: str, sizes: Sizes) -> None:
    """The projected directory and January's credits, written in bulk."""
    db = Database(db_url)
    teams = max(1, sizes.people // 100)
    units: list[dict[str, Any]] = [
        {"id": "CO", "parent_id": None, "manager_id": None, "kind": "COMPANY", "deleted": False, "sequence": 1}
    ]
    units += [
        {"id": f"LOB{b}", "parent_id": "CO", "manager_id": None, "kind": "LINE_OF_BUSINESS", "deleted": False,
         "sequence": 1}
        for b in range(5)
    ]  # fmt: skip
    units += [
        {"id": f"T{t:03d}", "parent_id": f"LOB{t % 5}", "manager_id": None, "kind": "TEAM", "deleted": False,
         "sequence": 1}
        for t in range(teams)
    ]  # fmt: skip
    people: list[dict[str, Any]] = [
        {"id": person_id(i), "org_unit_id": f"T{_team_of(i, sizes.people):03d}", "manager_id": None,
         "status": "ACTIVE", "sequence": 1}
        for i in range(sizes.people)
    ]  # fmt: skip
    history = [
        {"person_id": p["id"], "valid_from": datetime(1900, 1, 1, tzinfo=UTC), "org_unit_id": p["org_unit_id"]}
        for p in people
    ]
    rng = random.Random(1)
    accepted = datetime(2025, 1, 31, 12, tzinfo=UTC)
    try:
        async with db.engine.begin() as conn:
            for model, listed in ((ProjectedOrgUnitRow, units), (ProjectedPersonRow, people),
                                  (ProjectedPersonUnitRow, history)):  # fmt: skip
                await conn.execute(sa.insert(model), listed)
        credits = (_credit(n, sizes, rng, accepted) for n in range(sizes.credits))
        await _copy_credits(db, credits)
    finally:
        await db.dispose()


CREDIT_COLUMNS = (
    "event_id", "person_id", "behaviour_type_id", "occurred_at", "accepted_at", "value", "share",
    "collaborators", "departments", "org_unit_id", "line_of_business_id", "recipient_id",
)  # fmt: skip


def _credit(n: int, sizes: Sizes, rng: random.Random, accepted: datetime) -> tuple[Any, ...]:
    i = n % sizes.people
    kind = KINDS[rng.randrange(3)]
    team = _team_of(i, sizes.people)
    occurred = JANUARY + timedelta(seconds=rng.randrange(31 * 24 * 3600))
    value = float(rng.randint(2, 5)) if kind == KINDS[1] else 1.0
    return (f"jan-{n}", person_id(i), kind, occurred, accepted, value, 1.0, "[]", "[]", f"T{team:03d}",
            f"LOB{team % 5}", None)  # fmt: skip


async def _copy_credits(db: Database, rows: Iterator[tuple[Any, ...]]) -> None:
    """A million rows the fast way each driver has: COPY into PostgreSQL,
    executemany of plain tuples into SQLite (times as SQLAlchemy stores them)."""
    async with db.engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        while batch := list(itertools.islice(rows, 50_000)):
            if db.is_postgres:
                await raw.copy_records_to_table("behaviour_credits", records=batch, columns=CREDIT_COLUMNS)
            else:
                stored = [(*r[:3], _sqlite_time(r[3]), _sqlite_time(r[4]), *r[5:]) for r in batch]
                marks = ", ".join("?" * len(CREDIT_COLUMNS))
                await raw.executemany(
                    f"INSERT INTO behaviour_credits ({', '.join(CREDIT_COLUMNS)}) VALUES ({marks})", stored
                )


def _sqlite_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def scheme() -> schemes_pb2.Scheme:
    def measure(mid: str, kind: str, aggregation: int, weight: float, target: float) -> schemes_pb2.Measure:
        return schemes_pb2.Measure(
            id=mid, display_name=mid, behaviour_types=[f"behaviourTypes/{kind}"], aggregation=aggregation,  # type: ignore[arg-type]
            weight=weight, target=target, cap=2,
        )  # fmt: skip

    return schemes_pb2.Scheme(
        display_name="Bench collaboration bonus",
        calendar=schemes_pb2.Calendar(period_kind=schemes_pb2.PERIOD_KIND_MONTH, time_zone="UTC"),
        measures=[
            measure("cases", KINDS[0], schemes_pb2.AGGREGATION_COUNT, 50, 30),
            measure("csat", KINDS[1], schemes_pb2.AGGREGATION_AVERAGE, 30, 4),
            measure("articles", KINDS[2], schemes_pb2.AGGREGATION_SUM, 20, 30),
        ],
        payout=schemes_pb2.PayoutCurve(
            currency_code="EUR",
            target_payout=500,
            threshold=0.5,
            tiers=[schemes_pb2.Tier(from_attainment=0, rate=1), schemes_pb2.Tier(from_attainment=1, rate=1.5)],
            cap_attainment=2,
        ),
    )


# ---- the service ----------------------------------------------------------------------


def prepare_database(db_url: str, nats_url: str, sizes: Sizes, name: str) -> dict[str, str]:
    """Migrates and seeds the database; returns the service's environment."""
    port = procs.free_port()
    env = procs.roles_env(db_url, nats_url, port)  # the same ENGAGE_* settings
    env["ENGAGE_GRPC_PORT"] = str(port)
    migrate = subprocess.run(
        [sys.executable, "-m", "services.incentives.migrate"],
        env=env, cwd=procs.ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise RuntimeError(f"migration of {db_url} failed:\n{migrate.stdout}{migrate.stderr}")
    progress(f"{name}: seeding {sizes.people:,} people and {sizes.credits:,} credits")
    started = time.monotonic()
    asyncio.run(seed(db_url, sizes))
    progress(f"{name}: seeded in {time.monotonic() - started:.0f} s")
    return env


def start_service(workdir: Path, name: str, env: dict[str, str]) -> tuple[procs.Child, str]:
    port = int(env["ENGAGE_GRPC_PORT"])
    argv = [sys.executable, "-m", "services.incentives.main"]
    child = procs.Child(f"incentives service ({name})", argv, workdir / f"incentives-{name}.log", env).start()
    target = f"127.0.0.1:{port}"
    try:
        procs.wait_for_tcp(child, port, timeout=30)
        asyncio.run(procs.wait_ready(child, target))
    except BaseException:
        child.stop()
        raise
    return child, target


async def publish_scheme(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = schemes_pb2_grpc.SchemeServiceStub(channel)
        await stub.CreateScheme(schemes_pb2.CreateSchemeRequest(scheme_id=SCHEME, scheme=scheme()), timeout=30)
        await stub.PublishScheme(
            schemes_pb2.PublishSchemeRequest(name=f"schemes/{SCHEME}", effective_from="2025-01-01"), timeout=30
        )


def _body(people: list[str], at: datetime, kind: str = KINDS[0]) -> bytes:
    ts = Timestamp()
    ts.FromDatetime(at)
    return behaviours_pb2.BehaviourObserved(
        behaviour_type=f"behaviourTypes/{kind}",
        credits=[behaviours_pb2.Credit(person=f"people/{p}") for p in people],
        occurred_at=ts,
        source_system="bench-crm",
    ).SerializeToString()


def _headers(event_id: str) -> dict[str, str]:
    event = CloudEvent(
        type="crm.behaviours.v1.behaviour.observed",
        source="/crm/bench",
        subject=f"cases/{event_id}",
        data=b"",
        dataschema="proto:engage.incentives.v1.BehaviourObserved",
        id=event_id,
    )
    headers = event.headers()
    headers["Nats-Msg-Id"] = event_id
    return headers


async def _applied(db: Database, prefix: str) -> int:
    """The load's events recorded (probes aside)."""
    async with db.engine.connect() as conn:
        query = (
            sa.select(sa.func.count())
            .select_from(BehaviourEventRow)
            .where(
                BehaviourEventRow.id.like(f"{prefix}%")  # type: ignore[attr-defined]
            )
        )
        return int((await conn.execute(query)).scalar_one())


async def _publish(js: Any, rng: random.Random, sizes: Sizes, prefix: str, first: int, count: int) -> None:
    """`count` behaviour events of February for random people, one in five shared by two."""
    acks = []
    for n in range(first, first + count):
        one = rng.randrange(sizes.people)
        people = [person_id(one)]
        if n % 5 == 0:  # a teaming event: someone else shares the credit
            people.append(person_id((one + 1 + rng.randrange(sizes.people - 1)) % sizes.people))
        at = FEBRUARY + timedelta(seconds=rng.randrange(27 * 24 * 3600))
        kind = KINDS[n % 3]
        body = _body(people, at, kind)
        acks.append(js.publish(f"crm.behaviours.v1.{kind}", body, headers=_headers(f"{prefix}{n}"), timeout=60))
    await asyncio.gather(*acks)


async def _paced(js: Any, rng: random.Random, sizes: Sizes, prefix: str, rate: float, total: int) -> float:
    """Publishes `total` events at `rate`, a step every 50 ms; returns the seconds it took."""
    started = time.perf_counter()
    step = max(1, int(rate / 20))
    sent = 0
    while sent < total:
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        count = min(step, total - sent)
        await _publish(js, rng, sizes, prefix, sent, count)
        sent += count
    return time.perf_counter() - started


async def publish_backlog(nats_url: str, sizes: Sizes, tag: str) -> int:
    """Publishes the capacity run's events before the service starts (the CRM stream made as the service makes it)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, CRM_STREAM, [CRM_SUBJECTS])
        total = int(sizes.ingest_rate * sizes.ingest_seconds)
        rng = random.Random(2)
        for first in range(0, total, 500):
            await _publish(js, rng, sizes, f"{tag}-backlog-", first, min(500, total - first))
        return total
    finally:
        await nc.close()


async def wait_applied(db: Database, prefix: str, total: int, timeout: float) -> float:
    """Seconds until the consumer applied `total` events of the load."""
    started = time.perf_counter()
    while (applied := await _applied(db, prefix)) < total:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {applied:,} of {total:,} events applied within {timeout:.0f} s")
        await asyncio.sleep(0.25)  # each count scans the load's rows: polled often, it would slow what it measures
    return time.perf_counter() - started


async def drain_backlog(target: str, db_url: str, sizes: Sizes, total: int, tag: str) -> tuple[int, float]:
    """Events applied after the clock started and the seconds they took, while
    a reader keeps asking for February's scorecards (so they are kept current)."""
    db = Database(db_url, pool_size=2)
    stop = asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            cards = scorecards_pb2_grpc.ScorecardServiceStub(channel)

            async def reader() -> None:
                rng = random.Random(4)
                while not stop.is_set():
                    name = f"schemes/{SCHEME}/periods/{OPEN_PERIOD}/scorecards/{person_id(rng.randrange(sizes.people))}"
                    await cards.GetScorecard(scorecards_pb2.GetScorecardRequest(name=name), timeout=CALL_TIMEOUT)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)

            reading = asyncio.create_task(reader())
            before = await _applied(db, f"{tag}-backlog-")  # the consumer starts with the service
            seconds = await wait_applied(db, f"{tag}-backlog-", total, sizes.ingest_seconds * 30 + 120)
            stop.set()
            await reading
        return total - before, seconds
    finally:
        await db.dispose()


async def sustained(nats_url: str, db_url: str, sizes: Sizes, rate: float, tag: str) -> tuple[float, float]:
    """Publishes at `rate` for the capacity run's seconds while the consumer
    runs; returns (events/s applied from the first publish to the last
    applied, events/s the publisher managed)."""
    nc = await nats.connect(nats_url)
    db = Database(db_url, pool_size=2)
    rng = random.Random(5)
    total = int(rate * sizes.ingest_seconds)
    try:
        started = time.perf_counter()
        published = await _paced(nc.jetstream(), rng, sizes, f"{tag}-sustained-", rate, total)
        await wait_applied(db, f"{tag}-sustained-", total, timeout=sizes.ingest_seconds * 30 + 120)
        return total / (time.perf_counter() - started), total / published
    finally:
        await nc.close()
        await db.dispose()


@dataclass
class Lag:
    rate: float  # offered events/s
    seconds: float
    kept_up: bool
    lags_ms: list[float]


async def paced_with_probes(target: str, nats_url: str, db_url: str, sizes: Sizes, rate: float, tag: str) -> Lag:
    """Publishes at `rate` while probes measure publish-to-scorecard."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    db = Database(db_url, pool_size=2)
    rng = random.Random(3)
    lags: list[float] = []
    total = int(rate * sizes.lag_seconds)
    stop = asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            cards = scorecards_pb2_grpc.ScorecardServiceStub(channel)

            async def probe(k: int) -> None:
                person = person_id(rng.randrange(sizes.people))
                event_id = f"{tag}-probe-{k}-{uuid.uuid4().hex[:8]}"
                name = f"schemes/{SCHEME}/periods/{OPEN_PERIOD}/scorecards/{person}"
                sent = time.perf_counter()
                body = _body([person], FEBRUARY + timedelta(days=3))
                await js.publish(f"crm.behaviours.v1.{KINDS[0]}", body, headers=_headers(event_id), timeout=10)
                want = f"behaviourEvents/{event_id}"
                while time.perf_counter() - sent < 30:
                    card = await cards.GetScorecard(scorecards_pb2.GetScorecardRequest(name=name), timeout=10)
                    if any(c.behaviour_event == want for c in card.lines[0].contributions):
                        lags.append((time.perf_counter() - sent) * 1000)
                        return
                    await asyncio.sleep(0.02)

            async def probes() -> None:
                k = 0
                while not stop.is_set():
                    await probe(k)
                    k += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)

            prober = asyncio.create_task(probes())
            seconds = await _paced(js, rng, sizes, f"{tag}-paced-", rate, total)
            await wait_applied(db, f"{tag}-paced-", total, timeout=sizes.lag_seconds * 30 + 120)
            stop.set()
            await prober
    finally:
        await nc.close()
        await db.dispose()
    return Lag(rate, seconds, seconds < sizes.lag_seconds * 1.2, lags)


async def close_january(target: str) -> tuple[float, awards_pb2.Period]:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        started = time.perf_counter()
        period = await awards_pb2_grpc.AwardServiceStub(channel).ClosePeriod(
            awards_pb2.ClosePeriodRequest(name=f"schemes/{SCHEME}/periods/{CLOSED_PERIOD}"), timeout=CLOSE_TIMEOUT
        )
        return time.perf_counter() - started, period


# ---- the run --------------------------------------------------------------------------


def bench_echo(
    pool: concurrent.futures.Executor, echo_target: str, sizes: Sizes, c: int, report: Report, when: str
) -> Reads:
    """The echo baseline at concurrency `c`, measured just before the figure it is the baseline of
    (the machine is shared: a baseline from minutes before would compare other conditions)."""
    r = read_load(pool, "echo", echo_target, c, sizes)
    progress(f"echo at concurrency {c} ({when}): {r.rps:,.0f} calls/s")
    report.add(Row(f"echo, concurrency {c}, calls/s ({when})", f"{r.rps:,.0f}", ratio="1.00"))
    return r


def bench_backend(
    pool: concurrent.futures.Executor,
    workdir: Path,
    nats_url: str,
    backend: str,
    echo_target: str,
    sizes: Sizes,
    report: Report,
) -> None:
    pg_name = ""
    if backend == "sqlite":
        db_url = f"sqlite+aiosqlite:///{workdir / 'incentives.db'}"
    else:
        pg_name = procs.new_pg_database_name()
        db_url = asyncio.run(procs.create_pg_database(pg_name))
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    try:
        env = prepare_database(db_url, nats_url, sizes, label)
        child, target = start_service(workdir, backend, env)
        with child:  # the scheme first, so the backlog is applied with scorecards to keep current
            asyncio.run(publish_scheme(target))
        total = asyncio.run(publish_backlog(nats_url, sizes, backend))
        progress(f"{label}: {total:,} behaviour events waiting on NATS, the service stopped")
        child, target = start_service(workdir, backend, env)
        with child:
            applied, drained = asyncio.run(drain_backlog(target, db_url, sizes, total, backend))
            rate = applied / drained
            progress(f"{label}: the consumer applied {applied:,} events in {drained:.1f} s: {rate:,.0f}/s")
            report.target(f"ingestion via NATS, {label}, backlog applied, events/s", f"{rate:,.0f}",
                          f">= {INGEST_TARGET:,.0f}", rate >= INGEST_TARGET)  # fmt: skip
            applied_rate, offered = asyncio.run(sustained(nats_url, db_url, sizes, sizes.ingest_rate, backend))
            progress(f"{label}: sustained: published {offered:,.0f}/s, applied {applied_rate:,.0f}/s")
            what = f"ingestion via NATS, {label}, sustained at {sizes.ingest_rate:,.0f}/s offered, events/s"
            if offered >= sizes.ingest_rate * 0.9:
                report.target(what, f"{applied_rate:,.0f}", f">= {INGEST_TARGET:,.0f}", applied_rate >= INGEST_TARGET)
            else:  # the broker's disk capped the publisher: this row does not measure the consumer
                report.add(Row(what, f"{applied_rate:,.0f}", target="publisher-bound"))
                report.notes.append(
                    f"{label}: the sustained run's publisher managed only {offered:,.0f} events/s (NATS flushes "
                    "every write; the consumer applied all of them as they came)"
                )
            lag = asyncio.run(paced_with_probes(target, nats_url, db_url, sizes, sizes.lag_rate, backend))
            lags = sorted(lag.lags_ms)
            progress(f"{label}: {lag.rate:,.0f} events/s offered for {lag.seconds:.1f} s; {len(lags)} probes")
            report.add(Row(f"publish to scorecard at {lag.rate:,.0f} events/s, {label}, p50 / p99 ms",
                           f"{percentile(lags, 50):.0f} / {percentile(lags, 99):.0f}"))  # fmt: skip
            if not lag.kept_up:
                report.notes.append(f"{label}: the publisher fell behind the offered {lag.rate:,.0f} events/s")
            for c in CONCURRENCIES:
                echo_reads = bench_echo(pool, echo_target, sizes, c, report, f"before {label} reads")
                reads = read_load(pool, "GetScorecard", target, c, sizes, sizes.people)
                ratio = reads.rps / echo_reads.rps if echo_reads.rps else 0.0
                progress(f"{label}: GetScorecard at concurrency {c}: {reads.rps:,.0f}/s (x{ratio:.2f}), "
                         f"p50 {reads.p50_ms:.1f} ms, p99 {reads.p99_ms:.1f} ms")  # fmt: skip
                baseline = f"{echo_reads.rps:,.0f}"
                met = "yes" if ratio >= READ_TARGET else "MISSED"
                figure = f"GetScorecard, {label}, concurrency {c}, calls/s"
                report.add(Row(figure, f"{reads.rps:,.0f}", baseline, f"{ratio:.2f}", f">= {READ_TARGET:.1f}x", met))
                if reads.errors:
                    report.notes.append(
                        f"GetScorecard {label} c={c}: {reads.errors} errors, first: {reads.first_error}"
                    )
            seconds, period = asyncio.run(close_january(target))
            progress(f"{label}: ClosePeriod {CLOSED_PERIOD}: {period.award_count:,} awards in {seconds:.1f} s")
            closed = seconds < CLOSE_TARGET_S and period.award_count == sizes.people
            what = f"close {sizes.people:,} people / {sizes.credits:,} events, {label}, s"
            report.target(what, f"{seconds:.1f}", f"< {CLOSE_TARGET_S:.0f}", closed)
            child.check_alive()
    finally:
        if pg_name:
            with contextlib.suppress(Exception):
                asyncio.run(procs.drop_pg_database(pg_name))


def _step(report: Report, what: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:
        report.failed(what, exc)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.incentives", description="Incentives performance table.")
    parser.add_argument("--quick", action="store_true", help="small sizes, a minute or two")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="SQLite only")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _interrupt)
    report = Report()
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="engage-bench-incentives-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            nats_child, nats_url = nats_server(workdir / "nats")
            stack.enter_context(nats_child)
            pool = stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )
            echo_child, echo_target = procs.echo_server(workdir)
            stack.enter_context(echo_child)
            backends = ["sqlite", "postgresql"] if args.postgres else ["sqlite"]
            for backend in backends:
                _step(report, backend, lambda b=backend: bench_backend(  # type: ignore[misc]
                    pool, workdir, nats_url, b, echo_target, sizes, report))  # fmt: skip
            if not args.postgres:
                report.notes.append("PostgreSQL skipped (--no-postgres)")
    except KeyboardInterrupt:
        print("\ninterrupted: every process stopped, temporary files removed", file=sys.stderr)
        return 130
    report.notes.append(
        f"sizes: {'--quick' if args.quick else 'full'}; the whole run took {time.monotonic() - started:.0f} s; "
        "the machine's 2 cores are shared by the servers, the client and the publisher"
    )
    report.notes.append(
        "ingestion: 'backlog applied' is the consumer's own rate (events published while the service was "
        "stopped; the clock starts once it is ready, counting only what it applies after); 'sustained' has the "
        "publisher keep pace meanwhile, on the same 2 cores; NATS flushes every write (sync_interval: always); "
        "scorecards are kept current throughout (scheme published, February held by the replica's board)"
    )
    report.print()
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
