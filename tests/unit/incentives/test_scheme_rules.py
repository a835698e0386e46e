"""Scheme validation and the period calendar."""

from datetime import UTC, date, datetime

import pytest

from services.incentives.domain.model import (
    Aggregation,
    Calendar,
    Measure,
    PayoutCurve,
    PeriodKind,
    SchemeContent,
    Tier,
    validate_scheme,
)
from services.incentives.domain.periods import (
    parse_period,
    period_containing,
    period_starting,
    settlement_period,
)
from services.platform.errors import InvalidArgument

MONTHLY = Calendar(PeriodKind.MONTH, "Europe/Amsterdam")
QUARTERLY = Calendar(PeriodKind.QUARTER, "America/New_York")


def scheme(**changes) -> SchemeContent:
    values = dict(
        display_name="s",
        description="",
        calendar=MONTHLY,
        measures=(
            Measure("a", "A", ("case",), Aggregation.COUNT, 60, 5),
            Measure("b", "B", ("csat",), Aggregation.AVERAGE, 40, 4),
        ),
        payout=PayoutCurve("EUR", 500, (Tier(0, 1), Tier(1, 1.5))),
    )
    values.update(changes)
    return SchemeContent(**values)


def fields(content: SchemeContent) -> list[str]:
    with pytest.raises(InvalidArgument) as info:
        validate_scheme(content, {"case", "csat"})
    return [v.field for v in info.value.violations]


def test_a_sound_scheme_passes():
    validate_scheme(scheme(), {"case", "csat"})


def test_weights_that_do_not_add_up_name_the_measures():
    bad = scheme(measures=(Measure("a", "A", ("case",), Aggregation.COUNT, 70, 5),))
    assert fields(bad) == ["scheme.measures"]


def test_overlapping_tiers_name_the_tier():
    bad = scheme(payout=PayoutCurve("EUR", 500, (Tier(0, 1), Tier(1.2, 2), Tier(1.2, 3))))
    assert fields(bad) == ["scheme.payout.tiers[2].from_attainment"]


def test_unknown_zone_behaviour_and_bad_numbers_are_each_reported():
    bad = scheme(
        calendar=Calendar(PeriodKind.MONTH, "Mars/Olympus"),
        measures=(
            Measure("a", "A", ("nope",), Aggregation.COUNT, 60, 0),
            Measure("a", "B", ("csat",), Aggregation.AVERAGE, 40, 4),
        ),
        payout=PayoutCurve("euro", 500, (Tier(0.5, 1),)),
    )
    assert fields(bad) == [
        "scheme.calendar.time_zone",
        "scheme.measures[0].behaviour_types",
        "scheme.measures[0].target",
        "scheme.measures[1].id",
        "scheme.payout.currency_code",
        "scheme.payout.tiers[0].from_attainment",
    ]


def test_months_start_at_local_midnight_in_the_schemes_zone():
    jan = parse_period("2025-01", MONTHLY)
    assert jan.start == datetime(2024, 12, 31, 23, 0, tzinfo=UTC)
    assert jan.end == datetime(2025, 1, 31, 23, 0, tzinfo=UTC)
    # 23:30 UTC on 31 January is already February in Amsterdam.
    assert period_containing(datetime(2025, 1, 31, 23, 30, tzinfo=UTC), MONTHLY).id == "2025-02"
    # Daylight saving: March ends at 22:00 UTC.
    assert parse_period("2025-03", MONTHLY).end == datetime(2025, 3, 31, 22, 0, tzinfo=UTC)


def test_quarters_and_their_ids():
    q4 = parse_period("2024-Q4", QUARTERLY)
    assert q4.start == datetime(2024, 10, 1, 4, 0, tzinfo=UTC)
    assert q4.end == datetime(2025, 1, 1, 5, 0, tzinfo=UTC)
    assert period_containing(datetime(2025, 2, 14, tzinfo=UTC), QUARTERLY).id == "2025-Q1"


@pytest.mark.parametrize(("pid", "calendar"), [("2025-13", MONTHLY), ("2025-Q1", MONTHLY), ("2025-Q5", QUARTERLY)])
def test_a_period_that_does_not_exist_is_refused(pid, calendar):
    with pytest.raises(InvalidArgument) as info:
        parse_period(pid, calendar)
    assert "does not exist" in str(info.value)


def test_versions_start_on_the_first_day_of_a_period():
    assert period_starting(date(2025, 4, 1), QUARTERLY, "effective_from").id == "2025-Q2"
    with pytest.raises(InvalidArgument):
        period_starting(date(2025, 5, 1), QUARTERLY, "effective_from")
    with pytest.raises(InvalidArgument):
        period_starting(date(2025, 5, 2), MONTHLY, "effective_from")


def test_a_late_event_settles_in_the_first_period_still_open_when_it_arrived():
    jan, feb = parse_period("2025-01", MONTHLY), parse_period("2025-02", MONTHLY)
    closed = {"2025-01": datetime(2025, 2, 3, tzinfo=UTC), "2025-02": datetime(2025, 3, 3, tzinfo=UTC)}
    assert settlement_period(jan, datetime(2025, 2, 1, tzinfo=UTC), closed, MONTHLY) == jan  # before the close
    assert settlement_period(jan, datetime(2025, 2, 10, tzinfo=UTC), closed, MONTHLY) == feb
    assert settlement_period(jan, datetime(2025, 3, 10, tzinfo=UTC), closed, MONTHLY).id == "2025-03"
