"""`python -m bench.gateway`: the gateway's performance table.

In one run, each server in a process of its own (NATS; the roles, skills and incentives
services on SQLite; the gateway; a bare FastAPI app on uvicorn) and the HTTP client here:
1. the baseline: `GET /ping` of a bare FastAPI app served like the gateway (uvicorn,
   no access log), its rate at concurrency 8 (in rounds alternating with each gateway read
   it is compared with) and its p50 at concurrency 1;
2. API reads through the gateway as a manager (token checked, scope decided, a gRPC
   call to the roles service): `GET /api/v1/people/{id}` of their team and
   `GET /api/v1/roles/{id}`; target: at least 0.3x the baseline's rate. For where the
   time goes, the gateway process's CPU time per read against the baseline process's per
   `/ping` (from /proc: what the gateway itself costs, far less swayed by other load than
   the rates), and the same reads straight from the roles service over gRPC (no target);
3. the team page of a manager of 50 people (roles, acknowledgement, role fit from
   skills, scorecards from incentives, all local): p50 of `GET /team`, one at a time;
   target: under 150 ms. `GET /api/v1/me/team` for comparison.

The company: a line of business of 50 people in three teams (headed by the manager),
another of 10; everyone in the first holds a role requiring three skills and has been
assessed; the incentives demo scheme with three months of behaviour events.
Missed targets are printed, not fatal. `--quick` takes fewer samples.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from engage.roles.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from engage.skills.v1 import (
    assessments_pb2,
    assessments_pb2_grpc,
    catalogue_pb2,
    catalogue_pb2_grpc,
    fit_pb2,
    fit_pb2_grpc,
)

from bench import procs
from bench.load import percentile
from gateway.dev_issuer import DevIssuer
from gateway.settings import DemoUser
from services.incentives import demo as incentives_demo

TEAM_SIZE = 50
MANAGER = "M1"
ROLE = "bench-agent"
PAGE_TARGET_MS = 150.0
READ_TARGET_RATIO = 0.3
CONCURRENCY = 8
ROUNDS = 5  # of the rate measures, alternating baseline and gateway


@dataclass(frozen=True)
class Sizes:
    read_calls: int
    page_samples: int


@dataclass
class Row:
    what: str
    value: str
    baseline: str
    ratio: float
    target: str = ""
    met: bool | None = None

    def cells(self) -> tuple[str, ...]:
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        return (self.what, self.value, self.baseline, f"{self.ratio:.2f}x", self.target, verdict)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load averages as the measuring began and ended

    def print(self) -> None:
        table = [("measure", "value", "baseline", "ratio", "target", ""), *(r.cells() for r in self.rows)]
        widths = [max(len(row[i]) for row in table) for i in range(6)]
        print()
        for n, row in enumerate(table):
            print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if n == 0:
                print("-+-".join("-" * w for w in widths))
        print("\nbaseline: a bare FastAPI GET /ping on uvicorn in this run (rates: higher is better; latency: lower).")
        # Other work on the machine slows the gateway's three processes more than the baseline's one.
        loads = " -> ".join(f"{x:.1f}" for x in self.loads)
        print(f"machine: {os.cpu_count()} cores, 1-minute load average {loads} while measuring.")
        missed = [r.what for r in self.rows if r.met is False]
        print(f"TARGETS MISSED ({len(missed)}): " + "; ".join(missed) if missed else "All targets met.")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- the baseline server ------------------------------------------------------------------


def serve_baseline(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- processes ----------------------------------------------------------------------------


def start_service(workdir: Path, name: str, nats_url: str, jwks: Path) -> tuple[procs.Child, str]:
    """Migrates a fresh SQLite database, starts the service (trusting the issuer's keys), waits until ready."""
    port = procs.free_port()
    env = procs.roles_env(f"sqlite+aiosqlite:///{workdir / name}.db", nats_url, port)
    env["ENGAGE_AUTH_JWKS_FILE"] = str(jwks)
    migrate = subprocess.run(
        [sys.executable, "-m", f"services.{name}.migrate"],
        env=env, cwd=procs.ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise RuntimeError(f"{name} migration failed:\n{migrate.stdout}{migrate.stderr}")
    child = procs.Child(name, [sys.executable, "-m", f"services.{name}.main"], workdir / f"{name}.log", env).start()
    target = f"127.0.0.1:{port}"
    procs.wait_for_tcp(child, port, timeout=30)
    asyncio.run(procs.wait_ready(child, target))
    return child, target


def pid_of(child: procs.Child) -> int:
    assert child.proc is not None, f"{child.name} is not running"
    return child.proc.pid


def start_http(workdir: Path, name: str, argv: list[str], env: dict[str, str], port: int) -> procs.Child:
    child = procs.Child(name, argv, workdir / f"{name}.log", env).start()
    procs.wait_for_tcp(child, port, timeout=30)
    return child


# ---- the company ---------------------------------------------------------------------------


def directory_rows() -> list[directory_pb2.ImportDirectoryRequest]:
    units = [
        ("B", "", "M0", directory_pb2.ORG_UNIT_KIND_COMPANY),
        ("B-L", "B", MANAGER, directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS),
    ]
    units += [(f"B-T{t}", "B-L", f"L{t}", directory_pb2.ORG_UNIT_KIND_TEAM) for t in (1, 2, 3)]
    units.append(("B-O", "B", "O0", directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS))
    people = [("M0", "B", "", 7), (MANAGER, "B-L", "M0", 6), ("O0", "B-O", "M0", 6)]
    people += [(f"L{t}", f"B-T{t}", MANAGER, 4) for t in (1, 2, 3)]
    people += [(f"P{i:02d}", f"B-T{i % 3 + 1}", f"L{i % 3 + 1}", 2) for i in range(TEAM_SIZE - 4)]
    people += [(f"Q{i:02d}", "B-O", "O0", 2) for i in range(9)]
    rows = [
        directory_pb2.ImportDirectoryRequest(
            org_unit=directory_pb2.OrgUnit(
                name=f"orgUnits/{uid}",
                display_name=f"Unit {uid}",
                kind=kind,  # type: ignore[arg-type]
                parent=f"orgUnits/{parent}" if parent else "",
                manager=f"people/{head}",
                hr_version=1,
            )
        )
        for uid, parent, head, kind in units
    ]
    rows += [
        directory_pb2.ImportDirectoryRequest(
            person=directory_pb2.Person(
                name=f"people/{pid}",
                display_name=f"Person {pid}",
                email=f"{pid.lower()}@bench.example",
                org_unit=f"orgUnits/{unit}",
                manager=f"people/{boss}" if boss else "",
                management_level=level,  # type: ignore[arg-type]
                status=directory_pb2.PERSON_STATUS_ACTIVE,
                hr_version=1,
            )
        )
        for pid, unit, boss, level in people
    ]
    return rows


def team() -> list[tuple[str, str]]:
    """(person, unit) of everyone the manager manages."""
    return [
        (r.person.name, r.person.org_unit)
        for r in directory_rows()
        if r.HasField("person")
        and r.person.org_unit in ("orgUnits/B-L", "orgUnits/B-T1", "orgUnits/B-T2", "orgUnits/B-T3")
    ]


async def _rows() -> AsyncIterator[directory_pb2.ImportDirectoryRequest]:
    for row in directory_rows():
        yield row


async def seed(roles: str, skills: str, incentives: str, admin: tuple[tuple[str, str], ...]) -> None:
    async with (
        grpc.aio.insecure_channel(roles) as rc,
        grpc.aio.insecure_channel(skills) as sc,
        grpc.aio.insecure_channel(incentives) as ic,
    ):
        await directory_pb2_grpc.DirectoryServiceStub(rc).ImportDirectory(_rows(), metadata=admin, timeout=60)
        catalogue = catalogue_pb2_grpc.CatalogueServiceStub(sc)
        found = await catalogue.ListSkills(catalogue_pb2.ListSkillsRequest(page_size=3), metadata=admin, timeout=10)
        required = [s.name for s in found.skills]
        role_stub = roles_pb2_grpc.RoleServiceStub(rc)
        role = roles_pb2.Role(
            display_name="Bench agent",
            purpose="Serves customers",
            management_level=1,  # type: ignore[arg-type]
            skill_requirements=[
                roles_pb2.SkillRequirement(skill=s, min_level=3, weight=1, mandatory=i == 0)
                for i, s in enumerate(required)
            ],
        )
        await role_stub.CreateRole(roles_pb2.CreateRoleRequest(role_id=ROLE, role=role), metadata=admin, timeout=10)
        await role_stub.ActivateRole(roles_pb2.ActivateRoleRequest(name=f"roles/{ROLE}"), metadata=admin, timeout=10)
        assign = assignments_pb2_grpc.AssignmentServiceStub(rc)
        for person, unit in team():
            a = assignments_pb2.Assignment(person=person, role=f"roles/{ROLE}", org_unit=unit, reason="bench")
            await assign.CreateAssignment(
                assignments_pb2.CreateAssignmentRequest(assignment=a), metadata=admin, timeout=10
            )
        fit = fit_pb2_grpc.RoleFitServiceStub(sc)
        matrix = fit_pb2.GetTeamSkillMatrixRequest(org_unit="orgUnits/B-L", include_descendants=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the skills service learns people and roles from the roles events
            got = await fit.GetTeamSkillMatrix(matrix, metadata=admin, timeout=10)
            if len(got.rows) == TEAM_SIZE and all(r.roles for r in got.rows):
                break
            await asyncio.sleep(0.5)
        assess = assessments_pb2_grpc.AssessmentServiceStub(sc)
        for n, (person, _unit) in enumerate(team()):
            for k, skill in enumerate(required):
                claim = assessments_pb2.Assessment(
                    skill=skill, level=1 + (n + k) % 5, source=assessments_pb2.ASSESSMENT_SOURCE_MANAGER
                )
                await assess.CreateAssessment(
                    assessments_pb2.CreateAssessmentRequest(parent=person, assessment=claim), metadata=admin, timeout=10
                )
        await incentives_demo.load(rc, ic, admin)


# ---- measuring -----------------------------------------------------------------------------


@dataclass
class Run:
    calls: int
    seconds: float
    latencies: list[float]  # sorted, seconds

    @property
    def rps(self) -> float:
        return self.calls / self.seconds

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


def combined(runs: Sequence[Run]) -> Run:
    return Run(sum(r.calls for r in runs), sum(r.seconds for r in runs), sorted(x for r in runs for x in r.latencies))


class Connection:
    """One keep-alive HTTP/1.1 connection: a client far lighter than the servers it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def closed(
    base_url: str, paths: Sequence[str], headers: dict[str, str], calls: int, concurrency: int, warm_up: bool = True
) -> Run:
    """`calls` GETs by `concurrency` callers on connections of their own, each sending the next when its
    answer arrived (after a warm-up); every answer must be 200."""
    connections = [await Connection.open(base_url) for _ in range(concurrency)]
    latencies: list[float] = []
    counter = iter(range(calls))

    async def caller(connection: Connection, timed: bool) -> None:
        for n in counter:
            started = time.perf_counter()
            status, body = await connection.get(paths[n % len(paths)], headers)
            if timed:
                latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"GET {paths[n % len(paths)]} answered {status}: {body[:300]!r}")

    try:
        counter = iter(range(min(calls, 20 * concurrency) if warm_up else 0))
        await asyncio.gather(*(caller(c, False) for c in connections))
        counter = iter(range(calls))
        started = time.perf_counter()
        await asyncio.gather(*(caller(c, True) for c in connections))
        seconds = time.perf_counter() - started
    finally:
        for c in connections:
            c.close()
    latencies.sort()
    return Run(calls, seconds, latencies)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    url: str
    pid: int


async def interleaved(
    baseline: Server, gateway: Server, paths: Sequence[str], headers: dict[str, str], calls: int
) -> tuple[Run, Run, float, float]:
    """The baseline's and the gateway's rate in alternating rounds: other work on the machine, which comes
    and goes, then weighs on both alike instead of on whichever ran while it lasted. Also each server
    process's CPU seconds per request (load slows it less than it slows the rate)."""
    base: list[Run] = []
    gw: list[Run] = []
    cpu = {baseline.pid: 0.0, gateway.pid: 0.0}
    for n in range(ROUNDS):
        for server, runs, server_paths, server_headers in (
            (baseline, base, ["/ping"], {}),
            (gateway, gw, paths, headers),
        ):
            if n == 0:  # warm-up, not counted
                await closed(server.url, server_paths, server_headers, 20 * CONCURRENCY, CONCURRENCY, warm_up=False)
            before = cpu_seconds(server.pid)
            runs.append(await closed(server.url, server_paths, server_headers, calls // ROUNDS, CONCURRENCY, False))
            cpu[server.pid] += cpu_seconds(server.pid) - before
    base_run, gw_run = combined(base), combined(gw)
    return base_run, gw_run, cpu[baseline.pid] / base_run.calls, cpu[gateway.pid] / gw_run.calls


async def direct(target: str, token: str, what: str, calls: int) -> float:
    """The rate of the roles service answering the gateway's read itself over gRPC (for where the time goes)."""
    metadata = (("authorization", f"Bearer {token}"),)
    send: Any
    requests: list[Any]
    async with grpc.aio.insecure_channel(target) as channel:
        if what == "person":
            send, requests = (
                directory_pb2_grpc.DirectoryServiceStub(channel).GetPerson,
                [directory_pb2.GetPersonRequest(name=p) for p, _ in team()],
            )
        else:
            send, requests = (
                roles_pb2_grpc.RoleServiceStub(channel).GetRole,
                [roles_pb2.GetRoleRequest(name=f"roles/{ROLE}")],
            )
        counter = iter(range(calls))

        async def caller() -> None:
            for n in counter:
                await send(requests[n % len(requests)], metadata=metadata, timeout=10)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        return calls / (time.perf_counter() - started)


async def measure(gateway_server: Server, baseline_server: Server, roles: str, token: str, sizes: Sizes) -> Report:
    report = Report(loads=[os.getloadavg()[0]])
    auth = {"Authorization": f"Bearer {token}"}
    gateway, baseline = gateway_server.url, baseline_server.url
    base1 = await closed(baseline, ["/ping"], {}, sizes.page_samples * 4, 1)
    reads = {
        "GET /api/v1/people/{id} (team member)": [f"/api/v1/{p}" for p, _ in team()],
        "GET /api/v1/roles/{id}": [f"/api/v1/roles/{ROLE}"],
    }
    for what, paths in reads.items():
        say(f"{what} x {sizes.read_calls} at concurrency {CONCURRENCY}, in {ROUNDS} rounds between the baseline's")
        base, run, base_cpu, gw_cpu = await interleaved(baseline_server, gateway_server, paths, auth, sizes.read_calls)
        ratio = run.rps / base.rps
        met = ratio >= READ_TARGET_RATIO
        report.rows.append(
            Row(f"{what}: rate", f"{run.rps:.0f}/s", f"{base.rps:.0f}/s", ratio, f">= {READ_TARGET_RATIO}x", met)
        )
        report.rows.append(
            Row(
                "  (gateway process CPU per read)",
                f"{gw_cpu * 1e6:.0f} us",
                f"{base_cpu * 1e6:.0f} us",
                gw_cpu / base_cpu,
            )
        )
        service = await direct(roles, token, "person" if "people" in what else "role", sizes.read_calls)
        rpc = "GetPerson" if "people" in what else "GetRole"
        report.rows.append(
            Row(f"  (roles service {rpc} over gRPC alone)", f"{service:.0f}/s", f"{base.rps:.0f}/s", service / base.rps)
        )
    for what, path, target in (
        ("GET /team (50 people): p50", "/team", True),
        ("GET /api/v1/me/team (50 people): p50", "/api/v1/me/team", False),
    ):
        say(f"{what.split(':')[0]} x {sizes.page_samples}, one at a time")
        run = await closed(gateway, [path], auth, sizes.page_samples, 1)
        report.rows.append(
            Row(
                what,
                f"{run.p50_ms:.1f} ms (p99 {run.p99_ms:.0f})",
                f"{base1.p50_ms:.1f} ms",
                run.p50_ms / base1.p50_ms,
                f"< {PAGE_TARGET_MS:.0f} ms" if target else "",
                run.p50_ms < PAGE_TARGET_MS if target else None,
            )
        )
    connection = await Connection.open(gateway)
    try:
        _, page = await connection.get("/team", auth)
    finally:
        connection.close()
    if page.count(b"data-person=") != TEAM_SIZE or b"not available" in page:
        raise RuntimeError("the team page did not show 50 people with role fit and scorecards")
    report.loads.append(os.getloadavg()[0])
    return report


def run(sizes: Sizes) -> Report:
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-gateway-"))
    children: list[procs.Child] = []
    try:
        nats_child, nats_url = procs.nats_server(workdir / "nats")
        children.append(nats_child)
        issuer = DevIssuer(str(workdir / "key.pem"), str(workdir / "jwks.json"), "engage-dev", "engage")
        admin_token = issuer.token(DemoUser("bench-hr", "", ("hr_admin",)))
        targets = {}
        for name in ("roles", "skills", "incentives"):
            child, targets[name] = start_service(workdir, name, nats_url, issuer.jwks_file)
            children.append(child)
            say(f"{name} service ready at {targets[name]}")
        say(f"seeding: a manager of {TEAM_SIZE} people, their roles and skills, the incentives demo")
        asyncio.run(
            seed(
                targets["roles"],
                targets["skills"],
                targets["incentives"],
                (("authorization", f"Bearer {admin_token}"),),
            )
        )
        port = procs.free_port()
        env = procs.python_env(
            {
                "ENGAGE_GATEWAY_PORT": str(port),
                "ENGAGE_GATEWAY_ROLES_TARGET": targets["roles"],
                "ENGAGE_GATEWAY_SKILLS_TARGET": targets["skills"],
                "ENGAGE_GATEWAY_INCENTIVES_TARGET": targets["incentives"],
                "ENGAGE_GATEWAY_OIDC_JWKS_FILE": str(issuer.jwks_file),
                "ENGAGE_GATEWAY_LIVE_UPDATES": "false",
                "ENGAGE_GATEWAY_RATE_PER_SECOND": "1000000",
                "ENGAGE_GATEWAY_RATE_BURST": "1000000",
                "ENGAGE_GATEWAY_LOG_LEVEL": "WARNING",
            }
        )
        gateway = start_http(workdir, "gateway", [sys.executable, "-m", "gateway.main"], env, port)
        children.append(gateway)
        base_port = procs.free_port()
        argv = [sys.executable, "-m", "bench.gateway", "--serve-baseline", str(base_port)]
        baseline = start_http(workdir, "baseline", argv, procs.python_env(), base_port)
        children.append(baseline)
        token = issuer.token(DemoUser(MANAGER, "", (), MANAGER))
        servers = [Server(f"http://127.0.0.1:{p}", pid_of(c)) for p, c in ((port, gateway), (base_port, baseline))]
        return asyncio.run(measure(servers[0], servers[1], targets["roles"], token, sizes))
    except BaseException:
        for child in children:
            print(f"--- {child.name} log ends with:\n{child.log_tail(8)}", file=sys.stderr)
        raise
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples for a quick look")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    sizes = Sizes(read_calls=400, page_samples=15) if args.quick else Sizes(read_calls=3000, page_samples=60)
    try:
        report = run(sizes)
    except (RuntimeError, OSError, grpc.RpcError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
