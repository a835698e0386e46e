"""`make bench` (`python -m bench.run`): the performance table of the roles service.

In one run, each server in a process of its own and the client in another:
1. a bare grpc.aio echo server: the baseline, at concurrency 1 and 16;
2. the roles service on SQLite: CheckDecision, GetRole and CreateAssignment
   at concurrency 1 and 16, each figure as a ratio against the echo figure
   of the same concurrency. CheckDecision at c=1 asks about each of the
   2,000 agents for the first time (every answer computed); at c=16 it asks
   about the same agents again (answers kept by the service until a change);
3. outbox lag: CreateAssignment at a steady 50 writes/s for 5 s (well below
   capacity: the relay alone), then at the target's 200 writes/s for 10 s;
   the lag is `published_at - event_time` of the outbox rows (commit side to
   JetStream's acknowledgement, as the relay records it); besides, the
   delivery lag from the `ce-time` header to receipt by a NATS subscriber;
4. import: 100,000 people and 300 org units through ImportDirectory into a
   fresh SQLite and a fresh PostgreSQL database, then the same import again
   (every row UNCHANGED) once the relay has published the first one's events.

Missed targets are printed, not fatal: the exit code is 0 unless a
measurement could not be taken (1) or the run was interrupted (130).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from urllib.parse import unquote

import grpc
import nats
import sqlalchemy as sa
from engage.roles.v1 import (
    assignments_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    directory_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from nats.aio.msg import Msg
from sqlmodel import col, select

from bench import dataset, procs
from bench.load import CHANNEL_OPTIONS, Closed, Import, ImportRun, Latency, LoadWorker, Paced, percentile
from services.platform.db import Database
from services.platform.outbox import OutboxRow

CONCURRENCIES = (1, 16)
SERVICE_CALLS = ("CheckDecision", "GetRole", "CreateAssignment")
LAG_EVENT = "engage.roles.v1.assignment.created"
LAG_TARGET_MS = 100.0
CALM_RATE = 50.0  # writes/s well below what the service sustains on SQLite
CALM_SECONDS = 5.0
IMPORT_TARGET_S = 30.0
SETUP_TIMEOUT = 60.0
IMPORT_JOB_TIMEOUT = 600.0
DRAIN_TIMEOUT = 60.0  # bounds the run; past it the rerun overlaps the relay's publishing


@dataclass
class Options:
    count: int
    warmup: int
    lag_rate: float
    lag_seconds: float
    import_people: int
    import_units: int
    postgres: bool


# ---- the report -------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.figure, self.value, self.baseline, self.ratio, self.target, self.met)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def target(self, figure: str, value: str, target: str, met: bool) -> None:
        self.rows.append(Row(figure, value, target=target, met="yes" if met else "MISSED"))

    def failed(self, what: str, exc: BaseException) -> None:
        self.failures.append(f"{what}: {type(exc).__name__}: {exc}")
        self.rows.append(Row(what, "error", met="MISSED"))
        traceback.print_exception(exc, file=sys.stderr)

    def print(self) -> None:
        table = [Row("figure", "value", "baseline", "ratio", "target", "met"), *self.rows]
        widths = [max(len(cell) for cell in column) for column in zip(*(r.cells() for r in table), strict=True)]

        def line(cells: tuple[str, ...]) -> str:
            first, *rest = cells
            return " | ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

        print()
        print(line(table[0].cells()))
        print("-+-".join("-" * w for w in widths))
        for row in self.rows:
            print(line(row.cells()))
        print()
        print("ratio = value / echo baseline at the same concurrency (throughput: higher is better; latency: lower).")
        for note in self.notes:
            print(f"note: {note}")
        missed = [r.figure for r in self.rows if r.met == "MISSED"]
        if missed:
            print(f"TARGETS MISSED ({len(missed)}): " + "; ".join(missed))
        else:
            print("All targets met.")
        for failure in self.failures:
            print(f"FAILED: {failure}")


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _ms(value: float) -> str:
    return f"{value:.2f}"


READ_RPCS = ("CheckDecision", "GetRole")
READ_TARGET = 0.5


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "-"


def latency_rows(report: Report, name: str, concurrency: int, cell: Latency, echo: Latency | None) -> None:
    label = f"{name} c={concurrency}"
    if echo is None:
        report.add(Row(f"{label} req/s", f"{cell.rps:.0f}", "(baseline)"))
        report.add(Row(f"{label} p50 ms", _ms(cell.p50_ms), "(baseline)"))
        report.add(Row(f"{label} p99 ms", _ms(cell.p99_ms), "(baseline)"))
    elif name in READ_RPCS:
        # The target: read RPCs at least half the echo server's rate.
        met = echo.rps > 0 and cell.rps / echo.rps >= READ_TARGET
        row = Row(f"{label} req/s", f"{cell.rps:.0f}", f"{echo.rps:.0f}", _ratio(cell.rps, echo.rps))
        row.target, row.met = f">= {READ_TARGET}x", "yes" if met else "MISSED"
        report.add(row)
    else:
        report.add(Row(f"{label} req/s", f"{cell.rps:.0f}", f"{echo.rps:.0f}", _ratio(cell.rps, echo.rps)))
        report.add(Row(f"{label} p50 ms", _ms(cell.p50_ms), _ms(echo.p50_ms), _ratio(cell.p50_ms, echo.p50_ms)))
        report.add(Row(f"{label} p99 ms", _ms(cell.p99_ms), _ms(echo.p99_ms), _ratio(cell.p99_ms, echo.p99_ms)))
    if name == "CheckDecision" and concurrency == CONCURRENCIES[0]:
        report.notes.append(
            f"CheckDecision c={CONCURRENCIES[0]} asks about each agent for the first time (answers computed); "
            f"c={CONCURRENCIES[-1]} asks again (answers the service kept)"
        )
    if cell.errors:
        report.notes.append(
            f"{label}: {cell.errors} of {cell.errors + cell.calls} calls failed, first: {cell.first_error}"
        )


def _cell_timeout(count: int) -> float:
    return 60.0 + count * 0.1  # generous: 100 ms per call on top of a minute


# ---- 1. the echo baseline ---------------------------------------------------------------


def bench_echo(worker: LoadWorker, workdir: Path, opts: Options, report: Report) -> dict[int, Latency]:
    results: dict[int, Latency] = {}
    child, target = procs.echo_server(workdir)
    with child:
        for concurrency in CONCURRENCIES:
            job = Closed("echo", target, concurrency, opts.count, opts.warmup)
            cell = worker.run(job, _cell_timeout(opts.count))
            assert isinstance(cell, Latency)
            progress(f"echo c={concurrency}: {cell.rps:.0f} req/s, p50 {cell.p50_ms:.2f} ms, p99 {cell.p99_ms:.2f} ms")
            latency_rows(report, "echo", concurrency, cell, None)
            results[concurrency] = cell
    return results


# ---- 2. and 3. the roles service on SQLite ------------------------------------------------


async def load_company(target: str) -> None:
    """The benchmark company (bench.dataset) through the public API."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        roles = roles_pb2_grpc.RoleServiceStub(channel)
        assignments = assignments_pb2_grpc.AssignmentServiceStub(channel)
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        reply = await directory.ImportDirectory(iter(dataset.company_rows()), timeout=SETUP_TIMEOUT)
        if reply.rejected_count:
            raise RuntimeError(f"the company import rejected {reply.rejected_count} rows")
        for category in dataset.category_requests():
            await roles.CreateDecisionCategory(category, timeout=10)
        for role_id, role in dataset.ROLES.items():
            await roles.CreateRole(roles_pb2.CreateRoleRequest(role_id=role_id, role=role), timeout=10)
            await roles.ActivateRole(roles_pb2.ActivateRoleRequest(name=f"roles/{role_id}"), timeout=10)
        for assignment in dataset.seed_assignments():
            await assignments.CreateAssignment(assignment, timeout=10)
        # The measured question must take the intended walk: agent -> their team lead.
        answer = await decisions.CheckDecision(dataset.check_decision(0), timeout=10)
        expected = f"people/{dataset.lead_of(0)}"
        if answer.outcome != decisions_pb2.DECISION_OUTCOME_ESCALATE or answer.escalate_to.person != expected:
            raise RuntimeError(f"CheckDecision should escalate to {expected}, answered: {answer}")


