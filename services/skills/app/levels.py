"""Keeping effective levels up to date: recomputed on every write that can
change them, published only when they change.

Writes go through SQLAlchemy core in chunks (no ORM object per level): an
import of millions of assessments refreshes millions of levels, and building
an ORM object for each costs more than the rule itself. With every level
change the same transaction writes the day's snapshot
(services/skills/app/snapshots.py) and the person's role fits
(services/skills/app/role_fits.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import UnitOfWork
from services.skills.app import role_fits, scales, snapshots
from services.skills.domain.effective import AssessmentFact, EffectiveLevel, Source, effective_level
from services.skills.events.outgoing import skill_level_events
from services.skills.messages import aware
from services.skills.store.bulk import insert_many
from services.skills.store.tables import AssessmentRow, SkillLevelRow, StoredLevel

Pair = tuple[str, str]  # (person id, skill id)
_CHUNK = 500  # people per query: drivers cap the parameters of one statement
_WRITE_CHUNK = 5000
_LEVELS = SkillLevelRow.__table__  # type: ignore[attr-defined]
_ASSESSMENTS = AssessmentRow.__table__  # type: ignore[attr-defined]
_FACT_COLUMNS = [
    _ASSESSMENTS.c[name]
    for name in (
        "person_id",
        "skill_id",
        "id",
        "level",
        "source",
        "assessed_at",
        "create_time",
        "expires_at",
        "superseded_by_id",
    )
]


def _by_person(pairs: Iterable[Pair]) -> list[tuple[list[str], set[str]]]:
    """Chunks of people, each with the skills wanted of any of them."""
    by_person: dict[str, set[str]] = defaultdict(set)
    for person, skill in pairs:
        by_person[person].add(skill)
    people = sorted(by_person)
    chunks = []
    for start in range(0, len(people), _CHUNK):
        chunk = people[start : start + _CHUNK]
        chunks.append((chunk, set().union(*(by_person[p] for p in chunk))))
    return chunks


async def facts_for(s: AsyncSession, pairs: Iterable[Pair]) -> dict[Pair, list[AssessmentFact]]:
    """What the rule needs of every assessment of the given (person, skill) pairs."""
    wanted = set(pairs)
    out: dict[Pair, list[AssessmentFact]] = defaultdict(list)
    for people, skills in _by_person(wanted):
        query = sa.select(*_FACT_COLUMNS).where(
            _ASSESSMENTS.c.person_id.in_(people), _ASSESSMENTS.c.skill_id.in_(skills)
        )
        for person, skill, aid, level, source, assessed, created, expires, superseded_by in await s.execute(query):
            if (person, skill) in wanted:
                out[(person, skill)].append(
                    AssessmentFact(
                        aid,
                        level,
                        Source(source),
                        aware(assessed),  # type: ignore[arg-type]
                        aware(created),  # type: ignore[arg-type]
                        aware(expires),
                        superseded_by is not None,
                    )
                )
    return out


async def stored_levels(s: AsyncSession, pairs: Iterable[Pair], *, lock: bool = False) -> dict[Pair, StoredLevel]:
    wanted = set(pairs)
    out: dict[Pair, StoredLevel] = {}
    for people, skills in _by_person(wanted):
        query = sa.select(_LEVELS).where(_LEVELS.c.person_id.in_(people), _LEVELS.c.skill_id.in_(skills))
        if lock:
            query = query.with_for_update()
        for row in (await s.execute(query)).mappings():
            pair = (row["person_id"], row["skill_id"])
            if pair in wanted:
                level = StoredLevel(**row)
                level.assessed_at, level.valid_until = aware(level.assessed_at), aware(level.valid_until)
                out[pair] = level
    return out


def apply_level(row: SkillLevelRow | StoredLevel, level: EffectiveLevel, now: datetime) -> bool:
    """Copies a computed level onto its row; True if what a reader sees changed."""
    new = (
        level.level,
        level.claimed_level,
        level.source.value if level.source else "",
        list(level.basis),
        level.explanation,
        level.assessed_at,
        level.valid_until,
    )
    old = (
        row.level,
        row.claimed_level,
        row.source,
        list(row.basis),
        row.explanation,
        aware(row.assessed_at),
        aware(row.valid_until),
    )
    if new == old:
        return False
    (
        row.level,
        row.claimed_level,
        row.source,
        row.basis,
        row.explanation,
        row.assessed_at,
        row.valid_until,
    ) = new
    row.update_time = now
    return True


async def refresh_levels(
    uow: UnitOfWork, pairs: Iterable[Pair], now: datetime, fresh: Mapping[Pair, list[AssessmentFact]] | None = None
) -> int:
    """Recomputes the levels of `pairs` from their assessments, stores them and
    emits `skill_level.changed` for each whose level or claim changed.
    Returns how many changed that way.

    `fresh` may give the assessments of pairs that are new in this
    transaction: a pair without a stored level has no earlier assessment
    (every write stores the level of what it wrote), so its history is not
    read back."""
    s = uow.session
    wanted = sorted(set(pairs))
    if not wanted:
        return 0
    await s.flush()  # ORM changes of this transaction (e.g. a superseded assessment) must be visible
    # Lock the stored levels first: concurrent writers of the same levels then
    # take turns, and each reads the other's committed assessments.
    stored = await stored_levels(s, wanted, lock=True)
    fresh = fresh or {}
    history = await facts_for(s, [p for p in wanted if p in stored or p not in fresh])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: list[tuple[StoredLevel, int, int]] = []
    for pair in wanted:
        facts = history.get(pair, []) if pair in stored or pair not in fresh else fresh[pair]
        row = stored.get(pair) or StoredLevel(pair[0], pair[1], update_time=now)
        before = (row.level, row.claimed_level)
        if not apply_level(row, effective_level(facts, now), now) and row.revision > 0:
            continue
        row.revision += 1
        values = row.values()
        if row.revision == 1:
            inserts.append(values)
        else:
            values["_person"], values["_skill"] = values.pop("person_id"), values.pop("skill_id")
            updates.append(values)
        if (row.level, row.claimed_level) != before:
            changed.append((row, *before))
    await _write(s, inserts, updates)
    if changed:
        tops = await scales.skill_tops(s, {row.skill_id for row, _, _ in changed})
        await uow.emit_many(skill_level_events(changed, tops))
        await snapshots.record(s, [(r.person_id, r.skill_id, r.level, r.claimed_level) for r, _, _ in changed], now)
        await role_fits.refresh_people(s, {(r.person_id, r.skill_id) for r, level, _ in changed if r.level != level})
    return len(changed)


async def _write(s: AsyncSession, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
    await insert_many(s, _LEVELS, inserts)
    if updates:
        by_key = sa.update(_LEVELS).where(
            _LEVELS.c.person_id == sa.bindparam("_person"), _LEVELS.c.skill_id == sa.bindparam("_skill")
        )
        for start in range(0, len(updates), _WRITE_CHUNK):
            await s.execute(by_key, updates[start : start + _WRITE_CHUNK])


def current(row: SkillLevelRow, history: list[AssessmentFact], now: datetime) -> SkillLevelRow:
    """A stored level as it stands now: recomputed (not stored) if it went stale."""
    until = aware(row.valid_until)
    if until is None or until > now:
        return row
    fresh = SkillLevelRow(person_id=row.person_id, skill_id=row.skill_id, revision=row.revision, update_time=now)
    apply_level(fresh, effective_level(history, now), now)
    return fresh


async def current_levels(s: AsyncSession, rows: list[SkillLevelRow], now: datetime) -> list[SkillLevelRow]:
    """`rows` with every stale one recomputed from its assessments."""
    stale = [(r.person_id, r.skill_id) for r in rows if r.valid_until is not None and aware(r.valid_until) <= now]  # type: ignore[operator]
    if not stale:
        return rows
    history = await facts_for(s, stale)
    return [current(r, history.get((r.person_id, r.skill_id), []), now) for r in rows]
