"""Recording behaviour events: idempotent by event id, parked when a person or
behaviour type is unknown (or a peer recognition breaks the rules), credited
to people (with their org unit at the event's time) and provider lines of
business when accepted.

Events are settled in batches: one query per kind of lookup for the whole
batch, and bulk inserts, so the NATS consumer and `RecordBehaviourEvents`
keep up with thousands of events a second.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa
from engage.incentives.v1 import behaviours_pb2
from google.protobuf.message import DecodeError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives.app.attribution import CHUNK, Attribution, load_attribution
from services.incentives.app.changes import committed, note_events
from services.incentives.domain.credits import normalised_shares
from services.incentives.domain.fairness import month_bounds, over_budget, recognition_month, self_recognition
from services.incentives.domain.model import EventState, ParkReason
from services.incentives.messages import Observed, aware, observed_in
from services.incentives.store.tables import BehaviourEventRow, BehaviourTypeRow, CreditRow, ProjectedPersonRow
from services.platform.cloudevents import CloudEvent
from services.platform.consumer import Unprocessable
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.log import get_logger
from services.platform.lookups import get_or_404
from services.platform.outbox import DriverInsert

log = get_logger(__name__)

ACCEPTED, PARKED, DUPLICATE, REJECTED = "ACCEPTED", "PARKED", "DUPLICATE", "REJECTED"


@dataclass(frozen=True)
class Outcome:
    id: str
    kind: str
    park_reason: str = ""
    field: str = ""  # for REJECTED, relative to the observation
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


@dataclass
class NewEvent:
    """An event being recorded: the columns of its BehaviourEventRow, as a
    plain object (building thousands of ORM rows a second costs more than
    settling them), inserted in bulk."""

    id: str
    behaviour_type_id: str
    credits: list[dict[str, Any]]
    occurred_at: datetime
    value: float
    customer_lob: str | None
    provider_lob: str | None
    related_org_unit: str | None
    source_system: str
    object_ref: str
    recipient: str | None
    record_time: datetime
    state: str = EventState.PARKED.value
    park_reason: str = ""
    park_detail: str = ""
    credited_org_units: list[str] = field(default_factory=list)
    accept_time: datetime | None = None


# What settling reads and writes of an event, new or parked.
Settleable = NewEvent | BehaviourEventRow


def _new_event(o: Observed, now: datetime) -> NewEvent:
    return NewEvent(
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
        recipient=o.recipient,
        record_time=now,
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass
class _Lookups:
    """What settling a batch needs to know, each fetched once for the batch."""

    types: dict[str, BehaviourTypeRow]
    people: set[str]
    attribution: Attribution
    given: Counter[tuple[str, str, str]]  # (giver, behaviour type, month) -> recognitions accepted


async def _lookups(s: AsyncSession, rows: Sequence[Settleable]) -> _Lookups:
    types = {t.id: t for t in (await s.exec(select(BehaviourTypeRow))).all()}
    wanted = sorted({c["person"] for r in rows for c in r.credits} | {r.recipient for r in rows if r.recipient})
    people: set[str] = set()
    for part in _chunks(wanted):
        people.update((await s.exec(select(ProjectedPersonRow.id).where(col(ProjectedPersonRow.id).in_(part)))).all())
    given: Counter[tuple[str, str, str]] = Counter()
    recognitions = [r for r in rows if r.behaviour_type_id in types and types[r.behaviour_type_id].peer_recognition]
    if recognitions:
        givers = sorted({c["person"] for r in recognitions for c in r.credits})
        months = {recognition_month(aware(r.occurred_at)) for r in recognitions}
        start, end = month_bounds(min(months), "month")[0], month_bounds(max(months), "month")[1]
        for part in _chunks(givers):
            query = select(CreditRow.person_id, CreditRow.behaviour_type_id, CreditRow.occurred_at).where(
                col(CreditRow.recipient_id).is_not(None),
                col(CreditRow.person_id).in_(part),
                col(CreditRow.occurred_at) >= start,
                col(CreditRow.occurred_at) < end,
            )
            for giver, kind, at in (await s.exec(query)).all():
                given[(giver, kind, recognition_month(aware(at)))] += 1
    return _Lookups(types, people, await load_attribution(s, people), given)


def _park(row: Settleable, reason: ParkReason, detail: str) -> None:
    row.state, row.park_reason, row.park_detail = EventState.PARKED.value, reason.value, detail[:300]


def _settle(row: Settleable, k: _Lookups, now: datetime) -> list[dict[str, Any]]:
    """Accepts the event if it may count, else parks it with the reason;
    returns the credit rows of an accepted event."""
    behaviour = k.types.get(row.behaviour_type_id)
    if behaviour is None:
        _park(row, ParkReason.UNKNOWN_BEHAVIOUR_TYPE, f"behaviourTypes/{row.behaviour_type_id}")
        return []
    ids = [c["person"] for c in row.credits]
    missing = [i for i in [*ids, row.recipient or ""] if i and i not in k.people]
    if missing:
        _park(row, ParkReason.UNKNOWN_PERSON, ", ".join(f"people/{i}" for i in missing))
        return []
    occurred = aware(row.occurred_at)
    recipient = row.recipient if behaviour.peer_recognition else None
    if behaviour.peer_recognition:
        if self_recognition(ids, recipient):
            _park(row, ParkReason.SELF_RECOGNITION, f"people/{recipient} may not recognise themselves")
            return []
        month = recognition_month(occurred)
        spent = [g for g in ids if over_budget(k.given[(g, behaviour.id, month)], behaviour.recognition_budget)]
        if spent:
            detail = ", ".join(f"people/{g}" for g in spent)
            _park(
                row,
                ParkReason.RECOGNITION_BUDGET_EXCEEDED,
                f"{detail} gave {behaviour.recognition_budget} recognitions in {month} already",
            )
            return []
        for g in ids:
            k.given[(g, behaviour.id, month)] += 1
    row.state, row.park_reason, row.park_detail = EventState.ACCEPTED.value, "", ""
    row.accept_time = now
    row.credited_org_units = [row.provider_lob] if behaviour.credits_provider and row.provider_lob else []
    shares = normalised_shares([float(c["share"]) for c in row.credits])
    units = {i: k.attribution.unit_at(i, occurred) for i in ids}
    reached_by_event = {u for u in (row.related_org_unit, row.customer_lob) if u}
    credits = []
    for person_id, share in zip(ids, shares, strict=True):
        own = units[person_id]
        others = [i for i in ids if i != person_id]
        departments = (reached_by_event | {units[i] for i in others}) - {own, ""}
        credits.append(
            {
                "event_id": row.id,
                "person_id": person_id,
                "behaviour_type_id": row.behaviour_type_id,
                "occurred_at": occurred,
                "accepted_at": now,
                "value": row.value,
                "share": share,
                "collaborators": sorted(others),
                "departments": sorted(departments),
                "org_unit_id": own,
                "line_of_business_id": k.attribution.line_of_business(own),
                "recipient_id": recipient,
            }
        )
    return credits


def _rejection(o: Observed, k: _Lookups) -> Outcome | None:
    behaviour = k.types.get(o.behaviour_type)
    if behaviour is not None and behaviour.peer_recognition and not o.recipient:
        return Outcome(o.id, REJECTED, field="recipient", reason=f"a {behaviour.id} event names its recipient")
    return None


def _table(model: type[Any]) -> sa.Table:
    return model.__table__  # type: ignore[no-any-return]


# Events and credits go to the driver as plain tuples (SQLAlchemy's executemany
# processed a parameter dict per row: half the cost of recording an event).
_EVENT_COLUMNS = tuple(c.name for c in _table(BehaviourEventRow).columns)
_CREDIT_COLUMNS = tuple(c.name for c in _table(CreditRow).columns)
_EVENTS = DriverInsert(_table(BehaviourEventRow), _EVENT_COLUMNS)
_CREDITS = DriverInsert(_table(CreditRow), _CREDIT_COLUMNS)
_event_values = attrgetter(*_EVENT_COLUMNS)  # a NewEvent's attributes are its row's columns
_credit_values = itemgetter(*_CREDIT_COLUMNS)


async def _insert_credits(s: AsyncSession, credits: list[dict[str, Any]]) -> None:
    await _CREDITS.run(await s.connection(), [_credit_values(c) for c in credits])


async def record_many(s: AsyncSession, items: Sequence[Observed], now: datetime) -> list[Outcome]:
    """Records well-formed events: each new id once (a repeated or known id is
    a DUPLICATE), settled against one set of lookups, inserted in bulk."""
    ids = sorted({o.id for o in items})
    known: set[str] = set()
    for part in _chunks(ids):
        known.update((await s.exec(select(BehaviourEventRow.id).where(col(BehaviourEventRow.id).in_(part)))).all())
    fresh: list[Observed] = []
    for o in items:
        if o.id not in known:
            known.add(o.id)
            fresh.append(o)
    rows = [_new_event(o, now) for o in fresh]
    k = await _lookups(s, rows)
    outcomes: dict[str, Outcome] = {}
    events, credits = [], []
    for o, row in zip(fresh, rows, strict=True):
        rejected = _rejection(o, k)
        if rejected is not None:
            outcomes[o.id] = rejected
            continue
        credits.extend(_settle(row, k, now))
        events.append(_event_values(row))
        if row.state == EventState.ACCEPTED:
            outcomes[o.id] = Outcome(o.id, ACCEPTED)
        else:
            outcomes[o.id] = Outcome(
                o.id, PARKED, row.park_reason, reason=f"{row.park_reason.lower()}: {row.park_detail}"
            )
    await _EVENTS.run(await s.connection(), events)
    await _insert_credits(s, credits)
    await note_events(s, (c["event_id"] for c in credits))
    first = {id(o) for o in fresh}
    return [outcomes[o.id] if id(o) in first else Outcome(o.id, DUPLICATE) for o in items]


async def record_batch(db: Database, items: Sequence[Observed]) -> list[Outcome]:
    """`RecordBehaviourEvents`: one transaction for the batch."""
    async with db.write() as uow:
        outcomes = await record_many(uow.session, items, await credit_clock(uow.session))
    committed(db)
    return outcomes


def crm_body(event: CloudEvent) -> behaviours_pb2.BehaviourObserved:
    try:
        return behaviours_pb2.BehaviourObserved.FromString(event.data)
    except DecodeError as exc:
        raise ValueError(f"body is not an engage.incentives.v1.BehaviourObserved: {exc}") from exc


def crm_observation(event: CloudEvent, body: behaviours_pb2.BehaviourObserved) -> Observed:
    """The behaviour a CRM CloudEvent reports; INVALID_ARGUMENT if malformed.
    The sender's `ce-source` stands in for a missing source system."""
    observed = observed_in(event.id, body, "data", "ce-id")
    if not observed.source_system:
        observed = Observed(**{**observed.__dict__, "source_system": event.source[:200]})
    return observed