def bench_service(
    worker: LoadWorker, workdir: Path, nats_url: str, echo: dict[int, Latency], opts: Options, report: Report
) -> None:
    db_url = f"sqlite+aiosqlite:///{workdir / 'roles.db'}"
    child, target = procs.roles_service(workdir, "sqlite", db_url, nats_url)
    with child:
        asyncio.run(load_company(target))
        # The reads are measured on a settled service, not while the relay publishes the setup's events.
        if not asyncio.run(wait_outbox_drained(db_url, timeout=DRAIN_TIMEOUT)):
            report.notes.append("the setup's events were still being published when the measurements began")
        progress(f"roles service ready on {target} with {len(dataset.company_rows())} directory rows")
        next_write = 0  # CreateAssignment uses each request index once
        for call in SERVICE_CALLS:
            for concurrency in CONCURRENCIES:
                job = Closed(call, target, concurrency, opts.count, opts.warmup, offset=next_write)
                if call == "CreateAssignment":
                    next_write += opts.count + opts.warmup
                try:
                    cell = worker.run(job, _cell_timeout(opts.count))
                except Exception as exc:
                    report.failed(f"{call} c={concurrency}", exc)
                    continue
                assert isinstance(cell, Latency)
                progress(
                    f"{call} c={concurrency}: {cell.rps:.0f} req/s, p50 {cell.p50_ms:.2f} ms, "
                    f"p99 {cell.p99_ms:.2f} ms, {cell.errors} errors"
                )
                latency_rows(report, call, concurrency, cell, echo.get(concurrency))
        # First well below the write capacity (the relay alone), then at the target rate.
        for rate, seconds, is_target in ((CALM_RATE, CALM_SECONDS, False), (opts.lag_rate, opts.lag_seconds, True)):
            paced = Paced("CreateAssignment", target, rate, seconds, offset=next_write)
            next_write += round(rate * seconds)
            try:
                asyncio.run(bench_outbox_lag(worker, paced, nats_url, db_url, is_target, report))
            except Exception as exc:
                report.failed(f"outbox lag at {rate:.0f} writes/s", exc)
        child.check_alive()


