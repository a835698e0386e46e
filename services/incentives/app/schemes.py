"""Scheme use cases: a draft edited freely, versions published from a date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from google.protobuf.message import Message
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.app.changes import note_everyone
from services.incentives.domain.model import SchemeContent, SchemeState, validate_scheme
from services.incentives.domain.periods import period_starting
from services.incentives.events.outgoing import scheme_event
from services.incentives.store.tables import BehaviourTypeRow, PeriodRow, SchemeRow, SchemeVersionRow
from services.platform.auth import current_identity
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import AlreadyExists, FailedPrecondition, FieldViolation, NotFound
from services.platform.lookups import get_or_404
from services.platform.resources import Page, check_etag, recall_request, remember_request


async def _validate(s: AsyncSession, content: SchemeContent) -> None:
    wanted = content.behaviour_types()
    known: set[str] = set()
    if wanted:
        known = set((await s.exec(select(BehaviourTypeRow.id).where(col(BehaviourTypeRow.id).in_(wanted)))).all())
    validate_scheme(content, known)


async def versions_of(s: AsyncSession, scheme_id: str) -> list[SchemeVersionRow]:
    query = (
        select(SchemeVersionRow).where(SchemeVersionRow.scheme_id == scheme_id).order_by(col(SchemeVersionRow.version))
    )
    return list((await s.exec(query)).all())


def _emit(uow: UnitOfWork, verb: str, row: SchemeRow, versions: list[SchemeVersionRow]) -> None:
    uow.emit(scheme_event(verb, messages.scheme_out(row, versions), row.revision))


async def create_scheme(
    db: Database, scheme_id: str, content: SchemeContent, request_id: str, request: Message
) -> tuple[SchemeRow, list[SchemeVersionRow]]:
    async with db.write() as uow:
        s = uow.session
        earlier = await recall_request(s, request_id, "CreateScheme", request)
        if earlier:
            sid = earlier.split("/", 1)[1]
            return await get_or_404(s, SchemeRow, sid, earlier), await versions_of(s, sid)
        if await s.get(SchemeRow, scheme_id) is not None:
            raise AlreadyExists(f"schemes/{scheme_id} already exists")
        await _validate(s, content)
        now = utcnow()
        row = SchemeRow(
            id=scheme_id,
            display_name=content.display_name,
            content=messages.content_to_json(content),
            state=SchemeState.DRAFT.value,
            create_time=now,
            update_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreateScheme", request, f"schemes/{scheme_id}")
        _emit(uow, "created", row, [])
        return row, []


async def get_scheme(
    db: Database, scheme_id: str, version: int | None
) -> tuple[SchemeRow, list[SchemeVersionRow], SchemeVersionRow | None]:
    async with db.read() as s:
        row = await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}")
        versions = await versions_of(s, scheme_id)
        if version is None:
            return row, versions, None
        found = next((v for v in versions if v.version == version), None)
        if found is None:
            raise NotFound(f"schemes/{scheme_id}@{version} does not exist")
        return row, versions, found


async def list_schemes(db: Database, page: Page) -> list[tuple[SchemeRow, list[SchemeVersionRow]]]:
    async with db.read() as s:
        query = select(SchemeRow).order_by(col(SchemeRow.id)).limit(page.size)
        if page.after is not None:
            query = query.where(col(SchemeRow.id) > page.after)
        rows: Sequence[SchemeRow] = (await s.exec(query)).all()
        return [(r, await versions_of(s, r.id)) for r in rows]


async def update_scheme(
    db: Database, scheme_id: str, content: SchemeContent, paths: set[str], etag: str
) -> tuple[SchemeRow, list[SchemeVersionRow]]:
    """`content` carries the new values of the fields in `paths`; the rest is kept."""
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}", lock=True)
        check_etag(etag, f"schemes/{scheme_id}", row.revision)
        before = messages.content_from_json(row.content)
        merged = SchemeContent(
            display_name=content.display_name if "display_name" in paths else before.display_name,
            description=content.description if "description" in paths else before.description,
            calendar=content.calendar if "calendar" in paths else before.calendar,
            measures=content.measures if "measures" in paths else before.measures,
            payout=content.payout if "payout" in paths else before.payout,
            credit_split=content.credit_split if "credit_split" in paths else before.credit_split,
            eligible_roles=content.eligible_roles if "eligibility" in paths else before.eligible_roles,
            eligible_units=content.eligible_units if "eligibility" in paths else before.eligible_units,
            budget=content.budget if "budget" in paths else before.budget,
        )
        await _validate(s, merged)
        row.content = messages.content_to_json(merged)
        row.display_name = merged.display_name
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        versions = await versions_of(s, scheme_id)
        _emit(uow, "updated", row, versions)
        return row, versions


async def publish_scheme(
    db: Database, scheme_id: str, effective_from: date, etag: str
) -> tuple[SchemeRow, list[SchemeVersionRow]]:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}", lock=True)
        check_etag(etag, f"schemes/{scheme_id}", row.revision)
        content = messages.content_from_json(row.content)
        await _validate(s, content)
        versions = await versions_of(s, scheme_id)
        if versions:
            first = messages.content_from_json(versions[0].content).calendar
            if content.calendar != first:
                raise FailedPrecondition(
                    "the calendar of a published scheme cannot change (periods would not line up); "
                    "create a new scheme instead",
                    "CALENDAR_CHANGED",
                    FieldViolation(
                        "scheme.calendar", f"published versions use {first.period_kind} in {first.time_zone}"
                    ),
                )
            latest = versions[-1]
            if effective_from.isoformat() <= latest.effective_from:
                raise FailedPrecondition(
                    f"version {latest.version} is effective from {latest.effective_from}; "
                    "a new version must start later",
                    "NOT_AFTER_LATEST_VERSION",
                    FieldViolation("effective_from", f"must be after {latest.effective_from}"),
                )
        start = period_starting(effective_from, content.calendar, "effective_from")
        closed = (
            await s.exec(
                select(PeriodRow.period_id).where(
                    PeriodRow.scheme_id == scheme_id, col(PeriodRow.end_time) > start.start
                )
            )
        ).first()
        if closed:
            raise FailedPrecondition(
                f"period {closed} from {effective_from} on is closed; a new version never rewrites a settled period",
                "PERIOD_CLOSED",
                FieldViolation("effective_from", f"period {closed} is closed"),
            )
        now = utcnow()
        row.version += 1
        version = SchemeVersionRow(
            scheme_id=scheme_id,
            version=row.version,
            effective_from=effective_from.isoformat(),
            effective_start=start.start,
            content=row.content,
            published_by=caller.actor,
            publish_time=now,
        )
        s.add(version)
        row.state = SchemeState.ACTIVE.value
        row.revision += 1
        row.update_time = now
        s.add(row)
        versions.append(version)
        _emit(uow, "published", row, versions)
        await note_everyone(s)
        return row, versions
