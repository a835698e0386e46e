"""The projection of the roles service's events that eligibility needs:
people (org unit, manager, status), the org unit tree, and who held which
role when. Applied once per event id by the platform consumer; per subject,
an event older (by `ce-sequence`) than what is stored is dropped."""

from __future__ import annotations

from datetime import UTC

from engage.roles.v1 import directory_pb2, events_pb2

from services.incentives.app.attribution import record_move
from services.incentives.app.changes import note_everyone, note_people
from services.incentives.app.ingestion import replay_for_person
from services.incentives.store.tables import ProjectedAssignmentRow, ProjectedOrgUnitRow, ProjectedPersonRow
from services.platform.cloudevents import CloudEvent
from services.platform.db import UnitOfWork

SUBJECTS = ["engage.roles.v1.person.>", "engage.roles.v1.org_unit.>", "engage.roles.v1.assignment.>"]


def _id(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name else ""


async def apply_roles_event(uow: UnitOfWork, event: CloudEvent) -> None:
    entity, _, verb = event.type.removeprefix("engage.roles.v1.").partition(".")
    if entity == "person":
        await _person(uow, event)
    elif entity == "org_unit":
        await _org_unit(uow, event, deleted=verb == "deleted")
    elif entity == "assignment":
        await _assignment(uow, event)


async def _person(uow: UnitOfWork, event: CloudEvent) -> None:
    p = events_pb2.PersonEvent.FromString(event.data).person
    pid = _id(p.name)
    row = await uow.session.get(ProjectedPersonRow, pid)
    if row is not None and event.sequence <= row.sequence:
        return  # older than what we have
    first_seen = row is None
    row = row or ProjectedPersonRow(id=pid, status="", sequence=0)
    unit = _id(p.org_unit)
    if first_seen or unit != row.org_unit_id:
        # The directory changed at the event's time: earlier behaviours stay with the old unit.
        await record_move(uow.session, pid, unit, None if first_seen else event.time)
    row.org_unit_id = unit
    row.manager_id = _id(p.manager) or None
    row.status = directory_pb2.PersonStatus.Name(p.status).removeprefix("PERSON_STATUS_")
    row.sequence = event.sequence
    uow.session.add(row)
    await note_people(uow.session, [pid])  # taking part, or not
    if first_seen:
        await uow.session.flush()
        await replay_for_person(uow.session, pid)


async def _org_unit(uow: UnitOfWork, event: CloudEvent, deleted: bool) -> None:
    u = events_pb2.OrgUnitEvent.FromString(event.data).org_unit
    uid = _id(u.name)
    row = await uow.session.get(ProjectedOrgUnitRow, uid)
    if row is not None and event.sequence <= row.sequence:
        return
    row = row or ProjectedOrgUnitRow(id=uid, sequence=0)
    row.parent_id = _id(u.parent) or None
    row.manager_id = _id(u.manager) or None
    row.kind = directory_pb2.OrgUnitKind.Name(u.kind).removeprefix("ORG_UNIT_KIND_")
    row.deleted = deleted
    row.sequence = event.sequence
    uow.session.add(row)
    await note_everyone(uow.session)  # schemes limited to some units count the units below them


async def _assignment(uow: UnitOfWork, event: CloudEvent) -> None:
    a = events_pb2.AssignmentEvent.FromString(event.data).assignment
    aid = _id(a.name)
    row = await uow.session.get(ProjectedAssignmentRow, aid)
    if row is not None and event.sequence <= row.sequence:
        return
    valid_from = a.valid_from.ToDatetime(tzinfo=UTC)
    row = row or ProjectedAssignmentRow(
        id=aid, person_id="", role_id="", org_unit_id="", valid_from=valid_from, sequence=0
    )
    row.person_id = _id(a.person)
    row.role_id = _id(a.role)
    row.org_unit_id = _id(a.org_unit)
    row.valid_from = valid_from
    row.valid_to = a.valid_to.ToDatetime(tzinfo=UTC) if a.HasField("valid_to") else None
    row.sequence = event.sequence
    uow.session.add(row)
    await note_people(uow.session, [row.person_id])  # schemes limited to some roles
