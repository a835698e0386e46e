"""Child processes of the benchmark: NATS, the echo server, the roles service.

Each server runs in a session of its own, so a Ctrl-C reaches only the
benchmark, which then stops every child it started (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Self

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("ENGAGE_BENCH_POSTGRES", "postgres@127.0.0.1:5432/test")

NATS_CONFIG = """
listen: 127.0.0.1:{port}
jetstream {{
  store_dir: "{store}"
  sync_interval: always
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "gen")])
    env.update(extra or {})
    return env


class Child:
    """A started process with its output in a log file; `stop()` is idempotent."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True
        )
        return self

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; its log ends with:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_tcp(child: Child, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout:.0f} s")


def nats_server(workdir: Path) -> tuple[Child, str]:
    """A started NATS server with JetStream in `workdir`, and its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "nats.conf"
    config.write_text(NATS_CONFIG.format(port=port, store=workdir / "store"))
    binary = Path(sys.executable).parent / "nats-server"
    child = Child("nats-server", [str(binary), "-c", str(config)], workdir / "nats.log").start()
    try:
        wait_for_tcp(child, port)
    except BaseException:
        child.stop()
        raise
    return child, f"nats://127.0.0.1:{port}"


def echo_server(workdir: Path) -> tuple[Child, str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.echo", "--port", str(port)]
    child = Child("echo server", argv, workdir / "echo.log", python_env()).start()
    try:
        wait_for_tcp(child, port)
    except BaseException:
        child.stop()
        raise
    return child, f"127.0.0.1:{port}"


def roles_env(database_url: str, nats_url: str, port: int) -> dict[str, str]:
    return python_env(
        {
            "ENGAGE_DATABASE_URL": database_url,
            "ENGAGE_NATS_URL": nats_url,
            "ENGAGE_GRPC_PORT": str(port),
            "ENGAGE_METRICS_PORT": "0",
            "ENGAGE_AUTH_MODE": "dev",
            "ENGAGE_DRAIN_SECONDS": "0",
            "ENGAGE_GRACE_SECONDS": "2",
            "ENGAGE_LOG_LEVEL": "WARNING",
        }
    )


def roles_service(workdir: Path, name: str, database_url: str, nats_url: str) -> tuple[Child, str]:
    """Migrates the database, starts the service and waits until it is ready."""
    port = free_port()
    env = roles_env(database_url, nats_url, port)
    migrate = subprocess.run(
        [sys.executable, "-m", "services.roles.migrate"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise RuntimeError(f"migration of {database_url} failed:\n{migrate.stdout}{migrate.stderr}")
    argv = [sys.executable, "-m", "services.roles.main"]
    child = Child(f"roles service ({name})", argv, workdir / f"roles-{name}.log", env).start()
    target = f"127.0.0.1:{port}"
    try:
        wait_for_tcp(child, port, timeout=30)
        asyncio.run(wait_ready(child, target))
    except BaseException:
        child.stop()
        raise
    return child, target


async def wait_ready(child: Child, target: str, timeout: float = 30.0) -> None:
    """Until health check `readiness` (database and NATS) answers SERVING."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            child.check_alive()
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} was not ready within {timeout:.0f} s:\n{child.log_tail()}")


# ---- PostgreSQL databases of their own ------------------------------------------


def new_pg_database_name() -> str:
    return f"engage_bench_{uuid.uuid4().hex[:12]}"


async def create_pg_database(name: str) -> str:
    """Creates an empty database; returns its SQLAlchemy URL."""
    conn = await asyncpg.connect(f"postgresql://{POSTGRES}", timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"', timeout=30)
    finally:
        await conn.close()
    server = POSTGRES.rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{server}/{name}"


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(f"postgresql://{POSTGRES}", timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=30)
    finally:
        await conn.close()
