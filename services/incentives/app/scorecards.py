"""Scorecards, period close, awards and simulation.

An open period's scorecard is computed from the credit rows when read, so it
is current as soon as an event is accepted. Closing a period freezes every
participant's scorecard and proposes an award; an event accepted after its
period closed counts, marked late, in the first period still open then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.app.ingestion import close_clock
from services.incentives.domain.model import AwardState, SchemeContent
from services.incentives.domain.periods import Period, parse_period, period_containing, settlement_period
from services.incentives.domain.scoring import Contribution, Score, score, total_payout
from services.incentives.events.outgoing import award_event, period_event
from services.incentives.store.tables import (
    AwardRow,
    CreditRow,
    PeriodRow,
    ProjectedAssignmentRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    SchemeRow,
    SchemeVersionRow,
    ScorecardRow,
)
from services.platform.auth import Identity, current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import FailedPrecondition, NotFound, PermissionDenied, invalid
from services.platform.lookups import get_or_404
from services.platform.resources import check_etag

READ_ALL_ROLES = frozenset({"hr_admin", "hr_system", "programme_lead"})


# ---- the directory as projected from the roles service ---------------------------


@dataclass
class Directory:
    units: dict[str, ProjectedOrgUnitRow]
    people: dict[str, ProjectedPersonRow]
    # person -> [(role, from, to)]
    holdings: dict[str, list[tuple[str, datetime, datetime | None]]] = field(default_factory=dict)

    def ancestors(self, unit_id: str) -> list[str]:
        """The unit and the units above it, nearest first."""
        chain: list[str] = []
        current: str | None = unit_id
        while current and current not in chain and len(chain) < 100:
            chain.append(current)
            unit = self.units.get(current)
            current = unit.parent_id if unit else None
        return chain

    def managers_of(self, person_id: str) -> set[str]:
        """Heads of the person's unit and of every unit above it."""
        person = self.people.get(person_id)
        if person is None:
            return set()
        heads = {self.units[u].manager_id for u in self.ancestors(person.org_unit_id) if u in self.units}
        return {h for h in heads if h and h != person_id}

    def takes_part(self, content: SchemeContent, person_id: str, at: datetime) -> bool:
        person = self.people.get(person_id)
        if person is None:
            return False
        if content.eligible_units and not set(self.ancestors(person.org_unit_id)) & set(content.eligible_units):
            return False
        if not content.eligible_roles:
            return True
        return any(
            role in content.eligible_roles and start <= at and (end is None or at < end)
            for role, start, end in self.holdings.get(person_id, [])
        )

    def took_part_in(self, content: SchemeContent, person_id: str, period: Period) -> bool:
        person = self.people.get(person_id)
        if person is None:
            return False
        if content.eligible_units and not set(self.ancestors(person.org_unit_id)) & set(content.eligible_units):
            return False
        if not content.eligible_roles:
            return person.status != "TERMINATED"
        return any(
            role in content.eligible_roles and start < period.end and (end is None or end > period.start)
            for role, start, end in self.holdings.get(person_id, [])
        )


