"""Who may see and record whose skills.

HR administrators and HR systems act everywhere; programme leads and calling
systems (a token without a person) read everywhere; a person reads their own
skills and records their own claims; a manager acts on the people in the org
units they head and below, and on their direct reports. Org units, their
heads and paths come from the projection of the roles service's events.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.auth import Identity
from services.platform.errors import PermissionDenied
from services.skills.store.tables import ProjectedOrgUnitRow, ProjectedPersonRow

READ_EVERYWHERE = frozenset({"hr_admin", "hr_system", "programme_lead"})


def reads_everywhere(caller: Identity) -> bool:
    return bool(caller.roles & READ_EVERYWHERE) or caller.person_id is None


async def headed_paths(s: AsyncSession, person_id: str) -> list[str]:
    """Paths of the org units a person heads (each covers its subtree)."""
    query = select(ProjectedOrgUnitRow.path).where(
        ProjectedOrgUnitRow.manager_id == person_id, col(ProjectedOrgUnitRow.deleted).is_(False)
    )
    return list((await s.exec(query)).all())


async def unit_path(s: AsyncSession, unit_id: str) -> str | None:
    unit = await s.get(ProjectedOrgUnitRow, unit_id)
    return None if unit is None or unit.deleted else unit.path


async def manages(s: AsyncSession, caller: Identity, person: ProjectedPersonRow) -> bool:
    """Whether the caller (a person) heads the person's org unit or one above it,
    or is their line manager. Nobody manages themselves."""
    if not caller.person_id or caller.person_id == person.id:
        return False
    if person.manager_id == caller.person_id:
        return True
    path = await unit_path(s, person.org_unit_id)
    return path is not None and any(path.startswith(p) for p in await headed_paths(s, caller.person_id))


async def authorize_person_read(s: AsyncSession, caller: Identity, person: ProjectedPersonRow) -> None:
    if reads_everywhere(caller) or caller.person_id == person.id or await manages(s, caller, person):
        return
    raise PermissionDenied(
        f"{caller.actor} may not see the skills of people/{person.id}: only the person, their managers and HR may",
        "OUTSIDE_MANAGED_SCOPE",
    )


async def authorize_unit_read(s: AsyncSession, caller: Identity, unit: ProjectedOrgUnitRow | None) -> None:
    """`unit` None means the whole company."""
    if reads_everywhere(caller):
        return
    if (
        unit is not None
        and caller.person_id
        and any(unit.path.startswith(p) for p in await headed_paths(s, caller.person_id))
    ):
        return
    where = f"orgUnits/{unit.id}" if unit is not None else "the whole company"
    raise PermissionDenied(
        f"{caller.actor} may not see the skills of {where}: it is outside the units they manage",
        "OUTSIDE_MANAGED_SCOPE",
    )
