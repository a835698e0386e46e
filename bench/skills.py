"""The skills service's performance table (`python -m bench.skills`).

In one run, on SQLite and then on PostgreSQL, each server in a process of its
own and the client in this one:
1. a bare grpc.aio echo server: the baseline, at concurrency 1 and 16;
2. a fresh skills database holding the company's projection (people, org
   units, roles with skill requirements; written directly, as the roles
   service's events would leave it) and a catalogue of 300 skills;
3. import: every assessment (default 100,000 people x 20 = 2,000,000) through
   ImportAssessments, in streams of 100,000 rows with 500 rows per message;
   time and rows/s;
4. the import's level events are dropped from the outbox and the service
   restarted, so the relay publishing millions of events does not share the
   two cores with the read figures;
5. GetRoleFit at concurrency 1 and 16 as a ratio of the echo rate (it
   answers from an in-memory view, loaded before the service takes calls),
   FindCandidates for one role over the whole company (p50, p99), and the
   service's resident memory after the reads.

Targets (issue #3): FindCandidates p50 < 300 ms, GetRoleFit >= 0.4x echo,
2,000,000 assessments imported in < 2 minutes. Missed targets are printed,
not fatal. `--quick` runs small sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from engage.skills.v1 import assessments_pb2, assessments_pb2_grpc, fit_pb2, fit_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench import echo, procs
from bench.load import CHANNEL_OPTIONS, Latency, _closed_loop, connect
from bench.run import Report, Row, progress
from services.platform.db import Database
from services.platform.outbox import OutboxRow
from services.skills.app import role_fits
from services.skills.store.tables import (
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    SkillRow,
)

CONCURRENCIES = (1, 16)
FIT_TARGET = 0.4
CANDIDATES_TARGET_MS = 300.0
IMPORT_TARGET_S = 120.0
STREAM_ROWS = 100_000
MESSAGE_ROWS = 500
ROLES = 10
REQUIREMENTS = 6
TEAMS = 500
CALL_TIMEOUT = 30.0
IMPORT_TIMEOUT = 1800.0
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
SOURCES = (
    assessments_pb2.ASSESSMENT_SOURCE_MANAGER,
    assessments_pb2.ASSESSMENT_SOURCE_CERTIFICATION,
    assessments_pb2.ASSESSMENT_SOURCE_PEER,
    assessments_pb2.ASSESSMENT_SOURCE_TEST,
)


@dataclass(frozen=True)
class Sizes:
    people: int
    skills: int
    per_person: int
    fit_calls: int
    candidate_calls: int
    postgres: bool
    sqlite: bool = True


def person(i: int) -> str:
    return f"P{i:06d}"


def skill(k: int) -> str:
    return f"bench-skill-{k:03d}"


def role_skills(r: int, skills: int) -> list[int]:
    return random.Random(f"role-{r}").sample(range(skills), REQUIREMENTS)


# ---- the company, written straight into the projection ----------------------------------


async def seed_company(db_url: str, sizes: Sizes) -> None:
    db = Database(db_url, pool_size=1)
    now = datetime.now(UTC)
    try:
        async with db.write() as uow:
            s = uow.session
            root = {"id": "co", "parent_id": None, "manager_id": None, "path": "/co/", "deleted": False, "sequence": 1}
            units = [root]
            units += [
                {"id": f"T{t:03d}", "parent_id": "co", "manager_id": None, "path": f"/co/T{t:03d}/", "deleted": False,
                 "sequence": 1}
                for t in range(TEAMS)
            ]  # fmt: skip
            await s.execute(sa.insert(ProjectedOrgUnitRow.__table__), units)  # type: ignore[attr-defined]
            people = [
                {"id": person(i), "org_unit_id": f"T{i % TEAMS:03d}", "manager_id": None, "status": "ACTIVE",
                 "sequence": 1}
                for i in range(sizes.people)
            ]  # fmt: skip
            for start in range(0, len(people), 10_000):
                await s.execute(sa.insert(ProjectedPersonRow.__table__), people[start : start + 10_000])  # type: ignore[attr-defined]
            await s.execute(
                sa.insert(SkillRow.__table__),  # type: ignore[attr-defined]
                [
                    {"id": skill(k), "preferred_name": f"Bench skill {k}", "aliases": [], "description": "",
                     "type": "SKILL", "status": "ACTIVE", "replaced_by": None, "scale_id": "engage-default",
                     "external_references": [], "level_descriptions": [], "revision": 1, "create_time": now,
                     "update_time": now}
                    for k in range(sizes.skills)
                ],
            )  # fmt: skip
            await s.execute(
                sa.insert(ProjectedRoleRow.__table__),  # type: ignore[attr-defined]
                [{"id": f"role-{r}", "version": 1, "state": "ACTIVE", "deleted": False, "sequence": 1}
                 for r in range(ROLES)],
            )  # fmt: skip
            await s.execute(
                sa.insert(ProjectedRequirementRow.__table__),  # type: ignore[attr-defined]
                [
                    {"role_id": f"role-{r}", "version": 1, "skill_id": skill(k), "position": i, "min_level": 3,
                     "weight": 1.0 + (i % 2), "mandatory": i < 2}
                    for r in range(ROLES)
                    for i, k in enumerate(role_skills(r, sizes.skills))
                ],
            )  # fmt: skip
            await role_fits.rebuild(s)
        if db.is_postgres:
            # What autovacuum does shortly after a bulk load (it is off on some
            # test servers): without statistics the planner rescans people.
            async with db.engine.begin() as conn:  # committed: statistics are transactional
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await db.dispose()


def import_messages(sizes: Sizes) -> list[list[assessments_pb2.ImportAssessmentsRequest]]:
    """The assessments as streams of messages of MESSAGE_ROWS rows. Role skills
    are assessed more often than others, so the candidates differ."""
    rnd = random.Random(7)
    favoured = sorted({k for r in range(ROLES) for k in role_skills(r, sizes.skills)})
    streams: list[list[assessments_pb2.ImportAssessmentsRequest]] = []
    rows: list[assessments_pb2.ImportAssessmentRow] = []
    total = 0
    for i in range(sizes.people):
        chosen = set(rnd.sample(favoured, min(4, len(favoured), sizes.per_person)))
        while len(chosen) < sizes.per_person:
            chosen.add(rnd.randrange(sizes.skills))
        for j, k in enumerate(sorted(chosen)):
            stamp = Timestamp()
            stamp.FromDatetime(BASE_TIME - timedelta(days=rnd.randrange(1, 900)))
            rows.append(
                assessments_pb2.ImportAssessmentRow(
                    parent=f"people/{person(i)}",
                    assessment=assessments_pb2.Assessment(
                        skill=f"skills/{skill(k)}",
                        level=rnd.randint(1, 5),
                        source=SOURCES[(i + j) % len(SOURCES)],
                        assess_time=stamp,
                        external_id=f"bench-{i}-{j}",
                    ),
                )
            )
            total += 1
            if total % STREAM_ROWS == 0 or (i == sizes.people - 1 and j == len(chosen) - 1):
                streams.append(
                    [
                        assessments_pb2.ImportAssessmentsRequest(rows=rows[start : start + MESSAGE_ROWS])
                        for start in range(0, len(rows), MESSAGE_ROWS)
                    ]
                )
                rows = []
    return streams


# ---- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFigures:
    seconds: float
    rows: int
    created: int
    rejected: int
    changed_levels: int
    first_rejection: str


async def run_import(target: str, streams: list[list[assessments_pb2.ImportAssessmentsRequest]]) -> ImportFigures:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, target)
        stub = assessments_pb2_grpc.AssessmentServiceStub(channel)
        created = rejected = changed = rows = 0
        first = ""
        started = time.perf_counter()
        for messages in streams:
            reply = await stub.ImportAssessments(iter(messages), timeout=IMPORT_TIMEOUT)
            rows += len(reply.results)
            created += reply.created_count
            rejected += reply.rejected_count
            changed += reply.changed_level_count
            if reply.rejected_count and not first:
                bad = next(r for r in reply.results if r.outcome == r.OUTCOME_REJECTED)
                first = f"row {bad.row}: {bad.field}: {bad.reason}"
        return ImportFigures(time.perf_counter() - started, rows, created, rejected, changed, first)


async def closed(
    target: str, build: Callable[[grpc.aio.Channel], Callable[[Any], Awaitable[Any]]], requests: list[Any], c: int
) -> Latency:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, target)
        send = build(channel)
        await _closed_loop(send, requests[: max(50, len(requests) // 10)], c)  # warm-up
        return await _closed_loop(send, requests, c)


def echo_sender(channel: grpc.aio.Channel) -> Callable[[Any], Awaitable[Any]]:
    rpc = channel.unary_unary(echo.METHOD, request_serializer=echo.raw, response_deserializer=echo.raw)
    return lambda r: rpc(r, timeout=CALL_TIMEOUT)


def fit_sender(channel: grpc.aio.Channel) -> Callable[[Any], Awaitable[Any]]:
    stub = fit_pb2_grpc.RoleFitServiceStub(channel)
    return lambda r: stub.GetRoleFit(r, timeout=CALL_TIMEOUT)


def candidates_sender(channel: grpc.aio.Channel) -> Callable[[Any], Awaitable[Any]]:
    stub = fit_pb2_grpc.RoleFitServiceStub(channel)
    return lambda r: stub.FindCandidates(r, timeout=CALL_TIMEOUT)


def fit_requests(sizes: Sizes) -> list[fit_pb2.GetRoleFitRequest]:
    rnd = random.Random(3)
    return [
        fit_pb2.GetRoleFitRequest(
            person=f"people/{person(rnd.randrange(sizes.people))}", role=f"roles/role-{i % ROLES}"
        )
        for i in range(sizes.fit_calls)
    ]


def bench_echo(workdir: Path, sizes: Sizes, report: Report) -> dict[int, Latency]:
    child, target = procs.echo_server(workdir)
    out = {}
    with child:
        for c in CONCURRENCIES:
            cell = asyncio.run(closed(target, echo_sender, [b"engage-bench"] * sizes.fit_calls, c))
            progress(f"echo c={c}: {cell.rps:.0f} req/s, p50 {cell.p50_ms:.2f} ms")
            report.add(Row(f"echo c={c} req/s", f"{cell.rps:.0f}", "(baseline)"))
            out[c] = cell
    return out


def start_skills(workdir: Path, name: str, db_url: str, nats_url: str) -> tuple[procs.Child, str]:
    port = procs.free_port()
    env = procs.roles_env(db_url, nats_url, port)  # the same ENGAGE_* settings serve every service
    argv = [sys.executable, "-m", "services.skills.main"]
    child = procs.Child(f"skills service ({name})", argv, workdir / f"skills-{name}.log", env).start()
    target = f"127.0.0.1:{port}"
    try:
        procs.wait_for_tcp(child, port, timeout=60)
        asyncio.run(procs.wait_ready(child, target, timeout=60))
    except BaseException:
        child.stop()
        raise
    return child, target


def resident_mb(child: procs.Child) -> float:
    """The process's resident set (VmRSS in /proc), in MB; 0 where /proc is not there."""
    try:
        status = Path(f"/proc/{child.proc.pid if child.proc else 0}/status").read_text()
    except OSError:
        return 0.0
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return kb / 1024


