"""Role fit use cases: a person against a role, candidates for a role, a
team's skill matrix and the gap report. Read-only; the rules are in
services/skills/domain/fit.py, the facts about roles and people in the
projection of the roles service's events."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.auth import current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import NotFound, invalid
from services.skills.app import scales
from services.skills.app.access import authorize_person_read, authorize_unit_read, reads_everywhere
from services.skills.app.levels import current_levels
from services.skills.domain.fit import Requirement, RoleFit, role_fit
from services.skills.messages import aware
from services.skills.store.fit_view import FitView
from services.skills.store.tables import (
    ProficiencyScaleRow,
    ProjectedAssignmentRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    RoleFitRow,
    SkillLevelRow,
    SkillRow,
)

Levels = dict[str, dict[str, tuple[int, int]]]  # person -> skill -> (effective, claimed)
Tops = dict[str, int]  # skill -> highest ordinal of its scale, for normalised levels
_CHUNK = 500


@dataclass(frozen=True)
class RoleRequirements:
    role_id: str
    version: int
    requirements: tuple[Requirement, ...]


async def role_requirements(s: AsyncSession, role_id: str, version: int | None = None) -> RoleRequirements:
    role = await s.get(ProjectedRoleRow, role_id)
    if role is None or role.deleted:
        raise NotFound(f"roles/{role_id} is not known to the skills service", "ROLE_NOT_FOUND")
    wanted = version or role.version
    if wanted > role.version:
        raise NotFound(f"roles/{role_id}@{wanted} does not exist", "ROLE_NOT_FOUND")
    rows = (
        await s.exec(
            select(ProjectedRequirementRow)
            .where(ProjectedRequirementRow.role_id == role_id, ProjectedRequirementRow.version == wanted)
            .order_by(col(ProjectedRequirementRow.position))
        )
    ).all()
    reqs = tuple(Requirement(r.skill_id, r.min_level, r.weight, r.mandatory) for r in rows)
    return RoleRequirements(role_id, wanted, reqs)


async def levels_of(s: AsyncSession, people: list[str], skills: set[str] | None, now: datetime) -> Levels:
    """Effective and claimed levels of people (optionally only some skills)."""
    out: Levels = defaultdict(dict)
    for start in range(0, len(people), _CHUNK):
        query = select(SkillLevelRow).where(col(SkillLevelRow.person_id).in_(people[start : start + _CHUNK]))
        if skills is not None:
            query = query.where(col(SkillLevelRow.skill_id).in_(skills))
        rows = await current_levels(s, list((await s.exec(query)).all()), now)
        for r in rows:
            out[r.person_id][r.skill_id] = (r.level, r.claimed_level)
    return out


def fit_of(reqs: RoleRequirements, levels: dict[str, tuple[int, int]]) -> RoleFit:
    return role_fit(reqs.requirements, {k: v[0] for k, v in levels.items()}, {k: v[1] for k, v in levels.items()})


async def _unit(s: AsyncSession, unit_id: str, field: str) -> ProjectedOrgUnitRow:
    unit = await s.get(ProjectedOrgUnitRow, unit_id)
    if unit is None or unit.deleted:
        raise NotFound(f"orgUnits/{unit_id} is not known to the skills service", "ORG_UNIT_NOT_FOUND")
    return unit


def _units_below(path: str) -> sa.Select[tuple[str]]:
    return select(ProjectedOrgUnitRow.id).where(col(ProjectedOrgUnitRow.path).startswith(path, autoescape=True))  # type: ignore[return-value]


def _active_at(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(ProjectedAssignmentRow.valid_from) <= now,
        or_(col(ProjectedAssignmentRow.valid_to).is_(None), col(ProjectedAssignmentRow.valid_to) > now),
    )


# ---- GetRoleFit ------------------------------------------------------------------------


def _fit_query(pinned: bool) -> sa.Select[Any]:
    """The person, the role's requirements (current or `:version`) and the
    person's levels in them, in one statement (built once: compiled once)."""
    P, R, Q, L, K, C = (
        t.__table__  # type: ignore[attr-defined,union-attr]
        for t in (
            ProjectedPersonRow, ProjectedRoleRow, ProjectedRequirementRow, SkillLevelRow, SkillRow, ProficiencyScaleRow
        )
    )  # fmt: skip
    version = sa.bindparam("version") if pinned else R.c.version
    columns = [P.c[k] for k in ("org_unit_id", "manager_id", "status")] + [R.c.version, R.c.deleted]
    columns += [Q.c[k] for k in ("skill_id", "min_level", "weight", "mandatory")]
    columns += [L.c[k] for k in ("level", "claimed_level", "valid_until")] + [K.c.scale_id, C.c.revision]
    return (
        sa.select(*columns)
        .select_from(P)
        .join(R, R.c.id == sa.bindparam("role"))
        .outerjoin(Q, sa.and_(Q.c.role_id == R.c.id, Q.c.version == version))
        .outerjoin(L, sa.and_(L.c.person_id == P.c.id, L.c.skill_id == Q.c.skill_id))
        .outerjoin(K, K.c.id == Q.c.skill_id)
        .outerjoin(C, C.c.id == K.c.scale_id)
        .where(P.c.id == sa.bindparam("person"))
        .order_by(Q.c.position)
    )


