"""What counts in a period, as queries over the credit rows.

Settlement (an event counts in its own period unless that was closed when it
was accepted) and eligibility (the person held an eligible role when the
behaviour happened, in an eligible unit as they belonged then) are SQL
conditions, so a period close aggregates a million credits in the database
(`totals`) and a scorecard reads only its person's credits
(`contributions`), both through the indexes on `occurred_at`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives import messages
from services.incentives.domain.model import Aggregation, CreditSplit, SchemeContent
from services.incentives.domain.periods import Period, Window, period_containing, settlement_windows
from services.incentives.domain.scoring import Contribution, Totals
from services.incentives.store.tables import CreditRow, ProjectedAssignmentRow, ProjectedOrgUnitRow

C = CreditRow


def subtree(units: Mapping[str, ProjectedOrgUnitRow], roots: Iterable[str]) -> set[str]:
    """The units and every unit below them."""
    children: dict[str, list[str]] = defaultdict(list)
    for u in units.values():
        if u.parent_id:
            children[u.parent_id].append(u.id)
    found: set[str] = set()
    stack = list(roots)
    while stack:
        unit = stack.pop()
        if unit not in found:
            found.add(unit)
            stack.extend(children.get(unit, []))
    return found


def _window(w: Window, by_event: bool) -> Any:
    occurred: Any = col(C.occurred_at)
    accepted: Any = col(C.accepted_at)
    if by_event:  # the same values, but no index on times for the planner to prefer to the events' ids
        occurred, accepted = sa.func.coalesce(occurred, occurred), sa.func.coalesce(accepted, accepted)
    terms = [occurred >= w.occurred_from, occurred < w.occurred_to]
    if w.accepted_from is not None:
        terms.append(accepted >= w.accepted_from)
    if w.accepted_to is not None:
        terms.append(accepted < w.accepted_to)
    return sa.and_(*terms)


def counting_in(
    content: SchemeContent,
    period: Period,
    units: Mapping[str, ProjectedOrgUnitRow],
    close_times: Mapping[str, datetime] | None,
    *,
    by_event: bool = False,
) -> list[Any]:
    """Conditions on credit rows that count in `period` under `content`.
    `close_times` None (a simulation): every event in the period it occurred in.
    `by_event`: for a query that also names the events (a few thousand ids),
    which the primary key finds faster than a period's range of times."""
    windows = (
        settlement_windows(period, close_times, content.calendar)
        if close_times is not None
        else [Window(period.start, period.end, None, None, "")]
    )
    conditions = [
        sa.or_(*(_window(w, by_event) for w in windows)),
        col(C.behaviour_type_id).in_(sorted(content.behaviour_types())),
    ]
    if content.eligible_units:
        conditions.append(col(C.org_unit_id).in_(sorted(subtree(units, content.eligible_units))))
    if content.eligible_roles:
        a = ProjectedAssignmentRow
        conditions.append(
            sa.exists().where(
                col(a.person_id) == col(C.person_id),
                col(a.role_id).in_(sorted(content.eligible_roles)),
                col(a.valid_from) <= col(C.occurred_at),
                sa.or_(col(a.valid_to).is_(None), col(a.valid_to) > col(C.occurred_at)),
            )
        )
    return conditions


async def contributions(
    s: AsyncSession,
    content: SchemeContent,
    period: Period,
    conditions: list[Any],
    people: Iterable[str] | None,
    events: Iterable[str] | None = None,
) -> dict[str, list[Contribution]]:
    """The counted credits of some people (None: everyone's), of some events
    (None: all), each explained."""
    result: dict[str, list[Contribution]] = defaultdict(list)
    where = list(conditions)
    for column, wanted in ((C.person_id, people), (C.event_id, events)):
        if wanted is not None:
            listed = sorted(set(wanted))
            if not listed:
                return result
            where.append(col(column).in_(listed))
    # Columns, not ORM rows: a closed period's scorecard explains a hundred events or more.
    query = sa.select(
        col(C.event_id), col(C.person_id), col(C.behaviour_type_id), col(C.occurred_at), col(C.value),
        col(C.share), col(C.collaborators), col(C.departments),
    ).where(*where)  # fmt: skip
    for event_id, person, kind, at, value, share, collaborators, departments in (await s.execute(query)).all():
        occurred = messages.aware(at)
        # Most credits occurred in the period itself; only a late one needs its own period found.
        late = "" if period.start <= occurred < period.end else period_containing(occurred, content.calendar).id
        result[person].append(
            Contribution(
                event_id=event_id,
                behaviour_type=kind,
                occurred_at=occurred,
                value=value,
                share=share,
                collaborators=frozenset(collaborators),
                departments=frozenset(departments),
                late_from_period=late,
            )
        )
    return result


async def totals(
    s: AsyncSession, content: SchemeContent, conditions: list[Any], people: Iterable[str] | None = None
) -> dict[str, dict[str, Totals]]:
    """Per person and measure id, what the measures aggregate, summed in the database."""
    overlay = content.credit_split == CreditSplit.OVERLAY
    by_type: dict[str, list[str]] = defaultdict(list)
    for m in content.measures:
        for b in m.behaviour_types:
            by_type[b].append(m.id)
    where = list(conditions)
    if people is not None:
        where.append(col(C.person_id).in_(sorted(set(people))))
    share = sa.func.count() if overlay else sa.func.sum(C.share)
    value = sa.func.sum(C.value) if overlay else sa.func.sum(col(C.value) * col(C.share))
    query = select(C.person_id, C.behaviour_type_id, share, value).where(*where)
    raw: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for person, kind, share_sum, value_sum in (await s.exec(query.group_by(C.person_id, C.behaviour_type_id))).all():
        for measure_id in by_type.get(kind, []):
            acc = raw[person][measure_id]
            acc[0] += float(share_sum or 0)
            acc[1] += float(value_sum or 0)
    distinct = await _distinct(s, content, where)
    result: dict[str, dict[str, Totals]] = {}
    for person in set(raw) | set(distinct):
        result[person] = {
            m.id: Totals(raw[person][m.id][0], raw[person][m.id][1], distinct.get(person, {}).get(m.id, 0))
            for m in content.measures
        }
    return result


async def _distinct(s: AsyncSession, content: SchemeContent, where: list[Any]) -> dict[str, dict[str, int]]:
    """Distinct collaborators or departments per person and measure: from the
    credits' lists, read only for the measures that need them."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for m in content.measures:
        if m.aggregation not in (Aggregation.DISTINCT_COLLABORATORS, Aggregation.DISTINCT_DEPARTMENTS):
            continue
        column = C.collaborators if m.aggregation == Aggregation.DISTINCT_COLLABORATORS else C.departments
        query = select(C.person_id, column).where(*where, col(C.behaviour_type_id).in_(m.behaviour_types))
        seen: dict[str, set[str]] = defaultdict(set)
        for person, listed in (await s.exec(query)).all():
            seen[person].update(listed)
        for person, union in seen.items():
            found[person][m.id] = len(union)
    return found
