"""Period close, awards with approval, and simulation of draft schemes.

Closing a period freezes every participant's scorecard and proposes an award;
a manager adjusts (with a reason) or approves each award; approval is final
and is published for payroll.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.app.changes import note_everyone
from services.incentives.app.counting import counting_in, totals
from services.incentives.app.directory import SchemeState, load_directory, load_scheme
from services.incentives.app.ingestion import close_clock
from services.incentives.app.scorecards import authorize_read, may_read
from services.incentives.domain.model import AwardState
from services.incentives.domain.periods import Period, parse_period
from services.incentives.domain.scoring import Score, score_totals, total_payout
from services.incentives.events.outgoing import award_event, period_event
from services.incentives.store.tables import AwardRow, PeriodRow, SchemeRow, ScorecardRow
from services.platform.auth import Identity, current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import FailedPrecondition, PermissionDenied, invalid
from services.platform.lookups import get_or_404
from services.platform.resources import check_etag


@dataclass
class PeriodView:
    scheme_id: str
    period: Period
    version: int
    row: PeriodRow | None
    award_count: int
    total: Decimal
    budget: float
    currency: str


async def _period_view(s: AsyncSession, scheme: SchemeState, period: Period) -> PeriodView:
    version, content = scheme.version_for(period)
    row = scheme.closed.get(period.id)
    count, total = 0, Decimal(0)
    if row is not None:
        amounts = (
            await s.exec(
                select(AwardRow.amount).where(AwardRow.scheme_id == scheme.row.id, AwardRow.period_id == period.id)
            )
        ).all()
        count, total = len(amounts), total_payout(Decimal(a) for a in amounts)
    return PeriodView(scheme.row.id, period, version, row, count, total, content.budget, content.payout.currency)


async def get_period(db: Database, scheme_id: str, period_id: str) -> PeriodView:
    async with db.read() as s:
        scheme = await load_scheme(s, scheme_id)
        return await _period_view(s, scheme, scheme.period(period_id))


async def close_period(db: Database, scheme_id: str, period_id: str) -> PeriodView:
    """Freezes every participant's scorecard and proposes their award, in one
    transaction. The measures are summed in the database (a close covers
    every credit of the period), rows are written in bulk."""
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        scheme = await load_scheme(s, scheme_id, lock=True)  # one close at a time per scheme
        period = scheme.period(period_id)
        now = await close_clock(s)
        if now < period.end:
            raise FailedPrecondition(
                f"period {period_id} ends at {period.end.isoformat()}; it can be closed after that", "PERIOD_NOT_ENDED"
            )
        if period_id in scheme.closed:
            raise FailedPrecondition(f"period {period_id} of schemes/{scheme_id} is already closed", "PERIOD_CLOSED")
        version, content = scheme.version_for(period)
        directory = await load_directory(s)
        earned = await totals(s, content, counting_in(content, period, directory.units, scheme.close_times()))
        people = set(earned) | {p for p in directory.people if directory.took_part_in(content, p, period)}
        currency = content.payout.currency
        cards, awards, events = [], [], []
        amounts = []
        for person_id in sorted(people):
            result = score_totals(content, earned.get(person_id, {}))
            amount = str(result.payout)
            amounts.append(result.payout)
            cards.append(
                {
                    "scheme_id": scheme_id,
                    "period_id": period_id,
                    "person_id": person_id,
                    "scheme_version": version,
                    "attainment": result.attainment,
                    "payout": amount,
                    # The numbers; their explanations are read from the credits (see get_scorecard).
                    "lines": messages.score_to_json(result),
                    "compute_time": now,
                }
            )
            award = AwardRow(
                scheme_id=scheme_id,
                period_id=period_id,
                person_id=person_id,
                scheme_version=version,
                attainment=result.attainment,
                currency=currency,
                proposed_amount=amount,
                amount=amount,
                state=AwardState.PROPOSED.value,
                adjustments=[],
                approved_by="",
                approve_time=None,
                revision=1,
                create_time=now,
                update_time=now,
            )
            awards.append(award.model_dump())
            events.append(award_event("proposed", award))
        for table, rows in ((ScorecardRow, cards), (AwardRow, awards)):
            for start in range(0, len(rows), 2000):
                await s.execute(sa.insert(table), rows[start : start + 2000])
        await uow.emit_many(events)
        row = PeriodRow(
            scheme_id=scheme_id,
            period_id=period_id,
            start_time=period.start,
            end_time=period.end,
            scheme_version=version,
            close_time=now,
            closed_by=caller.actor,
        )
        s.add(row)
        await note_everyone(s)  # later periods count events accepted after this close
        view = PeriodView(scheme_id, period, version, row, len(awards), total_payout(amounts), content.budget, currency)
        uow.emit(period_event("closed", _period_message(view), row.revision))
        return view


def _period_message(view: PeriodView):  # type: ignore[no-untyped-def]
    return messages.period_out(
        view.scheme_id, view.period, view.version, view.row, view.award_count, view.total, view.budget, view.currency
    )


def _award_key(scheme_id: str, period_id: str, person_id: str) -> tuple[str, str, str]:
    return scheme_id, period_id, person_id


async def get_award(db: Database, scheme_id: str, period_id: str, person_id: str) -> AwardRow:
    async with db.read() as s:
        row = await get_or_404(
            s, AwardRow, _award_key(scheme_id, period_id, person_id), _award_name(scheme_id, period_id, person_id)
        )
        authorize_read(current_identity(), await load_directory(s, [person_id]), person_id)
        return row


def _award_name(scheme_id: str, period_id: str, person_id: str) -> str:
    return f"schemes/{scheme_id}/periods/{period_id}/awards/{person_id}"


async def list_awards(
    db: Database, scheme_id: str, period_id: str, state: AwardState | None, size: int, after: str | None
) -> list[AwardRow]:
    async with db.read() as s:
        await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}")
        query = (
            select(AwardRow)
            .where(AwardRow.scheme_id == scheme_id, AwardRow.period_id == period_id)
            .order_by(col(AwardRow.person_id))
        )
        if state is not None:
            query = query.where(AwardRow.state == state.value)
        if after is not None:
            query = query.where(col(AwardRow.person_id) > after)
        rows = (await s.exec(query)).all()
        directory = await load_directory(s)
        caller = current_identity()
        return [r for r in rows if may_read(caller, directory, r.person_id)][:size]


async def _authorize_decision(s: AsyncSession, caller: Identity, person_id: str, action: str) -> None:
    """HR administrators, or the head of the person's unit or a unit above it; never on one's own award."""
    if caller.person_id == person_id:
        raise PermissionDenied(f"{caller.actor} may not {action} their own award", "OWN_AWARD")
    if caller.is_admin:
        return
    directory = await load_directory(s, [person_id])
    if caller.person_id and caller.person_id in directory.managers_of(person_id):
        return
    raise PermissionDenied(
        f"{caller.actor} may not {action} the award of people/{person_id}: they do not head the person's unit",
        "OUTSIDE_MANAGED_SCOPE",
    )


async def _award_for_decision(
    s: AsyncSession, scheme_id: str, period_id: str, person_id: str, etag: str, action: str
) -> AwardRow:
    name = _award_name(scheme_id, period_id, person_id)
    row = await get_or_404(s, AwardRow, _award_key(scheme_id, period_id, person_id), name, lock=True)
    await _authorize_decision(s, current_identity(), person_id, action)
    check_etag(etag, name, row.revision)
    if row.state == AwardState.APPROVED:
        raise FailedPrecondition(
            f"{name} was approved by {row.approved_by}; an approved award is final", "AWARD_APPROVED"
        )
    return row


async def adjust_award(
    db: Database, scheme_id: str, period_id: str, person_id: str, amount: Decimal, reason: str, etag: str
) -> AwardRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        row = await _award_for_decision(s, scheme_id, period_id, person_id, etag, "adjust")
        now = utcnow()
        row.adjustments = [
            *row.adjustments,
            {"from": row.amount, "to": str(amount), "reason": reason, "by": caller.actor, "at": now.isoformat()},
        ]
        row.amount = str(amount)
        row.revision += 1
        row.update_time = now
        s.add(row)
        uow.emit(award_event("adjusted", row))
        return row


async def approve_award(db: Database, scheme_id: str, period_id: str, person_id: str, etag: str) -> AwardRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        row = await _award_for_decision(s, scheme_id, period_id, person_id, etag, "approve")
        now = utcnow()
        row.state = AwardState.APPROVED.value
        row.approved_by = caller.actor
        row.approve_time = now
        row.revision += 1
        row.update_time = now
        s.add(row)
        uow.emit(award_event("approved", row))
        return row


# ---- simulation ---------------------------------------------------------------------------


@dataclass
class SimulatedPeriod:
    period: Period
    payouts: dict[str, Score]
    total: Decimal
    budget: float
    currency: str


MAX_SIMULATED_PERIODS = 24


async def simulate(db: Database, scheme_id: str, period_ids: list[str]) -> list[SimulatedPeriod]:
    """The draft content over every accepted event of the periods, as if no period had closed."""
    if not period_ids:
        raise invalid("periods", "name at least one period, e.g. 2025-01")
    if len(period_ids) > MAX_SIMULATED_PERIODS:
        raise invalid("periods", f"at most {MAX_SIMULATED_PERIODS} periods")
    async with db.read() as s:
        row = await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}")
        draft = messages.content_from_json(row.content)
        directory = await load_directory(s)
        results = []
        for i, pid in enumerate(period_ids):
            period = parse_period(pid, draft.calendar, f"periods[{i}]")
            earned = await totals(s, draft, counting_in(draft, period, directory.units, None))
            scores = {p: score_totals(draft, t) for p, t in sorted(earned.items())}
            total = total_payout(r.payout for r in scores.values())
            results.append(SimulatedPeriod(period, scores, total, draft.budget, draft.payout.currency))
        return results