_FIT_QUERIES = {False: _fit_query(False), True: _fit_query(True)}


async def get_role_fit(
    db: Database, person_id: str, role_id: str, version: int | None, view: FitView | None = None
) -> tuple[int, RoleFit, Tops]:
    """From the in-memory view where it can answer (services/skills/store/fit_view.py)
    for a caller who may read anyone's skills or their own; else from the database."""
    now = utcnow()
    caller = current_identity()
    if view is not None and (reads_everywhere(caller) or caller.person_id == person_id):
        held = await view.fit(person_id, role_id, version, now)
        if held is not None:
            reqs = RoleRequirements(role_id, held.version, held.requirements)
            return held.version, fit_of(reqs, held.levels), held.tops
    answer = await _stored_role_fit(db, person_id, role_id, version, now)
    if view is not None:
        view.person_seen(person_id)  # the database knows them: the view may answer next time
    return answer


async def _stored_role_fit(
    db: Database, person_id: str, role_id: str, version: int | None, now: datetime
) -> tuple[int, RoleFit, Tops]:
    """One statement reads the person, the role's requirements and the
    person's levels in them; errors and stale levels take the long way."""
    params = {"person": person_id, "role": role_id, "version": version}
    async with db.read() as s:
        rows = (await (await s.connection()).execute(_FIT_QUERIES[version is not None], params)).all()
        first = rows[0] if rows else None
        if first is None or first.deleted or (version or 0) > first.version:
            return await _role_fit_checked(s, person_id, role_id, version, now)
        person = ProjectedPersonRow(
            id=person_id, org_unit_id=first.org_unit_id, manager_id=first.manager_id, status=first.status
        )
        await authorize_person_read(s, current_identity(), person)
        if any(r.valid_until is not None and aware(r.valid_until) <= now for r in rows):  # type: ignore[operator]
            return await _role_fit_checked(s, person_id, role_id, version, now)
        used = version or first.version
        reqs = tuple(Requirement(r.skill_id, r.min_level, r.weight, r.mandatory) for r in rows if r.skill_id)
        levels = {r.skill_id: (r.level, r.claimed_level) for r in rows if r.skill_id and r.level is not None}
        tops = {r.skill_id: await scales.top(s, r.scale_id, r.revision) for r in rows if r.scale_id}
        return used, fit_of(RoleRequirements(role_id, used, reqs), levels), tops


async def _role_fit_checked(
    s: AsyncSession, person_id: str, role_id: str, version: int | None, now: datetime
) -> tuple[int, RoleFit, Tops]:
    person = await s.get(ProjectedPersonRow, person_id)
    if person is None:
        raise NotFound(f"people/{person_id} is not known to the skills service", "PERSON_NOT_FOUND")
    await authorize_person_read(s, current_identity(), person)
    reqs = await role_requirements(s, role_id, version)
    levels = await levels_of(s, [person_id], {r.skill for r in reqs.requirements}, now)
    tops = await scales.skill_tops(s, {r.skill for r in reqs.requirements})
    return reqs.version, fit_of(reqs, levels.get(person_id, {})), tops


# ---- FindCandidates -----------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateFit:
    person_id: str
    org_unit_id: str
    fit: RoleFit


