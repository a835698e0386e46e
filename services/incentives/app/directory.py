"""The directory as projected from the roles service, and a scheme with its
versions and closed periods: what every scorecard, close and award needs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.domain.model import SchemeContent
from services.incentives.domain.periods import Period, parse_period
from services.incentives.store.tables import (
    PeriodRow,
    ProjectedAssignmentRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    SchemeRow,
    SchemeVersionRow,
)
from services.platform.errors import FailedPrecondition, NotFound
from services.platform.lookups import get_or_404


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

    def heads_of_unit(self, unit_id: str) -> set[str]:
        """Heads of the unit and of every unit above it."""
        return {h for u in self.ancestors(unit_id) if u in self.units and (h := self.units[u].manager_id)}

    def managers_of(self, person_id: str) -> set[str]:
        person = self.people.get(person_id)
        if person is None:
            return set()
        return self.heads_of_unit(person.org_unit_id) - {person_id}

    def took_part_in(self, content: SchemeContent, person_id: str, period: Period) -> bool:
        """Whether a person without counted events still gets a scorecard (of zero)."""
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


async def load_units(s: AsyncSession) -> dict[str, ProjectedOrgUnitRow]:
    return {u.id: u for u in (await s.exec(select(ProjectedOrgUnitRow))).all()}


async def load_directory(s: AsyncSession, people: Iterable[str] | None = None) -> Directory:
    """Every unit, and every person (or only those named) with their role holdings."""
    units = await load_units(s)
    person_query = select(ProjectedPersonRow)
    assignment_query = select(ProjectedAssignmentRow)
    if people is not None:
        wanted = sorted(set(people))
        person_query = person_query.where(col(ProjectedPersonRow.id).in_(wanted))
        assignment_query = assignment_query.where(col(ProjectedAssignmentRow.person_id).in_(wanted))
    found = {p.id: p for p in (await s.exec(person_query)).all()}
    holdings: dict[str, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
    for a in (await s.exec(assignment_query)).all():
        end = messages.aware(a.valid_to) if a.valid_to else None
        holdings[a.person_id].append((a.role_id, messages.aware(a.valid_from), end))
    return Directory(units, found, dict(holdings))


@dataclass
class SchemeState:
    row: SchemeRow
    versions: list[SchemeVersionRow]
    closed: dict[str, PeriodRow]
    # Published versions never change: each is parsed once.
    _contents: dict[int, SchemeContent] = field(default_factory=dict)

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
        if v.version not in self._contents:
            self._contents[v.version] = messages.content_from_json(v.content)
        return v.version, self._contents[v.version]

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


class SchemeCache:
    """Schemes as scorecard reads need them, kept between calls: one small
    query tells whether a scheme changed (its revision, its closed periods)
    since it was loaded, so a read costs that query instead of three and the
    parsing of every version. Each replica keeps its own; nothing is shared."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[tuple[int, int], SchemeState]] = {}

    async def get(self, s: AsyncSession, scheme_id: str) -> SchemeState:
        closed = select(sa.func.count()).where(PeriodRow.scheme_id == scheme_id).scalar_subquery()
        found = (await s.execute(select(SchemeRow.revision, closed).where(SchemeRow.id == scheme_id))).first()
        if found is None:
            raise NotFound(f"schemes/{scheme_id} does not exist")
        key = (int(found[0]), int(found[1]))
        held = self._held.get(scheme_id)
        if held is not None and held[0] == key:
            return held[1]
        state = await load_scheme(s, scheme_id)
        self._held[scheme_id] = (key, state)
        return state
