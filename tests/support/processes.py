"""Engage services as real processes, for tests that signal, kill or starve them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.nats_server import free_port
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint

ROOT = Path(__file__).resolve().parents[2]
# For tests that stop a service only to clean up: no drain before the stop (the default waits 5 s).
QUICK_STOP = {"ENGAGE_DRAIN_SECONDS": "0", "ENGAGE_GRACE_SECONDS": "1"}


class ChildProcess:
    """A started child: signal, kill -9, resident memory, stop (SIGTERM, then SIGKILL)."""

    label = "child"
    proc: subprocess.Popen[bytes] | None = None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """kill -9: no graceful shutdown, no flush, whatever was in flight is cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss_kb(self) -> int:
        """Resident set size from /proc/<pid>/status (VmRSS, in kB)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.label} (pid {self.proc.pid})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ServiceProcess(ChildProcess):
    """One service (`services.<name>`) as its own process: migrate, start, signal, kill -9, RSS."""

    module = ""

    def __init__(self, db_url: str, nats_url: str, mint: TokenMint, workdir: Path, **env: str):
        self.port = free_port()
        self.log_path = workdir / f"{self.module.rsplit('.', 1)[-1]}-{self.port}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "ENGAGE_DATABASE_URL": db_url,
            "ENGAGE_NATS_URL": nats_url,
            "ENGAGE_GRPC_PORT": str(self.port),
            "ENGAGE_METRICS_PORT": "0",
            "ENGAGE_AUTH_MODE": "jwt",
            "ENGAGE_AUTH_JWKS_FILE": str(mint.jwks_file),
            "ENGAGE_AUTH_ISSUER": ISSUER,
            "ENGAGE_AUTH_AUDIENCE": AUDIENCE,
            "ENGAGE_LOG_FORMAT": "json",
            **env,
        }
        self.label = self.module
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", f"{self.module}.migrate"], env=self.env, check=True, cwd=ROOT, timeout=60)

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"{self.module}.main"], env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.module} exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    answer = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=0.5)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{self.module} did not become ready; see {self.log_path}")


class RolesProcess(ServiceProcess):
    module = "services.roles"


class SkillsProcess(ServiceProcess):
    module = "services.skills"


class IncentivesProcess(ServiceProcess):
    module = "services.incentives"


class PostgresServer:
    """A PostgreSQL of the test's own (initdb + pg_ctl), so the test may stop it."""

    def __init__(self) -> None:
        self.port = free_port()
        # Outside pytest's root-only temp tree: the server runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="engage-pg-"))
        self.data = self.root / "data"
        self.bin = _pg_bin()
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        subprocess.run(
            [f"{self.bin}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
            user=_pg_user(),
        )

    def start(self) -> None:
        subprocess.run(
            [
                f"{self.bin}/pg_ctl",
                "-D",
                str(self.data),
                "-w",
                "-l",
                str(self.data / "log"),
                "-o",
                f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=60,
            user=_pg_user(),
        )

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(
            [f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
            user=_pg_user(),
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _pg_bin() -> str:
    base = Path("/usr/lib/postgresql")
    versions = sorted(base.iterdir()) if base.exists() else []
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return str(versions[-1] / "bin")


def _pg_user() -> str | None:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user."""
    return "postgres" if os.geteuid() == 0 else None


class GatewayProcess(ChildProcess):
    """The gateway (`python -m gateway.main`) in front of running services, trusting the test key set."""

    def __init__(self, mint: TokenMint, workdir: Path, roles: str, skills: str, incentives: str, **env: str):
        self.port = free_port()
        self.log_path = workdir / f"gateway-{self.port}.log"
        self.label = "gateway"
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "ENGAGE_GATEWAY_PORT": str(self.port),
            "ENGAGE_GATEWAY_ROLES_TARGET": roles,
            "ENGAGE_GATEWAY_SKILLS_TARGET": skills,
            "ENGAGE_GATEWAY_INCENTIVES_TARGET": incentives,
            "ENGAGE_GATEWAY_OIDC_ISSUER": ISSUER,
            "ENGAGE_GATEWAY_OIDC_AUDIENCE": AUDIENCE,
            "ENGAGE_GATEWAY_OIDC_JWKS_FILE": str(mint.jwks_file),
            "ENGAGE_GATEWAY_LIVE_UPDATES": "false",
            "ENGAGE_GATEWAY_RATE_PER_SECOND": "10000",
            "ENGAGE_GATEWAY_RATE_BURST": "10000",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.main"], env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=0.5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the gateway did not start; see {self.log_path}")