@dataclass(frozen=True)
class CandidateQuery:
    role_id: str
    unit_id: str
    min_score: float
    fits_only: bool
    include_on_leave: bool
    exclude_holders: bool


async def find_candidates(
    db: Database, q: CandidateQuery, offset: int, size: int
) -> tuple[int, list[CandidateFit], Tops]:
    """Ranks by the fits kept on write (fits first, then score, surplus and
    id), then explains the page with the exact rule."""
    now = utcnow()
    async with db.read() as s:
        unit = await _unit(s, q.unit_id, "org_unit") if q.unit_id else None
        await authorize_unit_read(s, current_identity(), unit)
        reqs = await role_requirements(s, q.role_id)
        P, F = ProjectedPersonRow, RoleFitRow
        statuses = ["ACTIVE", "LEAVE"] if q.include_on_leave else ["ACTIVE"]
        filters = [col(P.status).in_(statuses)]
        if unit is not None:
            filters.append(col(P.org_unit_id).in_(_units_below(unit.path)))
        if q.exclude_holders:
            holders = select(ProjectedAssignmentRow.person_id).where(
                ProjectedAssignmentRow.role_id == q.role_id, _active_at(now)
            )
            filters.append(col(P.id).not_in(holders))
        total_weight = sum(max(r.weight, 0.0) for r in reqs.requirements)
        if not reqs.requirements or total_weight <= 0:
            # Nothing to meet: everyone fits with score 1, by id.
            stmt = select(P.id, P.org_unit_id).where(*filters).order_by(col(P.id)).offset(offset).limit(size)
        else:
            # The fits kept on write (services/skills/app/role_fits.py), read in
            # the order of their index: fits first, then score, surplus and id.
            stmt = (
                select(P.id, P.org_unit_id)
                .select_from(F)
                .join(P, col(P.id) == col(F.person_id))
                .where(F.role_id == q.role_id, F.version == reqs.version, *filters)
            )
            if q.fits_only:
                stmt = stmt.where(F.misfit == 0)
            if q.min_score > 0:
                stmt = stmt.where(col(F.score) >= q.min_score - 1e-9)
            stmt = (
                stmt.order_by(col(F.misfit), col(F.score).desc(), col(F.surplus).desc(), col(F.person_id))
                .offset(offset)
                .limit(size)
            )
        rows = [(r[0], r[1]) for r in (await s.execute(stmt)).all()]
        levels = await levels_of(s, [p for p, _ in rows], {r.skill for r in reqs.requirements}, now)
        tops = await scales.skill_tops(s, {r.skill for r in reqs.requirements})
        return reqs.version, [CandidateFit(p, u, fit_of(reqs, levels.get(p, {}))) for p, u in rows], tops


# ---- GetTeamSkillMatrix ---------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixRow:
    person_id: str
    org_unit_id: str
    cells: list[tuple[str, int, int, int]]  # skill, level, claimed, required
    roles: list[tuple[str, RoleFit]]


async def team_matrix(
    db: Database, unit_id: str, include_descendants: bool, skills: list[str]
) -> tuple[list[str], list[MatrixRow], Tops]:
    now = utcnow()
    async with db.read() as s:
        unit = await _unit(s, unit_id, "org_unit")
        await authorize_unit_read(s, current_identity(), unit)
        P = ProjectedPersonRow
        query = select(P).where(col(P.status).in_(["ACTIVE", "LEAVE"])).order_by(col(P.id))
        if include_descendants:
            query = query.where(col(P.org_unit_id).in_(_units_below(unit.path)))
        else:
            query = query.where(P.org_unit_id == unit_id)
        people = list((await s.exec(query)).all())
        ids = [p.id for p in people]
        held: dict[str, list[str]] = defaultdict(list)
        for start in range(0, len(ids), _CHUNK):
            assignments = await s.exec(
                select(ProjectedAssignmentRow)
                .where(col(ProjectedAssignmentRow.person_id).in_(ids[start : start + _CHUNK]), _active_at(now))
                .order_by(col(ProjectedAssignmentRow.role_id))
            )
            for a in assignments.all():
                if a.role_id not in held[a.person_id]:
                    held[a.person_id].append(a.role_id)
        role_reqs: dict[str, RoleRequirements] = {}
        for role_id in sorted({r for roles in held.values() for r in roles}):
            try:
                role_reqs[role_id] = await role_requirements(s, role_id)
            except NotFound:
                continue
        levels = await levels_of(s, ids, set(skills) if skills else None, now)
        if skills:
            columns = list(dict.fromkeys(skills))
        else:
            required = [r.skill for rr in role_reqs.values() for r in rr.requirements]
            held_skills = sorted({k for lv in levels.values() for k, v in lv.items() if v[0] > 0 or v[1] > 0})
            columns = list(dict.fromkeys([*required, *held_skills]))
        rows = []
        for p in people:
            mine = levels.get(p.id, {})
            required_level: dict[str, int] = {}
            fits = []
            for role_id in held.get(p.id, []):
                rr = role_reqs.get(role_id)
                if rr is None:
                    continue
                for r in rr.requirements:
                    required_level[r.skill] = max(required_level.get(r.skill, 0), r.min_level)
                fits.append((role_id, fit_of(rr, mine)))
            cells = [(k, *mine.get(k, (0, 0)), required_level.get(k, 0)) for k in columns]
            rows.append(MatrixRow(p.id, p.org_unit_id, cells, fits))
        return columns, rows, await scales.skill_tops(s, columns)