async def bench_outbox_lag(
    worker: LoadWorker, job: Paced, nats_url: str, db_url: str, is_target: bool, report: Report
) -> None:
    # Every earlier event must be out first, or the lag would include their backlog.
    await wait_outbox_drained(db_url, timeout=60)
    since = datetime.now(UTC)
    delivery_ms: list[float] = []

    async def on_message(msg: Msg) -> None:
        received = time.time()
        stamp = unquote((msg.headers or {}).get("ce-time", ""))
        if stamp:
            event_time = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if event_time >= since:
                delivery_ms.append((received - event_time.timestamp()) * 1000)

    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        await nc.subscribe(LAG_EVENT, cb=on_message)
        await nc.flush(timeout=5)
        writes = await worker.run_async(job, timeout=job.seconds + 120)
        assert isinstance(writes, Latency)
        drained = await wait_outbox_drained(db_url, timeout=30)
        await asyncio.sleep(0.5)  # the last deliveries
    finally:
        await nc.close()
    lags = sorted(await outbox_lags(db_url, since))
    delivery_ms.sort()
    at = f"{job.rate:.0f} writes/s"
    done = writes.calls / writes.seconds if writes.seconds else 0.0
    progress(
        f"outbox lag at {at} for {job.seconds:.0f} s: {writes.calls} writes done at {done:.0f}/s "
        f"(p99 {writes.p99_ms:.1f} ms), {writes.errors} failed; {len(lags)} events published, "
        f"{len(delivery_ms)} received; lag p50 {percentile(lags, 50):.1f} ms, p99 {percentile(lags, 99):.1f} ms"
    )
    report.add(Row(f"paced CreateAssignment at {at}: done/s", f"{done:.0f}"))
    report.add(Row(f"paced CreateAssignment at {at}: p99 ms", _ms(writes.p99_ms)))
    report.add(Row(f"outbox lag p50 ms at {at}", _ms(percentile(lags, 50))))
    p99 = percentile(lags, 99)
    if is_target:
        report.target(
            f"outbox lag p99 ms at {at}", _ms(p99), f"< {LAG_TARGET_MS:.0f}", bool(lags) and p99 < LAG_TARGET_MS
        )
    else:
        report.add(Row(f"outbox lag p99 ms at {at}", _ms(p99)))
    report.add(Row(f"delivery lag p50 ms at {at}", _ms(percentile(delivery_ms, 50))))
    report.add(Row(f"delivery lag p99 ms at {at}", _ms(percentile(delivery_ms, 99))))
    if done < 0.95 * job.rate:
        report.notes.append(
            f"the service completed only {done:.0f} of the {at} asked: the lag at {at} is mostly queueing behind "
            f"saturated writes (compare the rows at {CALM_RATE:.0f} writes/s, the relay alone)"
        )
    if writes.errors:
        report.notes.append(f"paced writes at {at}: {writes.errors} of {round(job.rate * job.seconds)} failed, "
                            f"first: {writes.first_error}")  # fmt: skip
    if not drained:
        report.notes.append(f"outbox not drained 30 s after the writes at {at}: lags of published rows only")
    if len(lags) != writes.calls or len(delivery_ms) != writes.calls:
        report.notes.append(
            f"paced writes at {at}: {writes.calls} done, {len(lags)} published, {len(delivery_ms)} received"
        )


