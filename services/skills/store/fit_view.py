"""An in-memory view of what GetRoleFit reads, kept in step with the database.

GetRoleFit is the hot read (every screen that shows a person against a role
asks it), so it answers from memory instead of a transaction per call. The
view holds the people known to the projection, every role's versions and
requirements, the top ordinal of each skill's scale, and the effective levels
of everyone in the skills some role requires (only those: a company of
100,000 people holds about 20 levels each). It answers only where it answers
as the database would; otherwise the caller reads the database: before the
first load, for a person or a role version it does not hold, and for a level
past its `valid_until` (the database recomputes it on read).

Freshness:
- Levels and the catalogue follow the outbox: each level change
  (`people/{p}/skillLevels/{k}`) and catalogue change (`skills/*`,
  `proficiencyScales/*`) has an outbox row, and the view re-reads exactly
  those. A commit of this process marks the view stale and the next answer
  catches up first; commits of other replicas are seen within `poll_seconds`.
  Outbox numbers can commit out of order on PostgreSQL, so skipped numbers
  are looked at again for `gap_seconds` (as services/roles/store/decision_view.py does).
- Roles and requirements come from the roles service's events through the
  projection, which writes no outbox rows: each poll compares the count and
  the sum of the projected roles' sequences (every applied role event raises
  its role's) and reloads roles and people when they moved; people new since
  then are read from the database once and added.
- A level row rewritten without a change of level or claim (say, a
  certification at the same level with an expiry) publishes no event, so the
  view may hold an older `valid_until` for it; if that expiry then changes
  the level, the expiry sweep publishes the change (`expiry_sweep_seconds`)
  and the view follows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import Database
from services.platform.following import Follower
from services.platform.log import get_logger
from services.platform.outbox import OutboxRow
from services.skills.domain.fit import Requirement
from services.skills.domain.model import top_ordinal
from services.skills.messages import aware
from services.skills.store.tables import (
    ProficiencyScaleRow,
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    SkillLevelRow,
    SkillRow,
)

log = get_logger(__name__)

_OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
_PEOPLE = ProjectedPersonRow.__table__  # type: ignore[attr-defined]
_ROLES = ProjectedRoleRow.__table__  # type: ignore[attr-defined]
_REQS = ProjectedRequirementRow.__table__  # type: ignore[attr-defined]
_LEVELS = SkillLevelRow.__table__  # type: ignore[attr-defined]
_SKILLS = SkillRow.__table__  # type: ignore[attr-defined]
_SCALES = ProficiencyScaleRow.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # people per query when re-reading changed levels

Level = tuple[int, int, datetime | None]  # effective, claimed, valid_until


@dataclass(frozen=True)
class HeldRole:
    version: int  # the current one
    deleted: bool


@dataclass(frozen=True)
class ViewFit:
    """What GetRoleFit needs, as the view holds it."""

    version: int
    requirements: tuple[Requirement, ...]
    levels: dict[str, tuple[int, int]]
    tops: dict[str, int]


class FitView:
    def __init__(self, db: Database, *, poll_seconds: float = 0.1, gap_seconds: float = 10.0):
        self.db = db
        self.poll_seconds = poll_seconds
        self.gap_seconds = gap_seconds
        self.people: set[str] = set()
        self.roles: dict[str, HeldRole] = {}
        self.requirements: dict[tuple[str, int], tuple[Requirement, ...]] = {}
        self.required: set[str] = set()  # skills some role version requires
        self.levels: dict[str, dict[str, Level]] = {}  # person -> skill -> level
        self.tops: dict[str, int] = {}
        self.loaded = False
        self._seq = 0
        self._gaps: dict[int, float] = {}  # skipped outbox number -> first seen missing
        self._roles_mark: tuple[int, int] = (-1, -1)
        self._commits = 0  # commits of this process, and how many the view has applied
        self._applied = 0
        self._lock = asyncio.Lock()
        self._follower = Follower("fit_view", self.catch_up, poll_seconds)
        db.after_commit.append(self.mark_stale)

    def mark_stale(self) -> None:
        self._commits += 1

    def start(self) -> None:
        self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

    # ---- answering --------------------------------------------------------------------------

    async def fit(self, person_id: str, role_id: str, version: int | None, now: datetime) -> ViewFit | None:
        """The inputs of a person's fit to a role, or None where the database must answer."""
        if not self.loaded:
            return None  # the first load runs in the background; the database answers meanwhile
        if self._applied < self._commits:
            await self.catch_up(self._commits)
        role = self.roles.get(role_id)
        if person_id not in self.people or role is None or role.deleted or (version or 0) > role.version:
            return None
        used = version or role.version
        reqs = self.requirements.get((role_id, used), ())
        mine = self.levels.get(person_id, {})
        levels: dict[str, tuple[int, int]] = {}
        for r in reqs:
            held = mine.get(r.skill)
            if held is None:
                continue
            level, claimed, until = held
            if until is not None and until <= now:
                return None  # stale: the database recomputes it
            levels[r.skill] = (level, claimed)
        return ViewFit(used, reqs, levels, {r.skill: self.tops[r.skill] for r in reqs if r.skill in self.tops})

    def person_seen(self, person_id: str) -> None:
        """A person the database knows (they arrived after the view loaded them)."""
        self.people.add(person_id)

    # ---- keeping up ----------------------------------------------------------------------------

    async def catch_up(self, wanted: int | None = None) -> None:
        """Applies what changed; `wanted` skips the work if a catch-up that
        began after that many commits of this process has finished."""
        async with self._lock:
            if wanted is not None and self._applied >= wanted:
                return
            covers = self._commits  # every commit counted here is visible to the reads below
            async with self.db.read() as s:
                if self.loaded:
                    await self._apply_changes(s)
                else:
                    await self._load(s)
            self._applied = max(self._applied, covers)

    async def _load(self, s: AsyncSession) -> None:
        started = time.monotonic()
        self._seq = int((await s.execute(sa.select(sa.func.coalesce(sa.func.max(_OUTBOX.c.seq), 0)))).scalar_one())
        self._gaps.clear()
        await self._load_roles(s)
        self.levels = {}
        await self._load_levels(s, self.required)
        await self._load_tops(s)
        self.loaded = True
        log.info(
            "fit_view.loaded",
            people=len(self.people),
            levels=sum(len(v) for v in self.levels.values()),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _load_roles(self, s: AsyncSession) -> None:
        """Roles, their requirements and the people (who come and go with
        the projection), and the levels of skills newly required."""
        mark = await _roles_mark(s)
        roles = {r.id: HeldRole(r.version, r.deleted) for r in await s.execute(sa.select(_ROLES))}
        requirements: dict[tuple[str, int], list[Requirement]] = {}
        for q in await s.execute(sa.select(_REQS).order_by(_REQS.c.role_id, _REQS.c.version, _REQS.c.position)):
            requirements.setdefault((q.role_id, q.version), []).append(
                Requirement(q.skill_id, q.min_level, q.weight, q.mandatory)
            )
        people = {p for (p,) in await s.execute(sa.select(_PEOPLE.c.id))}
        required = {r.skill for reqs in requirements.values() for r in reqs}
        if self.loaded:
            await self._load_levels(s, required - self.required)
        self.roles, self.people, self.required = roles, people, required
        self.requirements = {k: tuple(v) for k, v in requirements.items()}
        self._roles_mark = mark

    async def _load_levels(self, s: AsyncSession, skills: Collection[str]) -> None:
        """Everyone's levels in `skills`, a skill per query (each a walk of the skill's index)."""
        for skill in sorted(skills):
            query = sa.select(_LEVELS.c.person_id, _LEVELS.c.level, _LEVELS.c.claimed_level, _LEVELS.c.valid_until)
            for person, level, claimed, until in await s.execute(query.where(_LEVELS.c.skill_id == skill)):
                self.levels.setdefault(person, {})[skill] = _level(level, claimed, until)

    async def _load_tops(self, s: AsyncSession) -> None:
        query = sa.select(_SKILLS.c.id, _SCALES.c.levels).join(_SCALES, _SCALES.c.id == _SKILLS.c.scale_id)
        self.tops = {skill: top_ordinal(lv["ordinal"] for lv in levels) for skill, levels in await s.execute(query)}

    async def _apply_changes(self, s: AsyncSession) -> None:
        newest, roles_mark = await _probe(s)
        if newest < self._seq:
            # The outbox was emptied and SQLite numbers again from 1: start over.
            self.loaded = False
            await self._load(s)
            return
        if newest == self._seq and not self._gaps and roles_mark == self._roles_mark:
            return  # nothing new: most polls end here, after one statement
        now = time.monotonic()
        self._gaps = {seq: seen for seq, seen in self._gaps.items() if now - seen < self.gap_seconds}
        query = sa.select(_OUTBOX.c.seq, _OUTBOX.c.subject).where(
            sa.or_(_OUTBOX.c.seq > self._seq, _OUTBOX.c.seq.in_(list(self._gaps)))
        )
        last, gaps = self._seq, dict(self._gaps)
        pairs: set[tuple[str, str]] = set()
        catalogue = False
        for seq, subject in await s.execute(query.order_by(_OUTBOX.c.seq)):
            if seq > last:
                gaps.update({missing: now for missing in range(last + 1, seq)})
                last = seq
            gaps.pop(seq, None)
            parts = subject.split("/")
            if len(parts) == 4 and parts[0] == "people" and parts[2] == "skillLevels":
                pairs.add((parts[1], parts[3]))
            elif parts[0] in ("skills", "proficiencyScales"):
                catalogue = True
        if roles_mark != self._roles_mark:
            await self._load_roles(s)
        if catalogue:
            await self._load_tops(s)
        await self._reload_levels(s, pairs)
        # Only now: a catch-up that fails half way is retried in full.
        self._seq, self._gaps = last, gaps

    async def _reload_levels(self, s: AsyncSession, pairs: set[tuple[str, str]]) -> None:
        wanted = sorted((p, k) for p, k in pairs if k in self.required)
        people = sorted({p for p, _ in wanted})
        for start in range(0, len(people), _CHUNK):
            chunk = people[start : start + _CHUNK]
            query = sa.select(
                _LEVELS.c.person_id, _LEVELS.c.skill_id, _LEVELS.c.level, _LEVELS.c.claimed_level, _LEVELS.c.valid_until
            ).where(_LEVELS.c.person_id.in_(chunk), _LEVELS.c.skill_id.in_(sorted({k for _, k in wanted})))
            for person, skill, level, claimed, until in await s.execute(query):
                self.levels.setdefault(person, {})[skill] = _level(level, claimed, until)


async def _probe(s: AsyncSession) -> tuple[int, tuple[int, int]]:
    """The newest outbox number and the roles mark, in one statement (the
    view polls ten times a second; on SQLite each statement is a thread hop)."""
    newest = sa.select(sa.func.coalesce(sa.func.max(_OUTBOX.c.seq), 0)).scalar_subquery()
    count = sa.select(sa.func.count()).select_from(_ROLES).scalar_subquery()
    total = sa.select(sa.func.coalesce(sa.func.sum(_ROLES.c.sequence), 0)).scalar_subquery()
    seq, roles, sequences = (await s.execute(sa.select(newest, count, total))).one()
    return int(seq), (int(roles), int(sequences))


async def _roles_mark(s: AsyncSession) -> tuple[int, int]:
    """Moves whenever a role event is applied: it raises its role's sequence (or adds the role)."""
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_ROLES.c.sequence), 0)).select_from(_ROLES)
    count, total = (await s.execute(query)).one()
    return int(count), int(total)


_SHARED: dict[Level, Level] = {}  # the few distinct levels without an expiry, each held once


def _level(level: int, claimed: int, until: datetime | None) -> Level:
    """Most levels have no expiry and only a handful of values: sharing one
    tuple per value halves the view's memory (about 40 MB for 100,000 people)."""
    if until is not None:
        return (level, claimed, aware(until))
    value = (level, claimed, None)
    return _SHARED.setdefault(value, value)