# ---- GetGapReport --------------------------------------------------------------------------


@dataclass
class SkillGapCount:
    skill: str
    role: str
    required: int
    mandatory: bool
    below: int = 0
    missing: int = 0
    gap_total: int = 0


@dataclass
class RoleGaps:
    role_id: str
    version: int
    holders: int = 0
    missing_mandatory: int = 0
    score_total: float = 0.0
    gaps: dict[str, SkillGapCount] | None = None


async def gap_report(db: Database, role_id: str, unit_id: str) -> tuple[list[RoleGaps], Tops]:
    if not role_id and not unit_id:
        raise invalid("role", "name a role, an org unit or both")
    now = utcnow()
    async with db.read() as s:
        unit = await _unit(s, unit_id, "org_unit") if unit_id else None
        await authorize_unit_read(s, current_identity(), unit)
        query = select(ProjectedAssignmentRow.person_id, ProjectedAssignmentRow.role_id).where(_active_at(now))
        if role_id:
            await role_requirements(s, role_id)  # NOT_FOUND for an unknown role
            query = query.where(ProjectedAssignmentRow.role_id == role_id)
        if unit is not None:
            query = query.where(col(ProjectedAssignmentRow.org_unit_id).in_(_units_below(unit.path)))
        holders: dict[str, set[str]] = defaultdict(set)
        for person, role in (await s.execute(query)).all():
            holders[role].add(person)
        report = []
        for rid in sorted(holders):
            try:
                reqs = await role_requirements(s, rid)
            except NotFound:
                continue
            people = sorted(holders[rid])
            levels = await levels_of(s, people, {r.skill for r in reqs.requirements}, now)
            summary = RoleGaps(
                rid,
                reqs.version,
                gaps={r.skill: SkillGapCount(r.skill, rid, r.min_level, r.mandatory) for r in reqs.requirements},
            )
            assert summary.gaps is not None
            for person in people:
                fit = fit_of(reqs, levels.get(person, {}))
                summary.holders += 1
                summary.score_total += fit.score
                summary.missing_mandatory += 0 if fit.fits else 1
                for f in fit.skills:
                    if f.gap > 0:
                        count = summary.gaps[f.skill]
                        count.below += 1
                        count.missing += 1 if f.effective <= 0 else 0
                        count.gap_total += f.gap
            report.append(summary)
        skills = {g for summary in report for g in (summary.gaps or {})}
        return report, await scales.skill_tops(s, skills)


def most_missing(report: list[RoleGaps], top: int) -> list[SkillGapCount]:
    """Adds the roles up per skill: holders below, highest requirement, mandatory anywhere."""
    merged: dict[str, SkillGapCount] = {}
    for summary in report:
        for g in (summary.gaps or {}).values():
            if g.below == 0:
                continue
            m = merged.setdefault(g.skill, SkillGapCount(g.skill, "", 0, False))
            m.required = max(m.required, g.required)
            m.mandatory = m.mandatory or g.mandatory
            m.below += g.below
            m.missing += g.missing
            m.gap_total += g.gap_total
    order = Counter({k: v.below for k, v in merged.items()})
    return [merged[k] for k, _ in sorted(order.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