async def apply_crm_event(uow: UnitOfWork, event: CloudEvent) -> None:
    """Handler of `crm.behaviours.v1.>` one event at a time (the batched
    consumer falls back to it). A body that is not a well-formed
    BehaviourObserved raises, so the consumer dead-letters it after its
    bounded deliveries."""
    try:
        body = behaviours_pb2.BehaviourObserved.FromString(event.data)
    except DecodeError as exc:
        raise ValueError(f"body is not an engage.incentives.v1.BehaviourObserved: {exc}") from exc
    observed = crm_observation(event, body)
    [outcome] = await record_many(uow.session, [observed], await credit_clock(uow.session))
    if outcome.kind == REJECTED:
        raise Unprocessable(f"data.{outcome.field}: {outcome.reason}")
    if outcome.kind == PARKED:
        log.info("behaviour.parked", event_id=event.id, reason=outcome.reason)


async def replay(s: AsyncSession, rows: Sequence[BehaviourEventRow]) -> list[BehaviourEventRow]:
    """Settles parked rows again; returns those now accepted."""
    now = await credit_clock(s)
    k = await _lookups(s, rows)
    accepted, credits = [], []
    for row in rows:
        credits.extend(_settle(row, k, now))
        s.add(row)
        if row.state == EventState.ACCEPTED:
            accepted.append(row)
    await _insert_credits(s, credits)
    await note_events(s, (r.id for r in accepted))
    return accepted


