"""The skills service's own copy of the roles service's facts.

Built from `engage.roles.v1.*` events by a durable JetStream consumer
(services.platform.consumer.EventConsumer): each event is applied once (the
platform's inbox de-duplicates by event id) and, per subject, only if its
`ce-sequence` is newer than the one applied last, so a late or replayed older
event never overwrites newer facts. Deletions leave a tombstone that keeps
the sequence. The projection can be dropped and rebuilt from the stream.
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from engage.roles.v1 import directory_pb2, events_pb2, roles_pb2
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.cloudevents import CloudEvent
from services.platform.db import UnitOfWork, utcnow
from services.platform.log import get_logger
from services.skills.app import role_fits, snapshots
from services.skills.store.tables import (
    ProjectedAssignmentRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    RoleFitRow,
)

log = get_logger(__name__)

CONSUMER_NAME = "skills-roles-projection"
SUBJECTS = [
    "engage.roles.v1.role.>",
    "engage.roles.v1.person.>",
    "engage.roles.v1.org_unit.>",
    "engage.roles.v1.assignment.>",
]
PROJECTION_TABLES = [
    ProjectedAssignmentRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    ProjectedPersonRow,
    ProjectedOrgUnitRow,
]


def _id(name: str, collection: str) -> str:
    return name.removeprefix(f"{collection}/")


async def apply_roles_event(uow: UnitOfWork, event: CloudEvent) -> None:
    """The consumer's handler: one event, in the consumer's transaction."""
    parts = event.type.split(".")
    if len(parts) != 5 or parts[:3] != ["engage", "roles", "v1"]:
        return
    entity, verb = parts[3], parts[4]
    s = uow.session
    if entity == "person":
        await _person(s, events_pb2.PersonEvent.FromString(event.data), event.sequence)
    elif entity == "org_unit":
        await _org_unit(s, events_pb2.OrgUnitEvent.FromString(event.data), event.sequence, verb == "deleted")
    elif entity == "role":
        await _role(s, events_pb2.RoleEvent.FromString(event.data), event.sequence, verb == "deleted")
    elif entity == "assignment":
        await _assignment(s, events_pb2.AssignmentEvent.FromString(event.data), event.sequence)


async def reset(uow: UnitOfWork) -> None:
    """Empties the projection (for a rebuild from the stream) and the role
    fits derived from it (the replayed events derive them again)."""
    for table in [RoleFitRow, *PROJECTION_TABLES]:
        await uow.session.execute(sa.delete(table))


async def _person(s: AsyncSession, body: events_pb2.PersonEvent, sequence: int) -> None:
    p = body.person
    person_id = _id(p.name, "people")
    row = await s.get(ProjectedPersonRow, person_id)
    if row is not None and sequence <= row.sequence:
        return
    arrived = row is None
    if row is None:
        row = ProjectedPersonRow(id=person_id, org_unit_id="", status="")
    unit_id = _id(p.org_unit, "orgUnits")
    moved = not arrived and unit_id != row.org_unit_id
    row.org_unit_id = unit_id
    row.manager_id = _id(p.manager, "people") or None
    row.status = directory_pb2.PersonStatus.Name(p.status).removeprefix("PERSON_STATUS_")
    row.sequence = sequence
    s.add(row)
    if arrived:
        await role_fits.add_person(s, person_id)
    elif moved:
        await snapshots.person_moved(s, person_id, unit_id, utcnow())


async def _org_unit(s: AsyncSession, body: events_pb2.OrgUnitEvent, sequence: int, deleted: bool) -> None:
    u = body.org_unit
    unit_id = _id(u.name, "orgUnits")
    row = await s.get(ProjectedOrgUnitRow, unit_id)
    if row is not None and sequence <= row.sequence:
        return
    placed = row is not None
    if row is None:
        row = ProjectedOrgUnitRow(id=unit_id, path="")
    parent_id = _id(u.parent, "orgUnits") or None
    moved = not placed or parent_id != row.parent_id
    row.parent_id = parent_id
    row.manager_id = _id(u.manager, "people") or None
    row.deleted = deleted
    row.sequence = sequence
    if moved:
        await _place(s, row)
    s.add(row)


async def _place(s: AsyncSession, row: ProjectedOrgUnitRow) -> None:
    """Sets the unit's path from its parent's and rewrites its subtree's.

    A unit whose parent has not arrived yet gets a provisional path under the
    parent's id; the parent's arrival fixes it."""
    parent = await s.get(ProjectedOrgUnitRow, row.parent_id) if row.parent_id else None
    if row.parent_id and parent is None:
        row.path = f"/{row.parent_id}/{row.id}/"
    else:
        row.path = f"{parent.path if parent else '/'}{row.id}/"
    s.add(row)
    await s.flush()
    seen = {row.id}
    frontier = [row]
    while frontier:
        unit = frontier.pop()
        children = (await s.exec(select(ProjectedOrgUnitRow).where(ProjectedOrgUnitRow.parent_id == unit.id))).all()
        for child in children:
            if child.id in seen:
                continue
            seen.add(child.id)
            child.path = f"{unit.path}{child.id}/"
            s.add(child)
            frontier.append(child)


async def _role(s: AsyncSession, body: events_pb2.RoleEvent, sequence: int, deleted: bool) -> None:
    r = body.role
    role_id = _id(r.name, "roles")
    row = await s.get(ProjectedRoleRow, role_id)
    if row is not None and sequence <= row.sequence:
        return
    if row is None:
        row = ProjectedRoleRow(id=role_id, state="")
    row.version = r.version or 1
    row.state = roles_pb2.Role.State.Name(r.state).removeprefix("STATE_")
    row.deleted = deleted
    row.sequence = sequence
    s.add(row)
    # The requirements of this version, as the newest event states them.
    await s.execute(
        sa.delete(ProjectedRequirementRow).where(
            col(ProjectedRequirementRow.role_id) == role_id, col(ProjectedRequirementRow.version) == row.version
        )
    )
    if not deleted:
        _requirements(s, role_id, row.version, r)
    await role_fits.refresh_roles(s, [role_id])


def _requirements(s: AsyncSession, role_id: str, version: int, r: roles_pb2.Role) -> None:
    seen: set[str] = set()
    for i, req in enumerate(r.skill_requirements):
        if req.skill in seen or not req.skill:
            continue
        seen.add(req.skill)
        s.add(
            ProjectedRequirementRow(
                role_id=role_id,
                version=version,
                skill_id=_id(req.skill, "skills"),
                position=i,
                min_level=req.min_level,
                weight=req.weight if req.weight else 1.0,
                mandatory=req.mandatory,
            )
        )


async def _assignment(s: AsyncSession, body: events_pb2.AssignmentEvent, sequence: int) -> None:
    a = body.assignment
    assignment_id = _id(a.name, "assignments")
    row = await s.get(ProjectedAssignmentRow, assignment_id)
    if row is not None and sequence <= row.sequence:
        return
    valid_from = a.valid_from.ToDatetime(tzinfo=UTC) if a.HasField("valid_from") else None
    valid_to = a.valid_to.ToDatetime(tzinfo=UTC) if a.HasField("valid_to") else None
    if row is None:
        if valid_from is None:
            log.warning("projection.assignment_without_start", assignment=a.name)
            return
        row = ProjectedAssignmentRow(
            id=assignment_id, person_id="", role_id="", role_version=0, org_unit_id="", valid_from=valid_from
        )
    row.person_id = _id(a.person, "people")
    row.role_id = _id(a.role, "roles")
    row.role_version = a.role_version
    row.org_unit_id = _id(a.org_unit, "orgUnits")
    if valid_from is not None:
        row.valid_from = valid_from
    row.valid_to = valid_to
    row.sequence = sequence
    s.add(row)
