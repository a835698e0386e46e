"""Live updates: NATS events about assignments, the directory, skill levels and awards, fanned out to browsers.

A core NATS subscription (no consumer state: a page only needs to know that
something changed) feeds every open server-sent-events stream. The stream says
only what kind of thing changed, never which resource or person, so nobody
learns about objects outside their scope; the page then re-reads what it shows
through the authorised API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services.platform.log import get_logger

log = get_logger(__name__)

SUBJECTS = {
    "engage.roles.v1.assignment.>": "assignment",
    "engage.roles.v1.person.>": "directory",
    "engage.roles.v1.org_unit.>": "directory",
    "engage.skills.v1.skill_level.>": "skills",  # role fit on the team page moves with levels
    "engage.incentives.v1.award.>": "award",
}
HEARTBEAT_SECONDS = 15.0


class Broadcaster:
    def __init__(self, nats_url: str, on_directory_change: Callable[[], None]):
        self.nats_url = nats_url
        self.on_directory_change = on_directory_change
        self._queues: set[asyncio.Queue[str | None]] = set()
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-live")

    async def _run(self) -> None:
        while True:
            try:
                self._nc = await nats.connect(
                    self.nats_url,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=2,
                    error_cb=self._on_error,
                )
                break
            except Exception as exc:  # NATS may start after us; keep trying
                log.warning("gateway.live.nats_unreachable", error=str(exc))
                await asyncio.sleep(2)
        for subject in SUBJECTS:
            await self._nc.subscribe(subject, cb=self._on_message)
        self.connected.set()
        log.info("gateway.live.subscribed", subjects=list(SUBJECTS))

    async def _on_error(self, exc: Exception) -> None:
        log.warning("gateway.live.nats_error", error=str(exc) or type(exc).__name__)

    async def _on_message(self, msg: Msg) -> None:
        kind = next((k for s, k in SUBJECTS.items() if msg.subject.startswith(s[:-1])), "other")
        if kind == "directory":
            self.on_directory_change()
        self.publish(json.dumps({"kind": kind, "type": msg.subject}), kind)

    def publish(self, data: str, kind: str) -> None:
        frame = f"event: {kind}\ndata: {data}\n\n"
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(frame)

    async def stream(self, is_disconnected: Callable[[], object]) -> AsyncIterator[str]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=100)
        self._queues.add(queue)
        try:
            yield "retry: 2000\n: connected\n\n"
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    frame = ": heartbeat\n\n"
                if frame is None:
                    return
                yield frame
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.drain()