async def replay_parked(db: Database, ids: list[str]) -> tuple[list[str], list[BehaviourEventRow]]:
    async with db.write() as uow:
        s = uow.session
        query = select(BehaviourEventRow).where(BehaviourEventRow.state == EventState.PARKED.value)
        if ids:
            query = query.where(col(BehaviourEventRow.id).in_(ids))
        rows = (await s.exec(query.order_by(col(BehaviourEventRow.id)).with_for_update())).all()
        accepted = await replay(s, rows)
    committed(db)
    return [r.id for r in accepted], [r for r in rows if r.state == EventState.PARKED]


async def replay_for_person(s: AsyncSession, person_id: str) -> int:
    """A person appeared in the directory: their parked events may count now.

    On PostgreSQL a credit writer that looked the person up before they
    existed may still be parking an event for them; this lock (conflicting
    with its ROW EXCLUSIVE, see `credit_clock`, and with another replay)
    waits for it to commit, so the query below sees what it parked, or
    makes it wait and then find the person.
    """
    conn = await s.connection()
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE behaviour_credits IN SHARE ROW EXCLUSIVE MODE")
    rows = (
        await s.exec(
            select(BehaviourEventRow).where(
                BehaviourEventRow.state == EventState.PARKED.value,
                BehaviourEventRow.park_reason == ParkReason.UNKNOWN_PERSON.value,
                sa.cast(BehaviourEventRow.credits, sa.String).like(f'%"{person_id}"%')
                | (col(BehaviourEventRow.recipient) == person_id),
            )
        )
    ).all()
    return len(await replay(s, rows))


