"""Recording behaviour events: idempotent by event id, parked when a person or
behaviour type is unknown, credited to people (and provider lines of business)
when accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from engage.incentives.v1 import behaviours_pb2
from google.protobuf.message import DecodeError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives.domain.credits import normalised_shares
from services.incentives.domain.model import EventState, ParkReason
from services.incentives.messages import Observed, observed_in
from services.incentives.store.tables import BehaviourEventRow, BehaviourTypeRow, CreditRow, ProjectedPersonRow
from services.platform.cloudevents import CloudEvent
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.log import get_logger

log = get_logger(__name__)

ACCEPTED, PARKED, DUPLICATE, REJECTED = "ACCEPTED", "PARKED", "DUPLICATE", "REJECTED"


@dataclass(frozen=True)
class Outcome:
    id: str
    kind: str
    park_reason: str = ""
    field: str = ""
    reason: str = ""


async def credit_clock(s: AsyncSession) -> datetime:
    """The acceptance time of the credits this transaction writes.

    A late event is one accepted after its period closed, so acceptance times
    and a close must be totally ordered. SQLite has one writer at a time; on
    PostgreSQL this ROW EXCLUSIVE lock conflicts with the SHARE lock a close
    takes (`close_clock`): a credit writer either commits before the close
    reads the credits, or takes its time after the close committed.
    """
    conn = await s.connection()
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE behaviour_credits IN ROW EXCLUSIVE MODE")
    return utcnow()


async def close_clock(s: AsyncSession) -> datetime:
    """The close time of a period: after every credit accepted before it was committed."""
    conn = await s.connection()
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE behaviour_credits IN SHARE MODE")
    return utcnow()


def _row_of(o: Observed, now: datetime) -> BehaviourEventRow:
    return BehaviourEventRow(
        id=o.id,
        behaviour_type_id=o.behaviour_type,
        credits=[{"person": p, "share": share} for p, share in o.credits],
        occurred_at=o.occurred_at,
        value=o.value,
        customer_lob=o.customer_lob,
        provider_lob=o.provider_lob,
        related_org_unit=o.related_org_unit,
        source_system=o.source_system,
        object_ref=o.object_ref,
        state=EventState.PARKED.value,
        record_time=now,
    )


async def settle(s: AsyncSession, row: BehaviourEventRow, now: datetime) -> None:
    """Accepts the event if its behaviour type and people are known, else
    parks it with the reason; an accepted event gets its credit rows."""
    behaviour = await s.get(BehaviourTypeRow, row.behaviour_type_id)
    if behaviour is None:
        row.state, row.park_reason = EventState.PARKED.value, ParkReason.UNKNOWN_BEHAVIOUR_TYPE.value
        row.park_detail = f"behaviourTypes/{row.behaviour_type_id}"
        return
    ids = [c["person"] for c in row.credits]
    people = {
        p.id: p for p in (await s.exec(select(ProjectedPersonRow).where(col(ProjectedPersonRow.id).in_(ids)))).all()
    }
    missing = [i for i in ids if i not in people]
    if missing:
        row.state, row.park_reason = EventState.PARKED.value, ParkReason.UNKNOWN_PERSON.value
        row.park_detail = ", ".join(f"people/{i}" for i in missing)[:300]
        return
    row.state, row.park_reason, row.park_detail = EventState.ACCEPTED.value, "", ""
    row.accept_time = now
    row.credited_org_units = [row.provider_lob] if behaviour.credits_provider and row.provider_lob else []
    shares = normalised_shares([float(c["share"]) for c in row.credits])
    reached_by_event = {u for u in (row.related_org_unit, row.customer_lob) if u}
    for person_id, share in zip(ids, shares, strict=True):
        own = people[person_id].org_unit_id
        others = [i for i in ids if i != person_id]
        departments = (reached_by_event | {people[i].org_unit_id for i in others}) - {own, ""}
        s.add(
            CreditRow(
                event_id=row.id,
                person_id=person_id,
                behaviour_type_id=row.behaviour_type_id,
                occurred_at=row.occurred_at,
                accepted_at=now,
                value=row.value,
                share=share,
                collaborators=sorted(others),
                departments=sorted(departments),
            )
        )


async def record(uow: UnitOfWork, o: Observed, now: datetime, seen: set[str] | None = None) -> Outcome:
    s = uow.session
    if (seen is not None and o.id in seen) or await s.get(BehaviourEventRow, o.id) is not None:
        return Outcome(o.id, DUPLICATE)
    if seen is not None:
        seen.add(o.id)
    row = _row_of(o, now)
    await settle(s, row, now)
    s.add(row)
    if row.state == EventState.ACCEPTED:
        return Outcome(o.id, ACCEPTED)
    return Outcome(o.id, PARKED, row.park_reason, reason=f"{row.park_reason.lower()}: {row.park_detail}")


async def record_batch(db: Database, items: Sequence[Observed]) -> list[Outcome]:
    """Records well-formed events in one transaction; a repeated id is a duplicate."""
    seen: set[str] = set()
    async with db.write() as uow:
        now = await credit_clock(uow.session)
        return [await record(uow, o, now, seen) for o in items]


async def apply_crm_event(uow: UnitOfWork, event: CloudEvent) -> None:
    """Handler of `crm.behaviours.v1.>`. A body that is not a well-formed
    BehaviourObserved raises, so the consumer dead-letters it after its
    bounded deliveries."""
    try:
        body = behaviours_pb2.BehaviourObserved.FromString(event.data)
    except DecodeError as exc:
        raise ValueError(f"body is not an engage.incentives.v1.BehaviourObserved: {exc}") from exc
    observed = observed_in(event.id, body, "data", "ce-id")
    if not observed.source_system:
        observed = Observed(**{**observed.__dict__, "source_system": event.source[:200]})
    outcome = await record(uow, observed, await credit_clock(uow.session))
    if outcome.kind == PARKED:
        log.info("behaviour.parked", event_id=event.id, reason=outcome.reason)


async def replay(s: AsyncSession, rows: Sequence[BehaviourEventRow]) -> list[BehaviourEventRow]:
    """Settles parked rows again; returns those now accepted."""
    now = await credit_clock(s)
    accepted = []
    for row in rows:
        await settle(s, row, now)
        s.add(row)
        if row.state == EventState.ACCEPTED:
            accepted.append(row)
    return accepted


async def replay_parked(db: Database, ids: list[str]) -> tuple[list[str], list[BehaviourEventRow]]:
    async with db.write() as uow:
        s = uow.session
        query = select(BehaviourEventRow).where(BehaviourEventRow.state == EventState.PARKED.value)
        if ids:
            query = query.where(col(BehaviourEventRow.id).in_(ids))
        rows = (await s.exec(query.order_by(col(BehaviourEventRow.id)).with_for_update())).all()
        accepted = await replay(s, rows)
        return [r.id for r in accepted], [r for r in rows if r.state == EventState.PARKED]


async def replay_for_person(s: AsyncSession, person_id: str) -> int:
    """A person appeared in the directory: their parked events may count now."""
    rows = (
        await s.exec(
            select(BehaviourEventRow).where(
                BehaviourEventRow.state == EventState.PARKED.value,
                BehaviourEventRow.park_reason == ParkReason.UNKNOWN_PERSON.value,
                sa.cast(BehaviourEventRow.credits, sa.String).like(f'%"{person_id}"%'),
            )
        )
    ).all()
    return len(await replay(s, rows))


async def get_event(db: Database, event_id: str) -> BehaviourEventRow:
    from services.platform.lookups import get_or_404

    async with db.read() as s:
        return await get_or_404(s, BehaviourEventRow, event_id, f"behaviourEvents/{event_id}")


async def list_events(
    db: Database, state: EventState | None, person: str | None, size: int, after: str | None
) -> Sequence[BehaviourEventRow]:
    async with db.read() as s:
        query = select(BehaviourEventRow).order_by(col(BehaviourEventRow.id)).limit(size)
        if state is not None:
            query = query.where(BehaviourEventRow.state == state.value)
        if person:
            query = query.where(sa.cast(BehaviourEventRow.credits, sa.String).like(f'%"{person}"%'))
        if after is not None:
            query = query.where(col(BehaviourEventRow.id) > after)
        return (await s.exec(query)).all()
