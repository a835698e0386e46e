"""The background loop of a part that polls the database.

The roles decision view, the skills fit view and the incentives scorecard
board each keep data in memory and catch up with what other replicas
committed by polling; the skills expiry sweep looks for lapsed levels. This
runs such a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from services.platform.log import get_logger

log = get_logger(__name__)


class Follower:
    """Calls `step` every `poll_seconds` in a task of its own. A step that
    fails (the database is down) is tried again at the next poll; the failure
    and the recovery are logged once each, as `<name>.failed` and
    `<name>.recovered`."""

    def __init__(self, name: str, step: Callable[[], Awaitable[object]], poll_seconds: float):
        self.name = name
        self.step = step
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.step()
            except Exception as exc:
                if not failing:
                    log.warning(f"{self.name}.failed", error=str(exc) or type(exc).__name__)
                failing = True
            else:
                if failing:
                    log.info(f"{self.name}.recovered")
                failing = False
            await asyncio.sleep(self.poll_seconds)