Units = list[tuple[str, str, str]]


async def _credited_units(s: AsyncSession, event_ids: list[str]) -> dict[str, Units]:
    found: dict[str, Units] = defaultdict(list)
    for part in _chunks(event_ids):
        query = select(CreditRow.event_id, CreditRow.person_id, CreditRow.org_unit_id, CreditRow.line_of_business_id)
        for event_id, person, unit, lob in (await s.exec(query.where(col(CreditRow.event_id).in_(part)))).all():
            found[event_id].append((person, unit, lob))
    return found


async def get_event(db: Database, event_id: str) -> tuple[BehaviourEventRow, Units]:
    async with db.read() as s:
        row = await get_or_404(s, BehaviourEventRow, event_id, f"behaviourEvents/{event_id}")
        return row, (await _credited_units(s, [event_id])).get(event_id, [])


async def list_events(
    db: Database, state: EventState | None, person: str | None, size: int, after: str | None
) -> list[tuple[BehaviourEventRow, Units]]:
    async with db.read() as s:
        query = select(BehaviourEventRow).order_by(col(BehaviourEventRow.id)).limit(size)
        if state is not None:
            query = query.where(BehaviourEventRow.state == state.value)
        if person:
            query = query.where(sa.cast(BehaviourEventRow.credits, sa.String).like(f'%"{person}"%'))
        if after is not None:
            query = query.where(col(BehaviourEventRow.id) > after)
        rows = (await s.exec(query)).all()
        units = await _credited_units(s, [r.id for r in rows])
        return [(r, units.get(r.id, [])) for r in rows]
