"""The period calendar: months or quarters starting at local midnight in the
scheme's IANA time zone, and where a late event settles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.incentives.domain.model import Calendar, PeriodKind
from services.platform.errors import invalid

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q(\d)$")


@dataclass(frozen=True, order=True)
class Period:
    start: datetime  # inclusive, aware UTC
    end: datetime  # exclusive, aware UTC
    id: str  # `2025-01` or `2025-Q1`


def _first_month(kind: PeriodKind, month: int) -> int:
    return month if kind == PeriodKind.MONTH else 3 * ((month - 1) // 3) + 1


def _period_from(calendar: Calendar, year: int, first_month: int) -> Period:
    span = 1 if calendar.period_kind == PeriodKind.MONTH else 3
    end_month = first_month + span
    end_year = year + (end_month - 1) // 12
    end_month = (end_month - 1) % 12 + 1
    zone = calendar.zone
    start = datetime(year, first_month, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(end_year, end_month, 1, tzinfo=zone).astimezone(UTC)
    if calendar.period_kind == PeriodKind.MONTH:
        pid = f"{year:04d}-{first_month:02d}"
    else:
        pid = f"{year:04d}-Q{(first_month - 1) // 3 + 1}"
    return Period(start, end, pid)


def period_containing(at: datetime, calendar: Calendar) -> Period:
    """The period an instant falls in, judged by the local date in the scheme's zone."""
    local = at.astimezone(calendar.zone)
    return _period_from(calendar, local.year, _first_month(calendar.period_kind, local.month))


def parse_period(period_id: str, calendar: Calendar, field: str = "name") -> Period:
    """A period id of the scheme's calendar, or INVALID_ARGUMENT naming `field`."""
    if calendar.period_kind == PeriodKind.MONTH:
        m = _MONTH.match(period_id)
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
            raise invalid(field, f"period {period_id!r} does not exist: monthly periods are YYYY-MM, e.g. 2025-01")
        return _period_from(calendar, int(m.group(1)), int(m.group(2)))
    m = _QUARTER.match(period_id)
    if not m or not 1 <= int(m.group(2)) <= 4 or int(m.group(1)) < 1900:
        raise invalid(field, f"period {period_id!r} does not exist: quarterly periods are YYYY-Qn, e.g. 2025-Q1")
    return _period_from(calendar, int(m.group(1)), 3 * (int(m.group(2)) - 1) + 1)


def next_period(period: Period, calendar: Calendar) -> Period:
    return period_containing(period.end, calendar)


def period_starting(day: date, calendar: Calendar, field: str) -> Period:
    """The period that starts on `day`; INVALID_ARGUMENT if none does."""
    if day.day != 1 or _first_month(calendar.period_kind, day.month) != day.month:
        kind = "month" if calendar.period_kind == PeriodKind.MONTH else "quarter"
        raise invalid(field, f"{day.isoformat()} is not the first day of a {kind}")
    return _period_from(calendar, day.year, day.month)


def parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise invalid(field, f"must be a date YYYY-MM-DD, got {text!r}") from exc


def settlement_period(
    occurred: Period, accepted_at: datetime, closed_at: Mapping[str, datetime], calendar: Calendar
) -> Period:
    """Where an event counts: its own period, unless that was already closed
    when the event was accepted; then the first later period still open at
    that time (a late event is an adjustment there, never an edit of a
    settled period)."""
    period = occurred
    for _ in range(1200):  # a century of months: a guard, never reached in practice
        closed = closed_at.get(period.id)
        if closed is None or accepted_at < closed:
            return period
        period = next_period(period, calendar)
    return period


@dataclass(frozen=True)
class Window:
    """Credits that occurred in [occurred_from, occurred_to) and were accepted
    in [accepted_from, accepted_to) (None: unbounded) settle in one period."""

    occurred_from: datetime
    occurred_to: datetime
    accepted_from: datetime | None
    accepted_to: datetime | None
    late_from_period: str  # "" for the period's own events


def settlement_windows(period: Period, closed_at: Mapping[str, datetime], calendar: Calendar) -> list[Window]:
    """Where `settlement_period` puts a credit, as ranges a query can select:
    the period's own events accepted before its close (if closed), and for
    each earlier closed period Q whose successors up to `period` were all
    closed, the events of Q accepted after every one of those closes."""
    own_close = closed_at.get(period.id)
    windows = [Window(period.start, period.end, None, own_close, "")]
    earlier = sorted((pid for pid in closed_at if pid < period.id), reverse=True)
    later_close: datetime | None = None  # latest close among the periods between Q and `period`
    expected = period
    for pid in earlier:
        q = parse_period(pid, calendar)
        if next_period(q, calendar) != expected:
            break  # an open period in between catches Q's late events
        q_close = closed_at[pid]
        later_close = q_close if later_close is None else max(later_close, q_close)
        windows.append(Window(q.start, q.end, later_close, own_close, pid))
        expected = q
    return windows
