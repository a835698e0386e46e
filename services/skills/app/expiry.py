"""Levels change by themselves when an assessment expires: this sweep finds
stored levels past their `valid_until`, recomputes them and publishes the
changes. Reads never wait for it: they recompute stale levels themselves."""

from __future__ import annotations

import asyncio
import contextlib

from sqlmodel import col, select

from services.platform.db import Database, utcnow
from services.platform.log import get_logger
from services.skills.app.levels import refresh_levels
from services.skills.store.tables import SkillLevelRow

log = get_logger(__name__)


async def refresh_expired(db: Database, batch_size: int = 500) -> int:
    """Refreshes every stale level; returns how many levels changed."""
    changed = 0
    while True:
        async with db.write() as uow:
            now = utcnow()
            query = (
                select(SkillLevelRow.person_id, SkillLevelRow.skill_id)
                .where(col(SkillLevelRow.valid_until) <= now)
                .limit(batch_size)
            )
            pairs = [(p, k) for p, k in (await uow.session.execute(query)).all()]
            changed += await refresh_levels(uow, pairs, now)
        if len(pairs) < batch_size:
            return changed


class ExpirySweep:
    def __init__(self, db: Database, interval_seconds: float):
        self.db = db
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="skills-expiry-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                changed = await refresh_expired(self.db)
                if changed:
                    log.info("skills.expired_levels_refreshed", changed=changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: try again next round
                log.warning("skills.expiry_sweep_failed", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval)
