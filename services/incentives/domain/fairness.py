"""Fairness and privacy rules: peer recognition budgets, reciprocal pairs,
and the smallest group whose numbers may be shown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from services.platform.errors import invalid

# Two people "mostly recognise each other" when each gave the other at least
# this many recognitions in a month ...
MIN_MUTUAL_RECOGNITIONS = 3
# ... and those were at least this part of all each of them gave.
MIN_MUTUAL_SHARE = 0.5

DEFAULT_MINIMUM_GROUP_SIZE = 5


def recognition_month(at: datetime) -> str:
    """Recognition budgets run per calendar month in UTC, whatever a scheme's zone."""
    return at.astimezone(UTC).strftime("%Y-%m")


def month_bounds(month: str, field: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` as [start, end) in UTC, or INVALID_ARGUMENT naming `field`."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise invalid(field, f"must be a month YYYY-MM, got {month!r}") from exc
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def self_recognition(givers: list[str], recipient: str | None) -> bool:
    return recipient is not None and recipient in givers


def over_budget(already_given: int, budget: int) -> bool:
    """Whether one more recognition exceeds the giver's monthly budget (0: none)."""
    return budget > 0 and already_given >= budget


@dataclass(frozen=True)
class ReciprocalPair:
    person_a: str
    person_b: str
    a_to_b: int
    b_to_a: int
    a_given: int
    b_given: int


def reciprocal_pairs(given: Mapping[tuple[str, str], int]) -> list[ReciprocalPair]:
    """Pairs who mostly recognise each other, from counts per (giver, recipient);
    the largest exchanges first."""
    total: Counter[str] = Counter()
    for (giver, _), n in given.items():
        total[giver] += n
    pairs = []
    for (a, b), a_to_b in given.items():
        if a >= b:
            continue
        b_to_a = given.get((b, a), 0)
        if min(a_to_b, b_to_a) < MIN_MUTUAL_RECOGNITIONS:
            continue
        if a_to_b < MIN_MUTUAL_SHARE * total[a] or b_to_a < MIN_MUTUAL_SHARE * total[b]:
            continue
        pairs.append(ReciprocalPair(a, b, a_to_b, b_to_a, total[a], total[b]))
    return sorted(pairs, key=lambda p: (-(p.a_to_b + p.b_to_a), p.person_a, p.person_b))


def shown(member_count: int, minimum_group_size: int) -> bool:
    """A group's numbers are shown only from the minimum size on: below it,
    they would tell about individuals."""
    return member_count >= max(1, minimum_group_size)
