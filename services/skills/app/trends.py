"""GetTeamSkillTrend: a team's level in a skill between two dates, from the
daily snapshots (services/skills/app/snapshots.py); the arithmetic is in
services/skills/domain/trends.py."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select

from services.platform.auth import current_identity
from services.platform.db import Database
from services.platform.errors import NotFound
from services.skills.app import scales, snapshots
from services.skills.app.access import authorize_unit_read
from services.skills.domain.trends import TrendPoint, trend_points
from services.skills.store.tables import ProjectedOrgUnitRow, SkillRow


async def team_trend(db: Database, unit_id: str, skill_id: str, days: list[date]) -> list[TrendPoint]:
    async with db.read() as s:
        unit = await s.get(ProjectedOrgUnitRow, unit_id)
        if unit is None or unit.deleted:
            raise NotFound(f"orgUnits/{unit_id} is not known to the skills service", "ORG_UNIT_NOT_FOUND")
        await authorize_unit_read(s, current_identity(), unit)
        if await s.get(SkillRow, skill_id) is None:
            raise NotFound(f"skills/{skill_id} does not exist", "SKILL_NOT_FOUND")
        units = select(ProjectedOrgUnitRow.id).where(
            col(ProjectedOrgUnitRow.path).startswith(unit.path, autoescape=True)
        )
        team = set((await s.exec(units)).all())
        history = await snapshots.history(s, skill_id, units, days[-1])  # type: ignore[arg-type]
        top = (await scales.skill_tops(s, [skill_id])).get(skill_id, 0)
        return trend_points(history, days, team, top)
