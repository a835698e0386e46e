"""Role fits kept on write (table `role_fits`): every person's fit to the
current version of every role with requirements, so FindCandidates reads a
page in rank order from an index instead of scoring the whole company.

The score is computed in SQL by the formula of services/skills/domain/fit.py
(answers still explain each candidate with the domain rule itself). Fits are
refreshed in the transaction that changes their inputs: a person's levels
(services/skills/app/levels.py), a role's requirements and a person's arrival
(services/skills/app/projection.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.skills.store.tables import (
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    RoleFitRow,
    SkillLevelRow,
)
from services.skills.store.upsert import upsert_statement

_CHUNK = 500
_EVERYONE_CHUNK = 2000  # people per statement when every person's fits are written
_FITS = RoleFitRow.__table__  # type: ignore[attr-defined]
_R = ProjectedRoleRow.__table__  # type: ignore[attr-defined]
_Q = ProjectedRequirementRow.__table__  # type: ignore[attr-defined]
_P = ProjectedPersonRow.__table__  # type: ignore[attr-defined]
_L = SkillLevelRow.__table__  # type: ignore[attr-defined]


def _fits_select(roles: Collection[str] | None, people: Collection[str] | None) -> sa.Select[tuple[object, ...]]:
    """(role, person, version, misfit, score, surplus) of the current version
    of every role that has requirements with a positive weight."""
    level = sa.func.coalesce(_L.c.level, 0)
    weight = sa.case((_Q.c.weight > 0, _Q.c.weight), else_=0.0)
    capped = sa.case((level >= _Q.c.min_level, _Q.c.min_level), else_=level)
    skill_score = sa.case((_Q.c.min_level <= 0, sa.literal(1.0)), else_=sa.cast(capped, sa.Float) / _Q.c.min_level)
    misfit = sa.func.max(sa.case((sa.and_(_Q.c.mandatory.is_(True), level < _Q.c.min_level), 1), else_=0))
    surplus = sa.func.sum(sa.case((level > _Q.c.min_level, level - _Q.c.min_level), else_=0))
    query = (
        sa.select(
            _R.c.id,
            _P.c.id,
            _R.c.version,
            misfit,
            sa.func.sum(weight * skill_score) / sa.func.sum(weight),
            surplus,
        )
        .select_from(_R)
        .join(_Q, sa.and_(_Q.c.role_id == _R.c.id, _Q.c.version == _R.c.version))
        .join(_P, sa.true())
        .outerjoin(_L, sa.and_(_L.c.person_id == _P.c.id, _L.c.skill_id == _Q.c.skill_id))
        .where(_R.c.deleted.is_(False))
        .group_by(_R.c.id, _P.c.id, _R.c.version)
        .having(sa.func.sum(weight) > 0)
    )
    if roles is not None:
        query = query.where(_R.c.id.in_(roles))
    if people is not None:
        query = query.where(_P.c.id.in_(people))
    return query


async def _upsert(s: AsyncSession, roles: Collection[str] | None, people: Collection[str] | None) -> None:
    """Writes the fits of `roles` x `people` (None: all) as upserts, so
    writers refreshing the same fits at once (a level change beside a role
    change) wait for each other instead of colliding."""
    await s.flush()  # pending projection rows must be visible to the INSERT ... SELECT
    await s.execute(await upsert_statement(s, _FITS, ["role_id", "person_id"], _fits_select(roles, people)))


async def _everyone(s: AsyncSession) -> AsyncIterator[list[str]]:
    """Every projected person's id, in chunks: one statement for a whole
    company could outlast the database's statement timeout."""
    after = ""
    while True:
        query = sa.select(_P.c.id).where(_P.c.id > after).order_by(_P.c.id).limit(_EVERYONE_CHUNK)
        people = [p for (p,) in await s.execute(query)]
        if not people:
            return
        yield people
        after = people[-1]


async def refresh_roles(s: AsyncSession, roles: Collection[str]) -> None:
    """Everyone's fit to these roles (after their requirements changed)."""
    if not roles:
        return
    # Fits of a deleted role, or of one left without weighted requirements, go.
    await s.execute(sa.delete(_FITS).where(_FITS.c.role_id.in_(sorted(roles))))
    async for people in _everyone(s):
        await _upsert(s, sorted(roles), people)


async def refresh_people(s: AsyncSession, changed: Iterable[tuple[str, str]]) -> None:
    """The fits of people whose levels changed, to the roles requiring those skills."""
    by_skill: dict[str, set[str]] = {}
    for person, skill in changed:
        by_skill.setdefault(skill, set()).add(person)
    if not by_skill:
        return
    skills = sorted(by_skill)
    roles: set[str] = set()
    required: set[str] = set()
    for start in range(0, len(skills), _CHUNK):
        query = (
            sa.select(_Q.c.role_id, _Q.c.skill_id)
            .join(_R, sa.and_(_R.c.id == _Q.c.role_id, _R.c.version == _Q.c.version))
            .where(_Q.c.skill_id.in_(skills[start : start + _CHUNK]), _R.c.deleted.is_(False))
        )
        for role, skill in await s.execute(query):
            roles.add(role)
            required.add(skill)
    # Recomputing a fit whose inputs did not change is harmless, so one
    # statement per chunk of people covers every affected role.
    people = sorted(set().union(*(by_skill[k] for k in required))) if required else []
    for start in range(0, len(people), _CHUNK):
        await _upsert(s, sorted(roles), people[start : start + _CHUNK])


async def add_person(s: AsyncSession, person_id: str) -> None:
    """A person new to the projection: their fit to every role."""
    await _upsert(s, None, [person_id])


async def rebuild(s: AsyncSession) -> None:
    """Every fit from scratch (after a migration or a projection reset)."""
    async for people in _everyone(s):
        await _upsert(s, None, people)


async def is_empty(s: AsyncSession) -> bool:
    return (await s.execute(sa.select(_FITS.c.role_id).limit(1))).first() is None
