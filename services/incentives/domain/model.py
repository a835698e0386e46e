"""The vocabulary of the incentives service and the checks on a scheme."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.platform.errors import FieldViolation, InvalidArgument


class BehaviourCategory(StrEnum):
    TEAMING = "TEAMING"
    KNOWLEDGE_SHARING = "KNOWLEDGE_SHARING"
    CROSS_BOUNDARY_PROBLEM_SOLVING = "CROSS_BOUNDARY_PROBLEM_SOLVING"
    NETWORKING = "NETWORKING"
    INTERNAL_CUSTOMER_SERVICE = "INTERNAL_CUSTOMER_SERVICE"
    CUSTOMER_OUTCOME = "CUSTOMER_OUTCOME"
    LEARNING = "LEARNING"


class EventState(StrEnum):
    ACCEPTED = "ACCEPTED"
    PARKED = "PARKED"


class ParkReason(StrEnum):
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    UNKNOWN_BEHAVIOUR_TYPE = "UNKNOWN_BEHAVIOUR_TYPE"
    SELF_RECOGNITION = "SELF_RECOGNITION"
    RECOGNITION_BUDGET_EXCEEDED = "RECOGNITION_BUDGET_EXCEEDED"


class PeriodKind(StrEnum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"


class Aggregation(StrEnum):
    COUNT = "COUNT"
    SUM = "SUM"
    AVERAGE = "AVERAGE"
    DISTINCT_COLLABORATORS = "DISTINCT_COLLABORATORS"
    DISTINCT_DEPARTMENTS = "DISTINCT_DEPARTMENTS"


class CreditSplit(StrEnum):
    SHARED = "SHARED"  # shares add up to 100%
    OVERLAY = "OVERLAY"  # everyone credited gets full credit


class SchemeState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"


class AwardState(StrEnum):
    PROPOSED = "PROPOSED"
    APPROVED = "APPROVED"


@dataclass(frozen=True)
class Calendar:
    period_kind: PeriodKind
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class Measure:
    id: str
    display_name: str
    behaviour_types: tuple[str, ...]  # behaviour type ids
    aggregation: Aggregation
    weight: float  # percent
    target: float
    cap: float | None = None  # largest attainment, e.g. 1.5


@dataclass(frozen=True)
class Tier:
    from_attainment: float
    rate: float


@dataclass(frozen=True)
class PayoutCurve:
    currency: str  # ISO 4217, or "" for points
    target_payout: float
    tiers: tuple[Tier, ...]
    threshold: float = 0.0
    cap_attainment: float | None = None
    max_payout: float | None = None

    @property
    def is_money(self) -> bool:
        return bool(self.currency)


@dataclass(frozen=True)
class SchemeContent:
    """What a scheme version says; published versions never change."""

    display_name: str
    description: str
    calendar: Calendar
    measures: tuple[Measure, ...]
    payout: PayoutCurve
    credit_split: CreditSplit = CreditSplit.SHARED
    eligible_roles: tuple[str, ...] = ()  # role ids; empty: any role
    eligible_units: tuple[str, ...] = ()  # org unit ids, each with its subtree; empty: anywhere
    budget: float = 0.0  # per period, in the payout's unit; 0: none

    def behaviour_types(self) -> set[str]:
        return {b for m in self.measures for b in m.behaviour_types}


@dataclass
class _Problems:
    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))


WEIGHT_TOLERANCE = 1e-6


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def validate_scheme(content: SchemeContent, known_behaviours: set[str], prefix: str = "scheme") -> None:
    """Raises INVALID_ARGUMENT naming every offending field."""
    p = _Problems()
    try:
        ZoneInfo(content.calendar.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        p.add(f"{prefix}.calendar.time_zone", f"{content.calendar.time_zone!r} is not an IANA time zone")
    if not content.measures:
        p.add(f"{prefix}.measures", "at least one measure is required")
    seen: set[str] = set()
    for i, m in enumerate(content.measures):
        path = f"{prefix}.measures[{i}]"
        if m.id in seen:
            p.add(f"{path}.id", f"measure {m.id!r} appears twice")
        seen.add(m.id)
        if not m.behaviour_types:
            p.add(f"{path}.behaviour_types", "at least one behaviour type is required")
        for b in m.behaviour_types:
            if b not in known_behaviours:
                p.add(f"{path}.behaviour_types", f"behaviourTypes/{b} does not exist")
        if not _finite(m.weight) or m.weight <= 0 or m.weight > 100:
            p.add(f"{path}.weight", "must be above 0 and at most 100 (percent)")
        if not _finite(m.target) or m.target <= 0:
            p.add(f"{path}.target", "must be above 0")
        if m.cap is not None and (not _finite(m.cap) or m.cap <= 0):
            p.add(f"{path}.cap", "must be above 0 (e.g. 1.5 for 150%) or unset")
    total = sum(m.weight for m in content.measures)
    if content.measures and abs(total - 100.0) > WEIGHT_TOLERANCE:
        p.add(f"{prefix}.measures", f"weights must add up to 100, they add up to {total:g}")
    curve = content.payout
    cpath = f"{prefix}.payout"
    if curve.currency and (len(curve.currency) != 3 or not curve.currency.isalpha() or not curve.currency.isupper()):
        p.add(f"{cpath}.currency_code", "must be a 3-letter ISO 4217 code such as EUR, or empty for points")
    if not _finite(curve.target_payout) or curve.target_payout <= 0:
        p.add(f"{cpath}.target_payout", "must be above 0")
    if not _finite(curve.threshold) or curve.threshold < 0:
        p.add(f"{cpath}.threshold", "must not be negative")
    if not curve.tiers:
        p.add(f"{cpath}.tiers", "at least one tier is required")
    elif curve.tiers[0].from_attainment != 0:
        p.add(f"{cpath}.tiers[0].from_attainment", "the first tier must start at 0")
    for i, t in enumerate(curve.tiers):
        if not _finite(t.rate) or t.rate < 0:
            p.add(f"{cpath}.tiers[{i}].rate", "must not be negative")
        if i and not t.from_attainment > curve.tiers[i - 1].from_attainment:
            p.add(
                f"{cpath}.tiers[{i}].from_attainment",
                "tiers overlap: each tier must start above the previous one "
                f"({t.from_attainment:g} <= {curve.tiers[i - 1].from_attainment:g})",
            )
    if curve.cap_attainment is not None and (not _finite(curve.cap_attainment) or curve.cap_attainment <= 0):
        p.add(f"{cpath}.cap_attainment", "must be above 0 or unset")
    if curve.cap_attainment is not None and curve.cap_attainment < curve.threshold:
        p.add(f"{cpath}.cap_attainment", "must not be below the threshold")
    if curve.max_payout is not None and (not _finite(curve.max_payout) or curve.max_payout <= 0):
        p.add(f"{cpath}.max_payout", "must be above 0 or unset")
    if not _finite(content.budget) or content.budget < 0:
        p.add(f"{prefix}.budget", "must not be negative")
    if p.violations:
        first = p.violations[0]
        raise InvalidArgument(f"{first.field}: {first.description}", *p.violations)