def migrate(db_url: str, nats_url: str) -> None:
    env = procs.roles_env(db_url, nats_url, 0)
    done = subprocess.run(
        [sys.executable, "-m", "services.skills.migrate"],
        env=env, cwd=procs.ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"migration of {db_url} failed:\n{done.stdout}{done.stderr}")


async def purge_outbox(db_url: str) -> int:
    db = Database(db_url, pool_size=1)
    try:
        async with db.write() as uow:
            result = await uow.session.execute(sa.delete(OutboxRow.__table__))  # type: ignore[attr-defined]
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
    finally:
        await db.dispose()


def bench_backend(
    name: str, db_url: str, workdir: Path, nats_url: str, sizes: Sizes, echoes: dict[int, Latency], report: Report
) -> None:
    migrate(db_url, nats_url)
    asyncio.run(seed_company(db_url, sizes))
    streams = import_messages(sizes)
    expected = sum(len(m.rows) for stream in streams for m in stream)
    progress(f"{name}: company seeded ({sizes.people} people); importing {expected} assessments")
    child, target = start_skills(workdir, name, db_url, nats_url)
    with child:
        figures = asyncio.run(run_import(target, streams))
    del streams
    rate = figures.rows / figures.seconds if figures.seconds else 0.0
    progress(f"{name}: import {figures.rows} rows in {figures.seconds:.1f} s ({rate:.0f} rows/s)")
    scaled = figures.seconds * 2_000_000 / figures.rows if figures.rows else 0.0
    report.add(Row(f"{name}: import rows/s", f"{rate:.0f}"))
    report.target(
        f"{name}: import of {figures.rows} assessments, s",
        f"{figures.seconds:.1f}",
        f"< {IMPORT_TARGET_S * figures.rows / 2_000_000:.0f}",
        figures.rejected == 0 and figures.seconds * 2_000_000 / max(figures.rows, 1) < IMPORT_TARGET_S,
    )
    if figures.rows != 2_000_000:
        report.notes.append(f"{name}: import scaled to 2,000,000 rows at the same rate: {scaled:.0f} s")
    if figures.rejected:
        report.notes.append(f"{name}: {figures.rejected} rows rejected, first: {figures.first_rejection}")
    purged = asyncio.run(purge_outbox(db_url))
    report.notes.append(f"{name}: {purged} outbox rows of the import dropped before the reads (not published)")
    child, target = start_skills(workdir, f"{name}-reads", db_url, nats_url)
    with child:
        requests = fit_requests(sizes)
        for c in CONCURRENCIES:
            cell = asyncio.run(closed(target, fit_sender, requests, c))
            base = echoes[c].rps
            ratio = cell.rps / base if base else 0.0
            progress(f"{name}: GetRoleFit c={c}: {cell.rps:.0f} req/s ({ratio:.2f}x echo), {cell.errors} errors")
            report.add(
                Row(
                    f"{name}: GetRoleFit c={c} req/s",
                    f"{cell.rps:.0f}",
                    f"{base:.0f}",
                    f"{ratio:.2f}x",
                    f">= {FIT_TARGET}x",
                    "yes" if ratio >= FIT_TARGET and not cell.errors else "MISSED",
                )
            )
            if cell.errors:
                report.notes.append(f"{name}: GetRoleFit c={c}: {cell.errors} errors, first: {cell.first_error}")
        asks = [
            fit_pb2.FindCandidatesRequest(role=f"roles/role-{i % ROLES}", page_size=50)
            for i in range(sizes.candidate_calls)
        ]
        cell = asyncio.run(closed(target, candidates_sender, asks, 1))
        progress(f"{name}: FindCandidates p50 {cell.p50_ms:.1f} ms, p99 {cell.p99_ms:.1f} ms")
        report.target(
            f"{name}: FindCandidates whole company p50 ms",
            f"{cell.p50_ms:.1f}",
            f"< {CANDIDATES_TARGET_MS:.0f}",
            cell.p50_ms < CANDIDATES_TARGET_MS and not cell.errors,
        )
        report.add(Row(f"{name}: FindCandidates whole company p99 ms", f"{cell.p99_ms:.1f}"))
        if cell.errors:
            report.notes.append(f"{name}: FindCandidates: {cell.errors} errors, first: {cell.first_error}")
        report.notes.append(
            f"{name}: FindCandidates ranks {sizes.people} people for a role of {REQUIREMENTS} requirements "
            f"(first page of 50, {cell.calls} calls)"
        )
        # GetRoleFit answers from an in-memory view (services/skills/store/fit_view.py): what it costs.
        report.add(Row(f"{name}: skills service resident memory after the reads, MB", f"{resident_mb(child):.0f}"))


