"""Daily snapshots of effective levels: the history behind skill trends.

One row per person, skill and day (`skill_level_snapshots`), written in the
transaction of every level change and of a person's move to another org unit,
as an upsert: a second change on the same day overwrites the day's row, and
writing the same facts twice leaves one row. The level of a person on any
day is their newest row on or before it; they count for the org unit that
row names.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.skills.store.bulk import insert_many
from services.skills.store.tables import ProjectedPersonRow, SkillLevelRow, SkillLevelSnapshotRow

_CHUNK = 500
_SNAPSHOTS = SkillLevelSnapshotRow.__table__  # type: ignore[attr-defined]
_P = ProjectedPersonRow.__table__  # type: ignore[attr-defined]
_L = SkillLevelRow.__table__  # type: ignore[attr-defined]
_KEY = ["person_id", "skill_id", "day"]


async def _upsert(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(s, _SNAPSHOTS, rows, conflict=_KEY)


async def record(s: AsyncSession, levels: Iterable[tuple[str, str, int, int]], now: datetime) -> None:
    """Today's row of each (person, skill, level, claimed level), in the person's current unit."""
    levels = list(levels)
    people = sorted({p for p, *_ in levels})
    units: dict[str, str] = {}
    for start in range(0, len(people), _CHUNK):
        # Locked: a move being projected at the same time either commits
        # first (and the rows name the new unit) or waits and rewrites them.
        query = (
            sa.select(_P.c.id, _P.c.org_unit_id).where(_P.c.id.in_(people[start : start + _CHUNK])).with_for_update()
        )
        units.update({p: u for p, u in await s.execute(query)})
    day = now.date()
    rows = [
        {"person_id": p, "skill_id": k, "day": day, "org_unit_id": units.get(p, ""), "level": lv, "claimed_level": c}
        for p, k, lv, c in levels
    ]
    await _upsert(s, rows)


async def person_moved(s: AsyncSession, person_id: str, unit_id: str, now: datetime) -> None:
    """From today the person's levels count for their new unit."""
    await s.flush()  # the person's row first: a level write in flight waits for it, or it for that write
    query = sa.select(_L.c.skill_id, _L.c.level, _L.c.claimed_level).where(
        _L.c.person_id == person_id, sa.or_(_L.c.level > 0, _L.c.claimed_level > 0)
    )
    day = now.date()
    rows = [
        {"person_id": person_id, "skill_id": k, "day": day, "org_unit_id": unit_id, "level": lv, "claimed_level": c}
        for k, lv, c in await s.execute(query)
    ]
    await _upsert(s, rows)


async def history(s: AsyncSession, skill_id: str, units: sa.Select[tuple[str]], until: date) -> dict[str, list[Any]]:
    """Per person who was ever in `units` by `until`: their snapshot rows of
    the skill up to that day, oldest first, as (day, unit, level)."""
    members = sa.select(_SNAPSHOTS.c.person_id).where(
        _SNAPSHOTS.c.skill_id == skill_id, _SNAPSHOTS.c.org_unit_id.in_(units), _SNAPSHOTS.c.day <= until
    )
    query = (
        sa.select(_SNAPSHOTS.c.person_id, _SNAPSHOTS.c.day, _SNAPSHOTS.c.org_unit_id, _SNAPSHOTS.c.level)
        .where(
            _SNAPSHOTS.c.skill_id == skill_id,
            _SNAPSHOTS.c.day <= until,
            _SNAPSHOTS.c.person_id.in_(members.distinct()),
        )
        .order_by(_SNAPSHOTS.c.person_id, _SNAPSHOTS.c.day)
    )
    out: dict[str, list[Any]] = {}
    for person, day, unit, level in await s.execute(query):
        out.setdefault(person, []).append((day, unit, level))
    return out
