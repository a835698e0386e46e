"""Scorecards as pure functions: aggregation, attainment and payout.

A person's contributions (events credited to them, with their share) are
aggregated per measure; each measure's attainment is value / target, capped;
the scorecard's attainment is the weighted sum; the payout curve turns it into
an amount. Every number keeps the events it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from services.incentives.domain.credits import applied_share
from services.incentives.domain.model import Aggregation, CreditSplit, Measure, PayoutCurve, SchemeContent

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Contribution:
    """One accepted event credited to the person."""

    event_id: str
    behaviour_type: str
    occurred_at: datetime
    value: float
    share: float  # the person's normalised share of the event (0..1]
    collaborators: frozenset[str] = frozenset()  # other people credited
    departments: frozenset[str] = frozenset()  # org units reached, other than the person's own
    late_from_period: str = ""  # the closed period it occurred in, when it counts late


@dataclass(frozen=True)
class Counted:
    """A contribution as a measure counted it: with the share the scheme applies."""

    contribution: Contribution
    share: float


@dataclass(frozen=True)
class Line:
    measure: Measure
    value: float
    attainment: float
    weighted_attainment: float
    counted: tuple[Counted, ...]


@dataclass(frozen=True)
class Score:
    lines: tuple[Line, ...]
    attainment: float
    payout: Decimal


@dataclass(frozen=True)
class Totals:
    """What a measure needs of a person's counted contributions: enough to
    aggregate without the events themselves (a period close sums these in
    the database)."""

    share: float = 0.0  # sum of the applied shares
    value: float = 0.0  # sum of value x applied share
    distinct: int = 0  # distinct collaborators or departments, per the aggregation


def totals_of(aggregation: Aggregation, counted: Sequence[Counted]) -> Totals:
    if aggregation == Aggregation.DISTINCT_COLLABORATORS:
        distinct = len(frozenset().union(*(c.contribution.collaborators for c in counted)))
    elif aggregation == Aggregation.DISTINCT_DEPARTMENTS:
        distinct = len(frozenset().union(*(c.contribution.departments for c in counted)))
    else:
        distinct = 0
    return Totals(sum(c.share for c in counted), sum(c.contribution.value * c.share for c in counted), distinct)


def measure_value(aggregation: Aggregation, t: Totals) -> float:
    if aggregation == Aggregation.COUNT:
        return t.share
    if aggregation == Aggregation.SUM:
        return t.value
    if aggregation == Aggregation.AVERAGE:
        return t.value / t.share if t.share > 0 else 0.0
    if aggregation in (Aggregation.DISTINCT_COLLABORATORS, Aggregation.DISTINCT_DEPARTMENTS):
        return float(t.distinct)
    raise ValueError(f"unknown aggregation {aggregation}")


def aggregate(aggregation: Aggregation, counted: Sequence[Counted]) -> float:
    return measure_value(aggregation, totals_of(aggregation, counted))


def measure_attainment(value: float, target: float, cap: float | None) -> float:
    attainment = max(0.0, value / target)
    return min(attainment, cap) if cap is not None else attainment


def payout_factor(attainment: float, curve: PayoutCurve) -> float:
    """Multiple of the target payout that an attainment earns: zero below the
    threshold, else the area under the tiers up to the (capped) attainment."""
    if attainment < curve.threshold or attainment <= 0:
        return 0.0
    a = min(attainment, curve.cap_attainment) if curve.cap_attainment is not None else attainment
    factor = 0.0
    for i, tier in enumerate(curve.tiers):
        upper = curve.tiers[i + 1].from_attainment if i + 1 < len(curve.tiers) else a
        span = min(a, upper) - tier.from_attainment
        if span <= 0:
            break
        factor += span * tier.rate
    return factor


def payout_amount(attainment: float, curve: PayoutCurve) -> Decimal:
    """Rounded to cents (or hundredths of a point), half up; capped at `max_payout`."""
    raw = Decimal(repr(curve.target_payout)) * Decimal(repr(payout_factor(attainment, curve)))
    if curve.max_payout is not None:
        raw = min(raw, Decimal(repr(curve.max_payout)))
    return raw.quantize(CENT, rounding=ROUND_HALF_UP)


def score(content: SchemeContent, contributions: Iterable[Contribution]) -> Score:
    """A person's scorecard under one scheme version."""
    items = sorted(contributions, key=lambda c: (c.occurred_at, c.event_id))
    measured = []
    for measure in content.measures:
        kinds = set(measure.behaviour_types)
        counted = tuple(
            Counted(c, applied_share(c.share, content.credit_split)) for c in items if c.behaviour_type in kinds
        )
        measured.append((measure, aggregate(measure.aggregation, counted), counted))
    return _assemble(content, measured)


def score_totals(content: SchemeContent, totals: Mapping[str, Totals]) -> Score:
    """The same scorecard from each measure's totals (by measure id), without
    the events: what a period close computes for thousands of people."""
    return _assemble(
        content, [(m, measure_value(m.aggregation, totals.get(m.id, Totals())), ()) for m in content.measures]
    )


def _assemble(content: SchemeContent, measured: Sequence[tuple[Measure, float, tuple[Counted, ...]]]) -> Score:
    lines = []
    for measure, value, counted in measured:
        attainment = measure_attainment(value, measure.target, measure.cap)
        lines.append(Line(measure, value, attainment, attainment * measure.weight / 100.0, counted))
    total = sum(line.weighted_attainment for line in lines)
    return Score(tuple(lines), total, payout_amount(total, content.payout))


def total_payout(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, Decimal(0)).quantize(CENT)


def within_budget(total: Decimal, budget: float) -> bool:
    return budget <= 0 or total <= Decimal(repr(budget))


__all__ = [
    "Aggregation",
    "Contribution",
    "Counted",
    "CreditSplit",
    "Line",
    "Score",
    "aggregate",
    "measure_attainment",
    "payout_amount",
    "payout_factor",
    "score",
    "score_totals",
]