def run(sizes: Sizes) -> Report:
    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-skills-"))
    try:
        nats, nats_url = procs.nats_server(workdir / "nats")
        with nats:
            echoes = bench_echo(workdir, sizes, report)
            backends: list[tuple[str, str, str]] = []
            if sizes.sqlite:
                backends.append(("sqlite", f"sqlite+aiosqlite:///{workdir / 'skills.db'}", ""))
            if sizes.postgres:
                pg = procs.new_pg_database_name()
                backends.append(("postgresql", asyncio.run(procs.create_pg_database(pg)), pg))
            for name, url, pg_name in backends:
                try:
                    bench_backend(name, url, workdir, nats_url, sizes, echoes, report)
                except Exception as exc:
                    report.failed(f"{name} run", exc)
                finally:
                    if pg_name:
                        asyncio.run(procs.drop_pg_database(pg_name))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.notes.append(
        f"sizes: {sizes.people} people, {sizes.skills} skills, {sizes.per_person} assessments each, {ROLES} roles; "
        "the machine's cores may be shared with other work: compare ratios, not absolute figures"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.skills", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2,000 people) for a quick look")
    parser.add_argument("--people", type=int, help="people (default 100,000)")
    parser.add_argument("--per-person", type=int, default=20, help="assessments per person (default 20)")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="SQLite only")
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="PostgreSQL only")
    args = parser.parse_args(argv)
    people = args.people or (2_000 if args.quick else 100_000)
    sizes = Sizes(
        people=people,
        skills=300,
        per_person=args.per_person,
        fit_calls=400 if args.quick else 3000,
        candidate_calls=10 if args.quick else 40,
        postgres=args.postgres,
        sqlite=args.sqlite,
    )
    report = run(sizes)
    report.print()
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
