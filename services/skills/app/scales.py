"""Which proficiency scale each skill uses, for normalising levels to 0-100.

A scale's normalisation depends only on its highest ordinal; it is cached
per scale revision (a changed scale has a new revision, so a stale entry is
never read), and each read asks only for the skills' scale ids and revisions.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.skills.domain.model import top_ordinal
from services.skills.store.tables import ProficiencyScaleRow, SkillRow

_SKILLS = SkillRow.__table__  # type: ignore[attr-defined]
_SCALES = ProficiencyScaleRow.__table__  # type: ignore[attr-defined]
_TOPS: dict[tuple[str, int], int] = {}


async def top(s: AsyncSession, scale_id: str, revision: int) -> int:
    """The highest ordinal of a scale at a revision."""
    key = (scale_id, revision)
    if key not in _TOPS:
        row = (await s.execute(sa.select(_SCALES.c.levels).where(_SCALES.c.id == scale_id))).first()
        _TOPS[key] = top_ordinal(lv["ordinal"] for lv in row[0]) if row else 0
    return _TOPS[key]


async def skill_tops(s: AsyncSession, skills: Collection[str]) -> dict[str, int]:
    """The highest ordinal of each skill's scale (skills not found are left out)."""
    if not skills:
        return {}
    query = (
        sa.select(_SKILLS.c.id, _SKILLS.c.scale_id, _SCALES.c.revision)
        .join(_SCALES, _SCALES.c.id == _SKILLS.c.scale_id)
        .where(_SKILLS.c.id.in_(sorted(skills)))
    )
    return {skill: await top(s, scale, revision) for skill, scale, revision in await s.execute(query)}