async def wait_outbox_drained(db_url: str, timeout: float) -> bool:
    """Until every outbox row is published; False if some are still waiting at the timeout."""
    db = Database(db_url, pool_size=1)
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with db.read() as session:
                unpublished = (
                    select(sa.func.count()).select_from(OutboxRow).where(col(OutboxRow.published_at).is_(None))
                )
                waiting = (await session.exec(unpublished)).one()
            if waiting == 0:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


async def outbox_lags(db_url: str, since: datetime) -> list[float]:
    """published_at - event_time in ms of the measured events."""
    db = Database(db_url, pool_size=1)
    try:
        async with db.read() as session:
            query = select(col(OutboxRow.event_time), col(OutboxRow.published_at)).where(
                OutboxRow.type == LAG_EVENT,
                col(OutboxRow.event_time) >= since,
                col(OutboxRow.published_at).is_not(None),
            )
            rows = (await session.exec(query)).all()
    finally:
        await db.dispose()
    return [(published - event).total_seconds() * 1000 for event, published in rows if published is not None]


# ---- 4. the import --------------------------------------------------------------------


def bench_import(worker: LoadWorker, workdir: Path, nats_url: str, backend: str, opts: Options, report: Report) -> None:
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    rows = opts.import_people + opts.import_units
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            db_url = f"sqlite+aiosqlite:///{workdir / 'import.db'}"
        else:
            name = procs.new_pg_database_name()
            stack.callback(_drop_pg_database, name)  # registered first: the database is never left behind
            db_url = asyncio.run(procs.create_pg_database(name))
        child, target = procs.roles_service(workdir, f"import-{backend}", db_url, nats_url)
        stack.enter_context(child)
        job = Import(target, opts.import_people, opts.import_units)

        first = worker.run(job, timeout=IMPORT_JOB_TIMEOUT)
        assert isinstance(first, ImportRun)
        progress(f"import {label}: {_describe(first)}")
        report.target(f"import {rows:,} rows, {label} s", f"{first.seconds:.1f}", f"< {IMPORT_TARGET_S:.0f}",
                      first.seconds < IMPORT_TARGET_S and first.created == rows)  # fmt: skip
        if first.created != rows:
            report.notes.append(f"import {label}: {_describe(first)}; first rejection: {first.first_rejection}")

        # The relay publishes the import's events after the commit; the rerun
        # is measured once it is done, as a nightly import would find it.
        started = time.monotonic()
        drained = asyncio.run(wait_outbox_drained(db_url, timeout=DRAIN_TIMEOUT))
        drain_s = time.monotonic() - started
        progress(f"import {label}: relay published the events {drain_s:.1f} s after the import returned")
        report.add(Row(f"relay drain after import, {label} s", f"{drain_s:.1f}" if drained else f"> {drain_s:.0f}"))
        if not drained:
            report.notes.append(f"import {label}: the rerun ran while the relay was still publishing the first import")

        again = worker.run(job, timeout=IMPORT_JOB_TIMEOUT)
        assert isinstance(again, ImportRun)
        progress(f"import {label} again: {_describe(again)}")
        report.add(Row(f"import rerun (all UNCHANGED), {label} s", f"{again.seconds:.1f}"))
        report.target(
            f"import rerun UNCHANGED rows, {label}", f"{again.unchanged:,}", f"{rows:,}", again.unchanged == rows
        )
        child.check_alive()


