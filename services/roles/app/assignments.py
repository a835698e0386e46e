"""Assignment and delegation use cases."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.auth import Identity, current_identity
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import FailedPrecondition, FieldViolation, NotFound, PermissionDenied, invalid
from services.platform.lookups import get_or_404, recall_created
from services.platform.resources import Page, check_etag, remember_request, remember_request_now
from services.roles.domain.model import LEVEL_NAMES, ManagementLevel, Money, PersonStatus, RoleState, Scope
from services.roles.events.outgoing import assignment_event, delegation_event
from services.roles.store.tables import (
    AssignmentRow,
    DecisionCategoryRow,
    DelegationRow,
    OrgUnitRow,
    PersonRow,
    RoleRow,
)

_ASSIGNMENTS: sa.Table = AssignmentRow.__table__  # type: ignore[attr-defined]

# The statements of CreateAssignment (the service's busiest write), built once:
# building and keying a statement per call cost as much as running it.
# Locking the person serialises their assignments, so two concurrent
# creates cannot both pass the overlap check.
_PERSON = (
    sa.select(col(PersonRow.id), col(PersonRow.status), col(PersonRow.management_level))
    .where(col(PersonRow.id) == sa.bindparam("id"))
    .with_for_update()
)
_ROLE = sa.select(col(RoleRow.id), col(RoleRow.state), col(RoleRow.version), col(RoleRow.management_level)).where(
    col(RoleRow.id) == sa.bindparam("id")
)
_UNIT_PATH = sa.select(col(OrgUnitRow.path)).where(col(OrgUnitRow.id) == sa.bindparam("id"))
_END = sa.bindparam("end", type_=_ASSIGNMENTS.c.valid_from.type)
# An assignment of the same person, role and unit whose period overlaps
# [start, end) (end NULL: open), other than `ignore` ('' for none).
_OVERLAP = (
    sa.select(_ASSIGNMENTS.c.id)
    .where(
        _ASSIGNMENTS.c.person_id == sa.bindparam("person"),
        _ASSIGNMENTS.c.role_id == sa.bindparam("role"),
        _ASSIGNMENTS.c.org_unit_id == sa.bindparam("unit"),
        or_(_ASSIGNMENTS.c.valid_to.is_(None), _ASSIGNMENTS.c.valid_to > sa.bindparam("start")),
        or_(_END.is_(None), _ASSIGNMENTS.c.valid_from < _END),
        _ASSIGNMENTS.c.id != sa.bindparam("ignore"),
    )
    .limit(1)
)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class NewAssignment:
    person_id: str
    role_id: str
    org_unit_id: str
    scope: Scope
    valid_from: datetime | None
    valid_to: datetime | None
    reason: str


def active_at(at: datetime) -> Any:
    """SQL condition: an assignment in force at `at`."""
    return sa.and_(
        col(AssignmentRow.valid_from) <= at,
        or_(col(AssignmentRow.valid_to).is_(None), col(AssignmentRow.valid_to) > at),
    )


async def authorize_in_unit(s: AsyncSession, caller: Identity, unit_id: str, unit_path: str, action: str) -> None:
    """HR administrators act everywhere; a manager only in the units they head
    and everything below them."""
    if caller.is_admin:
        return
    if caller.person_id:
        headed = (await s.exec(select(OrgUnitRow.path).where(OrgUnitRow.manager_id == caller.person_id))).all()
        if any(unit_path.startswith(path) for path in headed):
            return
    raise PermissionDenied(
        f"{caller.actor} may not {action} in orgUnits/{unit_id}: it is outside the units they manage",
        "OUTSIDE_MANAGED_SCOPE",
    )


async def _one(conn: AsyncConnection, query: Any, key: str, name: str) -> sa.Row[Any]:
    """The single row of a query by key, or NOT_FOUND for `name`."""
    row = (await conn.execute(query, {"id": key})).first()
    if row is None:
        raise NotFound(f"{name} does not exist")
    return row


async def create_assignment(db: Database, new: NewAssignment, request_id: str, request: Message) -> AssignmentRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateAssignment", request, AssignmentRow):
            return earlier
        # Plain column reads, no ORM objects: this is the service's busiest write.
        conn = await s.connection()
        person = await _one(conn, _PERSON, new.person_id, f"people/{new.person_id}")
        role = await _one(conn, _ROLE, new.role_id, f"roles/{new.role_id}")
        unit = await _one(conn, _UNIT_PATH, new.org_unit_id, f"orgUnits/{new.org_unit_id}")
        await authorize_in_unit(s, caller, new.org_unit_id, unit.path, "assign roles")
        now = utcnow()
        valid_from = new.valid_from or now
        if new.valid_to is not None and new.valid_to <= valid_from:
            raise invalid("assignment.valid_to", "must be after valid_from")
        if role.state != RoleState.ACTIVE:
            raise FailedPrecondition(
                f"roles/{role.id} is {role.state.lower()}; only active roles can be assigned",
                "ROLE_NOT_ACTIVE",
                FieldViolation("assignment.role", f"role is {role.state}"),
            )
        if person.status != PersonStatus.ACTIVE:
            raise FailedPrecondition(
                f"people/{person.id} is {person.status.lower()}; only active people can take a role",
                "PERSON_NOT_ACTIVE",
                FieldViolation("assignment.person", f"person is {person.status}"),
            )
        if person.management_level < role.management_level:
            raise FailedPrecondition(
                f"roles/{role.id} needs management level {role.management_level} "
                f"({LEVEL_NAMES[ManagementLevel(role.management_level)]}); people/{person.id} is level "
                f"{person.management_level}",
                "MANAGEMENT_LEVEL_TOO_LOW",
                FieldViolation("assignment.person", "management level is below the role's"),
            )
        await _refuse_overlap(s, new.person_id, new.role_id, new.org_unit_id, valid_from, new.valid_to, None)
        row = AssignmentRow(
            id=new_id(),
            person_id=new.person_id,
            role_id=new.role_id,
            role_version=role.version,
            org_unit_id=new.org_unit_id,
            scope=new.scope.value,
            valid_from=valid_from,
            valid_to=new.valid_to,
            reason=new.reason,
            assigned_by=caller.actor,
            create_time=now,
            update_time=now,
        )
        await conn.execute(_ASSIGNMENTS.insert(), {c.name: getattr(row, c.name) for c in _ASSIGNMENTS.columns})
        await remember_request_now(s, request_id, "CreateAssignment", request, f"assignments/{row.id}")
        uow.emit(assignment_event("created", row, now))
        return row


async def _refuse_overlap(
    s: AsyncSession,
    person_id: str,
    role_id: str,
    unit_id: str,
    start: datetime,
    end: datetime | None,
    ignore_id: str | None,
) -> None:
    params = {"person": person_id, "role": role_id, "unit": unit_id, "start": start, "end": end}
    clash = (await (await s.connection()).execute(_OVERLAP, {**params, "ignore": ignore_id or ""})).first()
    if clash is not None:
        raise FailedPrecondition(
            f"people/{person_id} already holds roles/{role_id} in orgUnits/{unit_id} for an overlapping "
            f"period (assignments/{clash.id})",
            "DUPLICATE_ASSIGNMENT",
            FieldViolation("assignment", f"overlaps assignments/{clash.id}"),
        )


async def get_assignment(db: Database, assignment_id: str) -> AssignmentRow:
    async with db.read() as s:
        return await get_or_404(s, AssignmentRow, assignment_id, f"assignments/{assignment_id}")


async def list_assignments(
    db: Database,
    person_id: str,
    role_id: str,
    org_unit_id: str,
    descendants: bool,
    state: str,
    page: Page,
) -> Sequence[AssignmentRow]:
    now = utcnow()
    async with db.read() as s:
        query = select(AssignmentRow).order_by(col(AssignmentRow.id)).limit(page.size)
        if person_id:
            query = query.where(AssignmentRow.person_id == person_id)
        if role_id:
            query = query.where(AssignmentRow.role_id == role_id)
        if org_unit_id:
            unit = await s.get(OrgUnitRow, org_unit_id)
            if unit is None:
                raise invalid("org_unit", f"orgUnits/{org_unit_id} does not exist")
            if descendants:
                units = select(OrgUnitRow.id).where(col(OrgUnitRow.path).startswith(unit.path, autoescape=True))
                query = query.where(col(AssignmentRow.org_unit_id).in_(units))
            else:
                query = query.where(AssignmentRow.org_unit_id == org_unit_id)
        if state == "ACTIVE":
            query = query.where(active_at(now))
        elif state == "SCHEDULED":
            query = query.where(col(AssignmentRow.valid_from) > now)
        elif state == "ENDED":
            query = query.where(col(AssignmentRow.valid_to) <= now)
        if page.after is not None:
            query = query.where(col(AssignmentRow.id) > page.after)
        return (await s.exec(query)).all()


async def _load_for_change(uow: UnitOfWork, assignment_id: str, etag: str, action: str) -> AssignmentRow:
    s = uow.session
    row = await get_or_404(s, AssignmentRow, assignment_id, f"assignments/{assignment_id}", lock=True)
    check_etag(etag, f"assignments/{assignment_id}", row.revision)
    unit = await get_or_404(s, OrgUnitRow, row.org_unit_id, f"orgUnits/{row.org_unit_id}")
    await authorize_in_unit(s, current_identity(), unit.id, unit.path, action)
    if row.valid_to is not None and row.valid_to <= utcnow():
        raise FailedPrecondition(f"assignments/{assignment_id} has ended", "ASSIGNMENT_ENDED")
    return row


async def update_assignment(db: Database, assignment_id: str, changes: dict[str, Any], etag: str) -> AssignmentRow:
    async with db.write() as uow:
        row = await _load_for_change(uow, assignment_id, etag, "change assignments")
        if "valid_to" in changes:
            end = changes["valid_to"]
            if end is not None and end <= row.valid_from:
                raise invalid("assignment.valid_to", "must be after valid_from")
            await _refuse_overlap(uow.session, row.person_id, row.role_id, row.org_unit_id, row.valid_from, end, row.id)
        for key, value in changes.items():
            setattr(row, key, value.value if isinstance(value, Scope) else value)
        row.revision += 1
        now = row.update_time = utcnow()
        uow.session.add(row)
        uow.emit(assignment_event("updated", row, now))
        return row


async def end_assignment(
    db: Database, assignment_id: str, reason: str, end_time: datetime | None, etag: str
) -> AssignmentRow:
    async with db.write() as uow:
        row = await _load_for_change(uow, assignment_id, etag, "end assignments")
        now = utcnow()
        end = end_time or now
        if end < row.valid_from:
            raise invalid("end_time", "must not be before the assignment's valid_from")
        if row.valid_to is not None and end > row.valid_to:
            raise invalid("end_time", "must not be after the assignment's valid_to")
        row.valid_to = end
        row.ended_by = current_identity().actor
        row.end_reason = reason
        row.revision += 1
        row.update_time = now
        uow.session.add(row)
        uow.emit(assignment_event("ended", row, now))
        return row


async def acknowledge_assignment(db: Database, assignment_id: str, etag: str) -> AssignmentRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, AssignmentRow, assignment_id, f"assignments/{assignment_id}", lock=True)
        check_etag(etag, f"assignments/{assignment_id}", row.revision)
        if caller.person_id != row.person_id:
            raise PermissionDenied("only the holder may acknowledge an assignment", "NOT_THE_HOLDER")
        now = utcnow()
        if row.valid_to is not None and row.valid_to <= now:
            raise FailedPrecondition(f"assignments/{assignment_id} has ended", "ASSIGNMENT_ENDED")
        if row.acknowledged_version == row.role_version:
            return row  # already acknowledged: nothing changes, no event
        row.acknowledged_version = row.role_version
        row.acknowledge_time = now
        row.revision += 1
        row.update_time = now
        s.add(row)
        uow.emit(assignment_event("acknowledged", row, now))
        return row


async def offboard(uow: UnitOfWork, person_ids: Sequence[str], now: datetime, reason: str) -> None:
    """People who left: their roles end and their delegations (either way) are revoked."""
    await end_active_assignments(uow, person_ids, now, reason)
    for start in range(0, len(person_ids), 500):
        chunk = list(person_ids[start : start + 500])
        rows = (
            await uow.session.exec(
                select(DelegationRow).where(
                    or_(col(DelegationRow.delegator_id).in_(chunk), col(DelegationRow.delegate_id).in_(chunk)),
                    col(DelegationRow.revoke_time).is_(None),
                    col(DelegationRow.valid_to) > now,
                )
            )
        ).all()
        for row in rows:
            _revoke(row, now)
            uow.session.add(row)
            uow.emit(delegation_event("revoked", row))


async def end_active_assignments(uow: UnitOfWork, person_ids: Sequence[str], now: datetime, reason: str) -> int:
    """Ends every assignment of these people that is in force or scheduled."""
    ended = 0
    for start in range(0, len(person_ids), 500):
        chunk = list(person_ids[start : start + 500])
        rows = (
            await uow.session.exec(
                select(AssignmentRow).where(
                    col(AssignmentRow.person_id).in_(chunk),
                    or_(col(AssignmentRow.valid_to).is_(None), col(AssignmentRow.valid_to) > now),
                )
            )
        ).all()
        for row in rows:
            row.valid_to = max(now, row.valid_from)
            row.ended_by = current_identity().actor
            row.end_reason = reason
            row.revision += 1
            row.update_time = now
            uow.session.add(row)
            uow.emit(assignment_event("ended", row, now))
            ended += 1
    return ended


# ---- delegations --------------------------------------------------------------


@dataclass
class NewDelegation:
    delegator_id: str
    delegate_id: str
    categories: list[str]
    max_amount: Money | None
    valid_from: datetime | None
    valid_to: datetime
    reason: str


async def create_delegation(db: Database, new: NewDelegation, request_id: str, request: Message) -> DelegationRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateDelegation", request, DelegationRow):
            return earlier
        if not caller.is_admin and caller.person_id != new.delegator_id:
            raise PermissionDenied("only the delegator (or HR) may delegate their rights", "NOT_THE_DELEGATOR")
        if new.delegator_id == new.delegate_id:
            raise FailedPrecondition(
                "a person cannot delegate to themselves",
                "SELF_DELEGATION",
                FieldViolation("delegation.delegate", "equals the delegator"),
            )
        for field, pid in (("delegation.delegator", new.delegator_id), ("delegation.delegate", new.delegate_id)):
            person = await s.get(PersonRow, pid)
            if person is None:
                raise NotFound(f"people/{pid} does not exist")
            if person.status == PersonStatus.TERMINATED:
                raise FailedPrecondition(
                    f"people/{pid} has left", "PERSON_NOT_ACTIVE", FieldViolation(field, "terminated")
                )
        for i, category in enumerate(new.categories):
            if await s.get(DecisionCategoryRow, category) is None:
                raise invalid(f"delegation.categories[{i}]", f"decisionCategories/{category} does not exist")
        now = utcnow()
        valid_from = new.valid_from or now
        if new.valid_to <= valid_from:
            raise invalid("delegation.valid_to", "must be after valid_from")
        row = DelegationRow(
            id=new_id(),
            delegator_id=new.delegator_id,
            delegate_id=new.delegate_id,
            categories=sorted(set(new.categories)),
            max_amount=str(new.max_amount.amount) if new.max_amount else None,
            currency=new.max_amount.currency if new.max_amount else "",
            valid_from=valid_from,
            valid_to=new.valid_to,
            reason=new.reason,
            created_by=caller.actor,
            create_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreateDelegation", request, f"delegations/{row.id}")
        uow.emit(delegation_event("created", row))
        return row


async def get_delegation(db: Database, delegation_id: str) -> DelegationRow:
    async with db.read() as s:
        return await get_or_404(s, DelegationRow, delegation_id, f"delegations/{delegation_id}")


async def list_delegations(db: Database, delegator_id: str, delegate_id: str, page: Page) -> Sequence[DelegationRow]:
    async with db.read() as s:
        query = select(DelegationRow).order_by(col(DelegationRow.id)).limit(page.size)
        if delegator_id:
            query = query.where(DelegationRow.delegator_id == delegator_id)
        if delegate_id:
            query = query.where(DelegationRow.delegate_id == delegate_id)
        if page.after is not None:
            query = query.where(col(DelegationRow.id) > page.after)
        return (await s.exec(query)).all()


async def revoke_delegation(db: Database, delegation_id: str, etag: str) -> DelegationRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, DelegationRow, delegation_id, f"delegations/{delegation_id}", lock=True)
        check_etag(etag, f"delegations/{delegation_id}", row.revision)
        if not caller.is_admin and caller.person_id != row.delegator_id:
            raise PermissionDenied("only the delegator (or HR) may revoke a delegation", "NOT_THE_DELEGATOR")
        if row.revoke_time is not None:
            raise FailedPrecondition(f"delegations/{delegation_id} is already revoked", "ALREADY_REVOKED")
        _revoke(row, utcnow())
        s.add(row)
        uow.emit(delegation_event("revoked", row))
        return row


def _revoke(row: DelegationRow, now: datetime) -> None:
    row.revoke_time = now
    row.valid_to = min(row.valid_to, max(now, row.valid_from))
    row.revision += 1
