"""Directory use cases: org units and people, one at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import Database, utcnow
from services.platform.errors import AlreadyExists, FailedPrecondition, FieldViolation, invalid
from services.platform.lookups import get_or_404, get_reference, recall_created
from services.platform.resources import Page, check_etag, remember_request
from services.roles.app.assignments import offboard
from services.roles.domain.model import OrgUnitKind, PersonStatus
from services.roles.events.outgoing import org_unit_event, person_event
from services.roles.store.tables import AssignmentRow, OrgUnitRow, PersonRow


@dataclass
class OrgUnitFields:
    display_name: str
    kind: OrgUnitKind
    parent_id: str | None
    manager_id: str | None
    hr_version: int = 0


@dataclass
class PersonFields:
    display_name: str
    email: str
    org_unit_id: str
    manager_id: str | None
    management_level: int
    status: PersonStatus
    hr_version: int = 0


# ---- org units ----------------------------------------------------------------


async def create_org_unit(
    db: Database, unit_id: str, fields: OrgUnitFields, request_id: str, request: Message
) -> OrgUnitRow:
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateOrgUnit", request, OrgUnitRow):
            return earlier
        if await s.get(OrgUnitRow, unit_id) is not None:
            raise AlreadyExists(f"orgUnits/{unit_id} already exists")
        parent_path = "/"
        if fields.parent_id:
            parent = await get_reference(
                s, OrgUnitRow, fields.parent_id, f"orgUnits/{fields.parent_id}", "org_unit.parent"
            )
            parent_path = parent.path
        if fields.manager_id:
            await get_reference(s, PersonRow, fields.manager_id, f"people/{fields.manager_id}", "org_unit.manager")
        now = utcnow()
        row = OrgUnitRow(
            id=unit_id,
            display_name=fields.display_name,
            kind=fields.kind.value,
            parent_id=fields.parent_id,
            manager_id=fields.manager_id,
            path=f"{parent_path}{unit_id}/",
            hr_version=fields.hr_version,
            create_time=now,
            update_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreateOrgUnit", request, f"orgUnits/{unit_id}")
        uow.emit(org_unit_event("created", row))
        return row


async def get_org_unit(db: Database, unit_id: str) -> OrgUnitRow:
    async with db.read() as s:
        return await get_or_404(s, OrgUnitRow, unit_id, f"orgUnits/{unit_id}")


async def list_org_units(db: Database, parent_id: str, descendants: bool, page: Page) -> Sequence[OrgUnitRow]:
    async with db.read() as s:
        query = select(OrgUnitRow).order_by(col(OrgUnitRow.id)).limit(page.size)
        if parent_id:
            parent = await get_reference(s, OrgUnitRow, parent_id, f"orgUnits/{parent_id}", "parent")
            if descendants:
                query = query.where(col(OrgUnitRow.path).startswith(parent.path, autoescape=True))
            else:
                query = query.where(OrgUnitRow.parent_id == parent_id)
        if page.after is not None:
            query = query.where(col(OrgUnitRow.id) > page.after)
        return (await s.exec(query)).all()


async def update_org_unit(db: Database, unit_id: str, changes: dict[str, Any], etag: str) -> OrgUnitRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, OrgUnitRow, unit_id, f"orgUnits/{unit_id}", lock=True)
        check_etag(etag, f"orgUnits/{unit_id}", row.revision)
        if changes.get("manager_id"):
            await get_reference(
                s, PersonRow, changes["manager_id"], f"people/{changes['manager_id']}", "org_unit.manager"
            )
        if "parent_id" in changes and changes["parent_id"] != row.parent_id:
            await _move(s, row, changes["parent_id"])
        for key, value in changes.items():
            setattr(row, key, value.value if isinstance(value, OrgUnitKind) else value)
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(org_unit_event("updated", row))
        return row


async def _move(s: AsyncSession, row: OrgUnitRow, new_parent_id: str | None) -> None:
    """Re-parents a unit and rewrites the paths of its whole subtree."""
    if not new_parent_id:
        raise invalid("org_unit.parent", "a unit cannot become a second root; name a parent")
    parent = await get_reference(s, OrgUnitRow, new_parent_id, f"orgUnits/{new_parent_id}", "org_unit.parent")
    if parent.path.startswith(row.path):
        raise FailedPrecondition(
            f"orgUnits/{new_parent_id} is inside orgUnits/{row.id}: the move would make a cycle",
            "ORG_UNIT_CYCLE",
            FieldViolation("org_unit.parent", "would make a cycle"),
        )
    old_path, new_path = row.path, f"{parent.path}{row.id}/"
    await s.execute(
        sa.update(OrgUnitRow)
        .where(col(OrgUnitRow.path).startswith(old_path, autoescape=True))
        .values(path=sa.literal(new_path) + sa.func.substr(OrgUnitRow.path, len(old_path) + 1))
        .execution_options(synchronize_session=False)
    )
    row.path = new_path


async def delete_org_unit(db: Database, unit_id: str, etag: str) -> None:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, OrgUnitRow, unit_id, f"orgUnits/{unit_id}", lock=True)
        check_etag(etag, f"orgUnits/{unit_id}", row.revision)
        for table, column, what in (
            (OrgUnitRow, OrgUnitRow.parent_id, "child units"),
            (PersonRow, PersonRow.org_unit_id, "people"),
            (AssignmentRow, AssignmentRow.org_unit_id, "role assignments"),
        ):
            used = (await s.exec(select(sa.func.count()).select_from(table).where(column == unit_id))).one()
            if used:
                raise FailedPrecondition(f"orgUnits/{unit_id} still has {what}", "ORG_UNIT_IN_USE")
        row.revision += 1  # the delete is the newest version consumers see
        uow.emit(org_unit_event("deleted", row))
        await s.delete(row)


# ---- people ---------------------------------------------------------------------


async def _check_person_refs(s: AsyncSession, person_id: str, org_unit_id: str | None, manager_id: str | None) -> None:
    if org_unit_id is not None:
        await get_reference(s, OrgUnitRow, org_unit_id, f"orgUnits/{org_unit_id}", "person.org_unit")
    if manager_id:
        if manager_id == person_id:
            raise invalid("person.manager", "a person cannot be their own manager")
        await get_reference(s, PersonRow, manager_id, f"people/{manager_id}", "person.manager")
        # Walk up from the new manager: meeting the person again is a cycle.
        seen: set[str] = {manager_id}
        current: str | None = manager_id
        while current:
            current = (await s.exec(select(PersonRow.manager_id).where(PersonRow.id == current))).first()
            if current == person_id:
                raise FailedPrecondition(
                    f"people/{manager_id} reports to people/{person_id}: the change would make a cycle",
                    "MANAGER_CYCLE",
                    FieldViolation("person.manager", "would make a reporting cycle"),
                )
            if current in seen:
                break
            if current:
                seen.add(current)


async def create_person(
    db: Database, person_id: str, fields: PersonFields, request_id: str, request: Message
) -> PersonRow:
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreatePerson", request, PersonRow):
            return earlier
        if await s.get(PersonRow, person_id) is not None:
            raise AlreadyExists(f"people/{person_id} already exists")
        await _check_person_refs(s, person_id, fields.org_unit_id, fields.manager_id)
        now = utcnow()
        row = PersonRow(
            id=person_id,
            display_name=fields.display_name,
            email=fields.email,
            org_unit_id=fields.org_unit_id,
            manager_id=fields.manager_id,
            management_level=fields.management_level,
            status=fields.status.value,
            hr_version=fields.hr_version,
            create_time=now,
            update_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreatePerson", request, f"people/{person_id}")
        uow.emit(person_event("created", row))
        return row


async def get_person(db: Database, person_id: str) -> PersonRow:
    async with db.read() as s:
        return await get_or_404(s, PersonRow, person_id, f"people/{person_id}")


async def list_people(
    db: Database,
    org_unit_id: str,
    descendants: bool,
    manager_id: str,
    status: PersonStatus | None,
    page: Page,
) -> Sequence[PersonRow]:
    async with db.read() as s:
        query = select(PersonRow).order_by(col(PersonRow.id)).limit(page.size)
        if org_unit_id:
            unit = await get_reference(s, OrgUnitRow, org_unit_id, f"orgUnits/{org_unit_id}", "org_unit")
            if descendants:
                units = select(OrgUnitRow.id).where(col(OrgUnitRow.path).startswith(unit.path, autoescape=True))
                query = query.where(col(PersonRow.org_unit_id).in_(units))
            else:
                query = query.where(PersonRow.org_unit_id == org_unit_id)
        if manager_id:
            query = query.where(PersonRow.manager_id == manager_id)
        if status is not None:
            query = query.where(PersonRow.status == status.value)
        if page.after is not None:
            query = query.where(col(PersonRow.id) > page.after)
        return (await s.exec(query)).all()


async def update_person(db: Database, person_id: str, changes: dict[str, Any], etag: str) -> PersonRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, PersonRow, person_id, f"people/{person_id}", lock=True)
        check_etag(etag, f"people/{person_id}", row.revision)
        await _check_person_refs(s, person_id, changes.get("org_unit_id"), changes.get("manager_id"))
        was = PersonStatus(row.status)
        for key, value in changes.items():
            setattr(row, key, value.value if isinstance(value, PersonStatus) else value)
        row.revision += 1
        now = row.update_time = utcnow()
        s.add(row)
        terminated = was != PersonStatus.TERMINATED and row.status == PersonStatus.TERMINATED.value
        uow.emit(person_event("terminated" if terminated else "updated", row))
        if terminated:
            await offboard(uow, [person_id], now, "person left the company")
        return row
