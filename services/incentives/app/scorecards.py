"""Scorecards and team summaries.

An open period's scorecard is computed from its person's credit rows; each
replica holds the open periods asked for in memory and recomputes the people
each change names (`scorecard_board.py`), so a read costs no query. A closed period's
numbers are those frozen at the close; its explanations are the same credits,
selected with the close times (credits never change). An event accepted after
its period closed counts, marked late, in the first period still open then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.app.counting import contributions, counting_in, subtree, totals
from services.incentives.app.directory import (
    Directory,
    SchemeCache,
    SchemeState,
    load_directory,
    load_scheme,
    load_units,
)
from services.incentives.domain.fairness import shown
from services.incentives.domain.model import SchemeContent
from services.incentives.domain.periods import Period
from services.incentives.domain.scoring import Contribution, Score, score, score_totals
from services.incentives.store.tables import CreditRow, ProjectedOrgUnitRow, ProjectedPersonRow, ScorecardRow
from services.platform.auth import Identity, current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from services.incentives.app.scorecard_board import ScorecardBoard

READ_ALL_ROLES = frozenset({"hr_admin", "hr_system", "programme_lead"})


@dataclass
class ScorecardView:
    scheme_id: str
    period: Period
    person_id: str
    version: int
    lines: list[dict[str, Any]]
    attainment: float
    payout: Decimal
    currency: str
    final: bool
    computed: datetime
    score: Score | None = None  # an open scorecard's: its lines (`lines` holds a frozen one's)
    # The API's message for it, built once: the board serves the same view many times.
    message: Any = field(default=None, compare=False, repr=False)


def authorize_read(caller: Identity, directory: Directory, person_id: str) -> None:
    """Employees see their own scorecards, managers their units', HR and programme leads all."""
    if _reads_all(caller, person_id):
        return
    if caller.person_id in directory.managers_of(person_id):
        return
    raise PermissionDenied(
        f"{caller.actor} may not read the scorecard of people/{person_id}: not their own and not in a unit they head",
        "OUTSIDE_MANAGED_SCOPE",
    )


def may_read(caller: Identity, directory: Directory, person_id: str) -> bool:
    try:
        authorize_read(caller, directory, person_id)
    except PermissionDenied:
        return False
    return True


def _open_view(
    scheme: SchemeState, period: Period, person_id: str, content: SchemeContent, result: Score
) -> ScorecardView:
    version, _ = scheme.version_for(period)
    return ScorecardView(
        scheme.row.id,
        period,
        person_id,
        version,
        [],
        result.attainment,
        result.payout,
        content.payout.currency,
        False,
        utcnow(),
        score=result,
    )


def _frozen_view(
    scheme: SchemeState, period: Period, frozen: ScorecardRow, explained: Score, currency: str
) -> ScorecardView:
    """The frozen numbers, each line with the events that made it."""
    why = {line["measure"]: line["contributions"] for line in messages.score_to_json(explained)}
    lines = [{**line, "contributions": why.get(line["measure"], [])} for line in frozen.lines]
    return ScorecardView(
        scheme.row.id,
        period,
        frozen.person_id,
        frozen.scheme_version,
        lines,
        frozen.attainment,
        Decimal(frozen.payout),
        currency,
        True,
        messages.aware(frozen.compute_time),
    )


async def _explained(
    s: AsyncSession, scheme: SchemeState, period: Period, units: Mapping[str, ProjectedOrgUnitRow], people: list[str]
) -> dict[str, Score]:
    _, content = scheme.version_for(period)
    conditions = counting_in(content, period, units, scheme.close_times())
    found = await contributions(s, content, period, conditions, people)
    return {p: score(content, found.get(p, [])) for p in people}


async def _in_scope(db: Database, person_id: str) -> set[str]:
    """Whose scorecards a person reads (see `authorize_read`): their own, and
    everyone in the units they head and below."""
    async with db.read() as s:
        units = await load_units(s)
        scope = subtree(units, [u.id for u in units.values() if u.manager_id == person_id])
        query = select(ProjectedPersonRow.id).where(col(ProjectedPersonRow.org_unit_id).in_(sorted(scope)))
        return set((await s.exec(query)).all()) | {person_id}


def _reads_all(caller: Identity, person_id: str) -> bool:
    return bool(caller.roles & READ_ALL_ROLES) or not caller.person_id or caller.person_id == person_id


async def get_scorecard(
    db: Database,
    schemes: SchemeCache,
    scheme_id: str,
    period_id: str,
    person_id: str,
    board: ScorecardBoard | None = None,
) -> ScorecardView:
    """The hot read: from the replica's board (open periods held in memory)
    when the caller may read anyone's; else the scheme from the cache, the
    directory only when the caller is a manager (whose scope it decides) or
    the scheme is limited to some units."""
    caller = current_identity()
    if board is not None and _reads_all(caller, person_id):
        held = await board.card(scheme_id, period_id, person_id)
        if held is not None:
            return held
    async with db.read() as s:
        scheme = await schemes.get(s, scheme_id)
        period = scheme.period(period_id)
        units: dict[str, ProjectedOrgUnitRow] = {}
        if not _reads_all(caller, person_id):
            directory = await load_directory(s, [person_id])
            authorize_read(caller, directory, person_id)
            units = directory.units
        _, content = scheme.version_for(period)
        if content.eligible_units and not units:
            units = await load_units(s)
        frozen = None
        if period_id in scheme.closed:
            frozen = await s.get(ScorecardRow, (scheme_id, period_id, person_id))
            if frozen is None:
                raise NotFound(f"people/{person_id} did not take part in period {period_id} of schemes/{scheme_id}")
        result = (await _explained(s, scheme, period, units, [person_id]))[person_id]
        if frozen is not None:
            return _frozen_view(scheme, period, frozen, result, content.payout.currency)
        return _open_view(scheme, period, person_id, content, result)


