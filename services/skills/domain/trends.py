"""A team's level in a skill over time, from daily snapshots.

Each person's snapshots are (day, org unit, level) rows, oldest first; on a
given day a person stands at their newest row on or before it, and counts for
the team when that row's unit is one of the team's and the level is above 0.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.skills.domain.model import normalized_value

Snapshot = tuple[date, str, int]  # day, org unit, level


@dataclass(frozen=True)
class TrendPoint:
    day: date
    people: int
    average_level: float
    average_normalized: float
    level_counts: tuple[int, ...]  # index i: people at ordinal i + 1


def trend_days(start: date, end: date, interval_days: int) -> list[date]:
    """Every `interval_days` back from `end` while on or after `start`, oldest first."""
    days = []
    day = end
    while day >= start:
        days.append(day)
        day -= timedelta(days=interval_days)
    return days[::-1]


def trend_points(
    history: Mapping[str, Sequence[Snapshot]], days: Sequence[date], team: Container[str], top: int
) -> list[TrendPoint]:
    points = []
    for day in days:
        levels = []
        for rows in history.values():
            at = bisect_right(rows, day, key=lambda r: r[0])
            if at and rows[at - 1][1] in team and rows[at - 1][2] > 0:
                levels.append(rows[at - 1][2])
        counts = [0] * max(top, max(levels, default=0))
        for level in levels:
            counts[level - 1] += 1
        average = sum(levels) / len(levels) if levels else 0.0
        normalized = sum(normalized_value(lv, top) for lv in levels) / len(levels) if levels else 0.0
        points.append(TrendPoint(day, len(levels), round(average, 4), round(normalized, 2), tuple(counts)))
    return points