async def load_directory(s: AsyncSession) -> Directory:
    units = {u.id: u for u in (await s.exec(select(ProjectedOrgUnitRow))).all()}
    people = {p.id: p for p in (await s.exec(select(ProjectedPersonRow))).all()}
    holdings: dict[str, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
    for a in (await s.exec(select(ProjectedAssignmentRow))).all():
        end = messages.aware(a.valid_to) if a.valid_to else None
        holdings[a.person_id].append((a.role_id, messages.aware(a.valid_from), end))
    return Directory(units, people, dict(holdings))


# ---- schemes, versions and closed periods ------------------------------------------


@dataclass
class SchemeState:
    row: SchemeRow
    versions: list[SchemeVersionRow]
    closed: dict[str, PeriodRow]

    def calendar_content(self) -> SchemeContent:
        """Published versions share one calendar; a draft-only scheme has its draft's."""
        source = self.versions[0].content if self.versions else self.row.content
        return messages.content_from_json(source)

    def period(self, period_id: str, field_name: str = "name") -> Period:
        return parse_period(period_id, self.calendar_content().calendar, field_name)

    def version_for(self, period: Period) -> tuple[int, SchemeContent]:
        """The latest version effective at the period's start."""
        in_force = [v for v in self.versions if messages.aware(v.effective_start) <= period.start]
        if not in_force:
            raise FailedPrecondition(
                f"no published version of schemes/{self.row.id} applies to period {period.id}",
                "NO_VERSION_IN_FORCE",
            )
        v = in_force[-1]
        return v.version, messages.content_from_json(v.content)

    def close_times(self) -> dict[str, datetime]:
        return {pid: messages.aware(p.close_time) for pid, p in self.closed.items()}


async def load_scheme(s: AsyncSession, scheme_id: str, *, lock: bool = False) -> SchemeState:
    row = await get_or_404(s, SchemeRow, scheme_id, f"schemes/{scheme_id}", lock=lock)
    versions = list(
        (
            await s.exec(
                select(SchemeVersionRow)
                .where(SchemeVersionRow.scheme_id == scheme_id)
                .order_by(col(SchemeVersionRow.version))
            )
        ).all()
    )
    closed = {p.period_id: p for p in (await s.exec(select(PeriodRow).where(PeriodRow.scheme_id == scheme_id))).all()}
    return SchemeState(row, versions, closed)


# ---- computing scorecards ---------------------------------------------------------------


async def _contributions(
    s: AsyncSession,
    content: SchemeContent,
    period: Period,
    directory: Directory,
    close_times: dict[str, datetime] | None,
    person_id: str | None = None,
) -> dict[str, list[Contribution]]:
    """Contributions per person that settle in `period`. `close_times` None
    (a simulation): every event counts in the period it occurred in."""
    kinds = content.behaviour_types()
    occurred_here = sa.and_(col(CreditRow.occurred_at) >= period.start, col(CreditRow.occurred_at) < period.end)
    condition = occurred_here
    earlier_closes = [t for pid, t in (close_times or {}).items() if pid < period.id]
    if earlier_closes:  # late events of closed periods may settle here
        late = sa.and_(col(CreditRow.occurred_at) < period.start, col(CreditRow.accepted_at) >= min(earlier_closes))
        condition = sa.or_(occurred_here, late)
    query = select(CreditRow).where(condition, col(CreditRow.behaviour_type_id).in_(kinds))
    if person_id is not None:
        query = query.where(CreditRow.person_id == person_id)
    result: dict[str, list[Contribution]] = defaultdict(list)
    calendar = content.calendar
    for c in (await s.exec(query)).all():
        occurred = messages.aware(c.occurred_at)
        own = period_containing(occurred, calendar)
        if close_times is not None:
            if settlement_period(own, messages.aware(c.accepted_at), close_times, calendar).id != period.id:
                continue
        elif own.id != period.id:
            continue
        if not directory.takes_part(content, c.person_id, occurred):
            continue
        result[c.person_id].append(
            Contribution(
                event_id=c.event_id,
                behaviour_type=c.behaviour_type_id,
                occurred_at=occurred,
                value=c.value,
                share=c.share,
                collaborators=frozenset(c.collaborators),
                departments=frozenset(c.departments),
                late_from_period=own.id if own.id != period.id else "",
            )
        )
    return result


async def _scores(
    s: AsyncSession,
    content: SchemeContent,
    period: Period,
    directory: Directory,
    close_times: dict[str, datetime] | None,
    person_id: str | None = None,
) -> dict[str, Score]:
    contributions = await _contributions(s, content, period, directory, close_times, person_id)
    if person_id is not None:
        people: Iterable[str] = [person_id]
    else:
        people = set(contributions) | {p for p in directory.people if directory.took_part_in(content, p, period)}
    return {p: score(content, contributions.get(p, [])) for p in sorted(people)}


@dataclass
class ScorecardView:
    scheme_id: str
    period: Period
    person_id: str
    version: int
    lines: list[dict[str, object]]
    attainment: float
    payout: Decimal
    currency: str
    final: bool
    computed: datetime


def _authorize_read(caller: Identity, directory: Directory, person_id: str) -> None:
    """Employees see their own scorecards, managers their units', HR and programme leads all."""
    if caller.roles & READ_ALL_ROLES or not caller.person_id or caller.person_id == person_id:
        return
    if caller.person_id in directory.managers_of(person_id):
        return
    raise PermissionDenied(
        f"{caller.actor} may not read the scorecard of people/{person_id}: not their own and not in a unit they head",
        "OUTSIDE_MANAGED_SCOPE",
    )


async def get_scorecard(db: Database, scheme_id: str, period_id: str, person_id: str) -> ScorecardView:
    async with db.read() as s:
        scheme = await load_scheme(s, scheme_id)
        period = scheme.period(period_id)
        directory = await load_directory(s)
        _authorize_read(current_identity(), directory, person_id)
        version, content = scheme.version_for(period)
        if period_id in scheme.closed:
            frozen = await s.get(ScorecardRow, (scheme_id, period_id, person_id))
            if frozen is None:
                raise NotFound(f"people/{person_id} did not take part in period {period_id} of schemes/{scheme_id}")
            return ScorecardView(
                scheme_id,
                period,
                person_id,
                frozen.scheme_version,
                frozen.lines,
                frozen.attainment,
                Decimal(frozen.payout),
                content.payout.currency,
                True,
                messages.aware(frozen.compute_time),
            )
        result = (await _scores(s, content, period, directory, scheme.close_times(), person_id))[person_id]
        return _view(scheme_id, period, person_id, version, content, result)


def _view(
    scheme_id: str, period: Period, person_id: str, version: int, content: SchemeContent, result: Score
) -> ScorecardView:
    return ScorecardView(
        scheme_id,
        period,
        person_id,
        version,
        messages.score_to_json(result),  # type: ignore[arg-type]
        result.attainment,
        result.payout,
        content.payout.currency,
        False,
        utcnow(),
    )


async def list_scorecards(
    db: Database, scheme_id: str, period_id: str, size: int, after: str | None
) -> list[ScorecardView]:
    async with db.read() as s:
        scheme = await load_scheme(s, scheme_id)
        period = scheme.period(period_id, "parent")
        directory = await load_directory(s)
        caller = current_identity()
        version, content = scheme.version_for(period)
        views: list[ScorecardView] = []
        if period_id in scheme.closed:
            query = (
                select(ScorecardRow)
                .where(ScorecardRow.scheme_id == scheme_id, ScorecardRow.period_id == period_id)
                .order_by(col(ScorecardRow.person_id))
            )
            for f in (await s.exec(query)).all():
                views.append(
                    ScorecardView(
                        scheme_id,
                        period,
                        f.person_id,
                        f.scheme_version,
                        f.lines,
                        f.attainment,
                        Decimal(f.payout),
                        content.payout.currency,
                        True,
                        messages.aware(f.compute_time),
                    )
                )
        else:
            scores = await _scores(s, content, period, directory, scheme.close_times())
            views = [_view(scheme_id, period, p, version, content, r) for p, r in scores.items()]
        visible = [v for v in views if _may_read(caller, directory, v.person_id)]
        return [v for v in visible if after is None or v.person_id > after][:size]


def _may_read(caller: Identity, directory: Directory, person_id: str) -> bool:
    try:
        _authorize_read(caller, directory, person_id)
    except PermissionDenied:
        return False
    return True


# ---- periods and awards ---------------------------------------------------------------


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
        scores = await _scores(s, content, period, directory, scheme.close_times())
        currency = content.payout.currency
        awards = []
        for person_id, result in scores.items():
            s.add(
                ScorecardRow(
                    scheme_id=scheme_id,
                    period_id=period_id,
                    person_id=person_id,
                    scheme_version=version,
                    attainment=result.attainment,
                    payout=str(result.payout),
                    lines=messages.score_to_json(result),
                    compute_time=now,
                )
            )
            award = AwardRow(
                scheme_id=scheme_id,
                period_id=period_id,
                person_id=person_id,
                scheme_version=version,
                attainment=result.attainment,
                currency=currency,
                proposed_amount=str(result.payout),
                amount=str(result.payout),
                state=AwardState.PROPOSED.value,
                create_time=now,
                update_time=now,
            )
            s.add(award)
            awards.append(award)
            uow.emit(award_event("proposed", award))
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
        view = PeriodView(
            scheme_id,
            period,
            version,
            row,
            len(awards),
            total_payout(Decimal(a.amount) for a in awards),
            content.budget,
            currency,
        )
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
        _authorize_read(current_identity(), await load_directory(s), person_id)
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
        return [r for r in rows if _may_read(caller, directory, r.person_id)][:size]


async def _authorize_decision(s: AsyncSession, caller: Identity, person_id: str, action: str) -> None:
    """HR administrators, or the head of the person's unit or a unit above it; never on one's own award."""
    if caller.person_id == person_id:
        raise PermissionDenied(f"{caller.actor} may not {action} their own award", "OWN_AWARD")
    if caller.is_admin:
        return
    directory = await load_directory(s)
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
            contributions = await _contributions(s, draft, period, directory, None)
            scores = {p: score(draft, c) for p, c in sorted(contributions.items())}
            total = total_payout(r.payout for r in scores.values())
            results.append(SimulatedPeriod(period, scores, total, draft.budget, draft.payout.currency))
        return results