def open_card(scheme: SchemeState, period: Period, person_id: str, counted: Iterable[Contribution]) -> ScorecardView:
    """The open scorecard of a person's counted contributions (none: a scorecard of zero)."""
    _, content = scheme.version_for(period)
    return _open_view(scheme, period, person_id, content, score(content, counted))


async def open_cards(
    s: AsyncSession,
    scheme: SchemeState,
    period: Period,
    directory: Directory,
    people: list[str],
) -> dict[str, ScorecardView]:
    """The open period's scorecards of some people: those with counted events
    or who took part; another person has none."""
    _, content = scheme.version_for(period)
    conditions = counting_in(content, period, directory.units, scheme.close_times())
    found = await contributions(s, content, period, conditions, people)
    listed = (set(found) | {p for p in directory.people if directory.took_part_in(content, p, period)}) & set(people)
    return {p: _open_view(scheme, period, p, content, score(content, found.get(p, []))) for p in listed}


async def list_scorecards(
    db: Database, scheme_id: str, period_id: str, size: int, after: str | None, board: ScorecardBoard | None = None
) -> list[ScorecardView]:
    """A page of the period's scorecards the caller may read; only the page's are explained."""
    caller = current_identity()
    if board is not None:
        reads_all = bool(caller.roles & READ_ALL_ROLES) or not caller.person_id
        readable = None if reads_all else await _in_scope(db, caller.person_id or "")
        held = await board.page(scheme_id, period_id, size, after, readable)
        if held is not None:
            return held
    async with db.read() as s:
        scheme = await load_scheme(s, scheme_id)
        period = scheme.period(period_id, "parent")
        directory = await load_directory(s)
        _, content = scheme.version_for(period)
        frozen: dict[str, ScorecardRow] = {}
        if period_id in scheme.closed:
            cards = select(ScorecardRow).where(ScorecardRow.scheme_id == scheme_id, ScorecardRow.period_id == period_id)
            frozen = {f.person_id: f for f in (await s.exec(cards)).all()}
            people = set(frozen)
        else:
            conditions = counting_in(content, period, directory.units, scheme.close_times())
            credited = select(CreditRow.person_id).where(*conditions).distinct()
            people = set((await s.exec(credited)).all())
            people |= {p for p in directory.people if directory.took_part_in(content, p, period)}
        page = [p for p in sorted(people) if (after is None or p > after) and may_read(caller, directory, p)][:size]
        if not frozen:
            found = await open_cards(s, scheme, period, directory, page)
            return [found[p] for p in page]
        explained = await _explained(s, scheme, period, directory.units, page)
        return [_frozen_view(scheme, period, frozen[p], explained[p], content.payout.currency) for p in page]


# ---- team summaries -------------------------------------------------------------------


@dataclass
class TeamView:
    scheme_id: str
    period: Period
    unit_id: str
    version: int
    member_count: int
    minimum_group_size: int
    suppressed: bool
    average_attainment: float
    # (measure id, display name, average value, average attainment)
    measures: list[tuple[str, str, float, float]]


def _authorize_team(caller: Identity, directory: Directory, unit_id: str) -> None:
    if caller.roles & READ_ALL_ROLES or not caller.person_id:
        return
    if caller.person_id in directory.heads_of_unit(unit_id):
        return
    raise PermissionDenied(
        f"{caller.actor} may not read the summary of orgUnits/{unit_id}: they do not head it or a unit above it",
        "OUTSIDE_MANAGED_SCOPE",
    )


async def team_summary(db: Database, scheme_id: str, period_id: str, unit_id: str, minimum_group_size: int) -> TeamView:
    """The members' scorecards over the events credited to the team: each
    person's events count where the person belonged when they happened."""
    async with db.read() as s:
        scheme = await load_scheme(s, scheme_id)
        period = scheme.period(period_id)
        directory = await load_directory(s)
        if unit_id not in directory.units or directory.units[unit_id].deleted:
            raise NotFound(f"orgUnits/{unit_id} does not exist")
        _authorize_team(current_identity(), directory, unit_id)
        version, content = scheme.version_for(period)
        team = subtree(directory.units, [unit_id])
        conditions = [
            *counting_in(content, period, directory.units, scheme.close_times()),
            col(CreditRow.org_unit_id).in_(sorted(team)),
        ]
        earned = await totals(s, content, conditions)
        members = set(earned) | {
            p
            for p, person in directory.people.items()
            if person.org_unit_id in team and directory.took_part_in(content, p, period)
        }
        if not shown(len(members), minimum_group_size):
            return TeamView(scheme_id, period, unit_id, version, len(members), minimum_group_size, True, 0.0, [])
        scores = [score_totals(content, earned.get(p, {})) for p in members]
        n = len(scores)
        measures = [
            (
                m.id,
                m.display_name,
                sum(sc.lines[i].value for sc in scores) / n,
                sum(sc.lines[i].attainment for sc in scores) / n,
            )
            for i, m in enumerate(content.measures)
        ]
        average = sum(sc.attainment for sc in scores) / n
        return TeamView(scheme_id, period, unit_id, version, n, minimum_group_size, False, average, measures)