def _drop_pg_database(name: str) -> None:
    try:
        asyncio.run(procs.drop_pg_database(name))
    except Exception as exc:
        print(f"could not drop PostgreSQL database {name}: {exc}", file=sys.stderr)


def _describe(run: ImportRun) -> str:
    return (
        f"{run.rows:,} rows in {run.seconds:.1f} s: {run.created:,} created, {run.updated:,} updated, "
        f"{run.unchanged:,} unchanged, {run.rejected:,} rejected"
    )


# ---- main ----------------------------------------------------------------------------


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Engage performance table.")
    parser.add_argument("--count", type=int, default=2000, help="measured calls per cell (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up calls per cell (default 100)")
    parser.add_argument("--lag-rate", type=float, default=200.0, help="writes/s of the outbox lag run")
    parser.add_argument("--lag-seconds", type=float, default=10.0, help="length of the outbox lag run")
    parser.add_argument("--import-people", type=int, default=100_000)
    parser.add_argument("--import-units", type=int, default=300)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="skip the PostgreSQL import")
    args = parser.parse_args(argv)
    return Options(
        count=args.count,
        warmup=args.warmup,
        lag_rate=args.lag_rate,
        lag_seconds=args.lag_seconds,
        import_people=args.import_people,
        import_units=args.import_units,
        postgres=args.postgres,
    )


def _step(report: Report, what: str, action: Callable[[], None]) -> None:
    """Runs one part; a failure is reported and the next part still runs."""
    try:
        action()
    except Exception as exc:
        report.failed(what, exc)


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    report = Report()
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="engage-bench-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            nats_child, nats_url = procs.nats_server(workdir / "nats")
            stack.enter_context(nats_child)
            worker = stack.enter_context(LoadWorker())
            progress(f"NATS at {nats_url}; work directory {workdir}")

            echo: dict[int, Latency] = {}

            def run_echo() -> None:
                echo.update(bench_echo(worker, workdir, opts, report))

            _step(report, "echo baseline", run_echo)
            _step(report, "roles service", lambda: bench_service(worker, workdir, nats_url, echo, opts, report))
            _step(report, "import SQLite", lambda: bench_import(worker, workdir, nats_url, "sqlite", opts, report))
            if opts.postgres:
                _step(
                    report,
                    "import PostgreSQL",
                    lambda: bench_import(worker, workdir, nats_url, "postgresql", opts, report),
                )
            else:
                report.notes.append("PostgreSQL import skipped (--no-postgres)")
    except KeyboardInterrupt:
        print("\ninterrupted: every process stopped, temporary files removed", file=sys.stderr)
        return 130
    report.notes.append(f"the whole run took {time.monotonic() - started:.0f} s")
    report.print()
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
