"""Where a person belonged when a behaviour happened, from the projection's
history of their org unit: credits keep that unit (and its line of business)
however the person moves later."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.store.tables import CreditRow, ProjectedOrgUnitRow, ProjectedPersonUnitRow

# The first known unit of a person holds from the beginning: events recorded
# before the person reached Engage still belong somewhere.
BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)
LINE_OF_BUSINESS = "LINE_OF_BUSINESS"
CHUNK = 5000  # drivers cap the parameters of one statement (SQLite 3.32+ and PostgreSQL: 32,766)


def _start(span: tuple[datetime, str]) -> datetime:
    return span[0]


@dataclass
class Attribution:
    history: dict[str, list[tuple[datetime, str]]]  # person -> [(valid_from, unit)] ascending
    units: dict[str, ProjectedOrgUnitRow]
    _lobs: dict[str, str] = field(default_factory=dict)

    def unit_at(self, person_id: str, at: datetime) -> str:
        spans = self.history.get(person_id)
        if not spans:
            return ""
        if len(spans) == 1:  # most people: no list to build and search per credit
            return spans[0][1]
        i = bisect.bisect_right(spans, at, key=_start) - 1
        return spans[max(i, 0)][1]

    def line_of_business(self, unit_id: str) -> str:
        if unit_id not in self._lobs:
            self._lobs[unit_id] = self._walk_up(unit_id)
        return self._lobs[unit_id]

    def _walk_up(self, unit_id: str) -> str:
        current: str | None = unit_id
        for _ in range(100):  # a guard against a cycle in a half-projected tree
            unit = self.units.get(current or "")
            if unit is None:
                return ""
            if unit.kind == LINE_OF_BUSINESS:
                return unit.id
            current = unit.parent_id
        return ""


async def load_attribution(s: AsyncSession, people: Iterable[str]) -> Attribution:
    wanted = sorted(set(people))
    history: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for start in range(0, len(wanted), CHUNK):
        h = ProjectedPersonUnitRow
        rows = await s.exec(
            select(h.person_id, h.valid_from, h.org_unit_id)  # columns, not ORM rows: batches are large
            .where(col(h.person_id).in_(wanted[start : start + CHUNK]))
            .order_by(col(h.person_id), col(h.valid_from))
        )
        for person, since, unit in rows.all():
            history[person].append((messages.aware(since), unit))
    units = {u.id: u for u in (await s.exec(select(ProjectedOrgUnitRow))).all()}
    return Attribution(dict(history), units)


async def record_move(s: AsyncSession, person_id: str, unit_id: str, since: datetime | None) -> None:
    """The person belongs to `unit_id` from `since` (None: from the beginning).
    Credits of behaviours from then on that were accepted before this news
    arrived move to the new unit too."""
    start = since or BEGINNING
    row = await s.get(ProjectedPersonUnitRow, (person_id, start))
    s.add(ProjectedPersonUnitRow(person_id=person_id, valid_from=start, org_unit_id=unit_id) if row is None else row)
    if row is not None:
        row.org_unit_id = unit_id
    if since is None:
        return
    await s.flush()
    attribution = await load_attribution(s, [person_id])
    await s.execute(
        sa.update(CreditRow)
        .where(col(CreditRow.person_id) == person_id, col(CreditRow.occurred_at) >= start)
        .values(org_unit_id=unit_id, line_of_business_id=attribution.line_of_business(unit_id))
    )
