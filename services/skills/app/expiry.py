"""Levels change by themselves when an assessment expires: this sweep finds
stored levels past their `valid_until`, recomputes them and publishes the
changes. Reads never wait for it: they recompute stale levels themselves."""

from __future__ import annotations

from sqlmodel import col, select

from services.platform.db import Database, utcnow
from services.platform.following import Follower
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


class ExpirySweep(Follower):
    """Runs `refresh_expired` every `interval_seconds`."""

    def __init__(self, db: Database, interval_seconds: float):
        super().__init__("skills_expiry_sweep", self._sweep, interval_seconds)
        self.db = db

    async def _sweep(self) -> None:
        if changed := await refresh_expired(self.db):
            log.info("skills.expired_levels_refreshed", changed=changed)
