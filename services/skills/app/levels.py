"""Keeping effective levels up to date: recomputed on every write that can
change them, published only when they change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import UnitOfWork
from services.skills.domain.effective import AssessmentFact, EffectiveLevel, Source, effective_level
from services.skills.events.outgoing import skill_level_event
from services.skills.messages import aware
from services.skills.store.tables import AssessmentRow, SkillLevelRow

Pair = tuple[str, str]  # (person id, skill id)
_CHUNK = 500


def fact_of(row: AssessmentRow) -> AssessmentFact:
    return AssessmentFact(
        id=row.id,
        level=row.level,
        source=Source(row.source),
        assessed_at=aware(row.assessed_at),  # type: ignore[arg-type]
        recorded_at=aware(row.create_time),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),
        superseded=row.superseded_by_id is not None,
    )


async def assessments_for(s: AsyncSession, pairs: Iterable[Pair]) -> dict[Pair, list[AssessmentRow]]:
    """Every assessment of the given (person, skill) pairs, in chunks of people."""
    wanted = set(pairs)
    by_person: dict[str, set[str]] = defaultdict(set)
    for person, skill in wanted:
        by_person[person].add(skill)
    people = sorted(by_person)
    out: dict[Pair, list[AssessmentRow]] = defaultdict(list)
    for start in range(0, len(people), _CHUNK):
        chunk = people[start : start + _CHUNK]
        skills = set().union(*(by_person[p] for p in chunk))
        query = select(AssessmentRow).where(
            col(AssessmentRow.person_id).in_(chunk), col(AssessmentRow.skill_id).in_(skills)
        )
        for row in (await s.exec(query)).all():
            if (row.person_id, row.skill_id) in wanted:
                out[(row.person_id, row.skill_id)].append(row)
    return out


def apply_level(row: SkillLevelRow, level: EffectiveLevel, now: datetime) -> bool:
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


async def refresh_levels(uow: UnitOfWork, pairs: Iterable[Pair], now: datetime) -> int:
    """Recomputes the levels of `pairs` from their assessments, stores them and
    emits `skill_level.changed` for each whose level or claim changed.
    Returns how many changed that way."""
    s = uow.session
    wanted = sorted(set(pairs))
    if not wanted:
        return 0
    # Lock the stored levels first: concurrent writers of the same levels then
    # take turns, and each reads the other's committed assessments.
    stored: dict[Pair, SkillLevelRow] = {}
    people = sorted({p for p, _ in wanted})
    for start in range(0, len(people), _CHUNK):
        chunk = set(people[start : start + _CHUNK])
        skills = {sk for p, sk in wanted if p in chunk}
        query = (
            select(SkillLevelRow)
            .where(col(SkillLevelRow.person_id).in_(chunk), col(SkillLevelRow.skill_id).in_(skills))
            .with_for_update()
        )
        for row in (await s.exec(query)).all():
            stored[(row.person_id, row.skill_id)] = row
    history = await assessments_for(s, wanted)
    changed = []
    for pair in wanted:
        level = effective_level([fact_of(a) for a in history.get(pair, [])], now)
        row = stored.get(pair) or SkillLevelRow(person_id=pair[0], skill_id=pair[1], revision=0, update_time=now)
        before = (row.level, row.claimed_level)
        if not apply_level(row, level, now) and row.revision > 0:
            continue
        row.revision += 1
        s.add(row)
        if (row.level, row.claimed_level) != before:
            changed.append((row, before))
    if changed:
        await s.flush()
        await uow.emit_many([skill_level_event(row, *before) for row, before in changed])
    return len(changed)


def current(row: SkillLevelRow, history: list[AssessmentRow], now: datetime) -> SkillLevelRow:
    """A stored level as it stands now: recomputed (not stored) if it went stale."""
    until = aware(row.valid_until)
    if until is None or until > now:
        return row
    fresh = SkillLevelRow(person_id=row.person_id, skill_id=row.skill_id, revision=row.revision, update_time=now)
    apply_level(fresh, effective_level([fact_of(a) for a in history], now), now)
    return fresh


async def current_levels(s: AsyncSession, rows: list[SkillLevelRow], now: datetime) -> list[SkillLevelRow]:
    """`rows` with every stale one recomputed from its assessments."""
    stale = [(r.person_id, r.skill_id) for r in rows if r.valid_until is not None and aware(r.valid_until) <= now]  # type: ignore[operator]
    if not stale:
        return rows
    history = await assessments_for(s, stale)
    return [current(r, history.get((r.person_id, r.skill_id), []), now) for r in rows]
