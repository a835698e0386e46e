"""The 0-100 normalisation of levels and the arithmetic of team trends."""

from datetime import date, timedelta

import pytest

from services.skills.domain.model import normalized_value, top_ordinal
from services.skills.domain.trends import trend_days, trend_points


@pytest.mark.parametrize(
    ("level", "top", "expected"),
    [
        (0, 5, 0.0),
        (1, 5, 20.0),
        (3, 5, 60.0),
        (5, 5, 100.0),
        (3, 7, 42.9),
        (7, 7, 100.0),
        (2.5, 5, 50.0),
        (9, 5, 100.0),
    ],
)
def test_levels_are_standardised_against_the_highest_ordinal_with_no_level_at_zero(level, top, expected):
    assert normalized_value(level, top) == expected


def test_a_scale_without_levels_normalises_everything_to_zero():
    assert top_ordinal([]) == 0 and normalized_value(3, 0) == 0.0
    assert top_ordinal([2, 5, 4]) == 5


def test_trend_days_end_on_the_last_day_and_step_back_by_the_interval():
    end = date(2026, 6, 30)
    assert trend_days(date(2026, 6, 1), end, 10) == [date(2026, 6, 10), date(2026, 6, 20), end]
    assert trend_days(end, end, 7) == [end]
    assert trend_days(end + timedelta(days=1), end, 1) == []


def test_each_person_stands_at_their_newest_snapshot_and_counts_for_the_unit_it_names():
    history = {
        "ann": [(date(2026, 1, 1), "T1", 2), (date(2026, 3, 1), "T1", 4)],
        "bob": [(date(2026, 1, 15), "T1", 1), (date(2026, 2, 1), "T2", 3)],  # moved to T2
        "cat": [(date(2026, 2, 1), "T1", 3), (date(2026, 2, 20), "T1", 0)],  # lost it (expired)
    }
    days = [date(2025, 12, 31), date(2026, 1, 20), date(2026, 2, 10), date(2026, 3, 1)]
    points = trend_points(history, days, {"T1"}, 5)
    assert [(p.people, p.average_level, p.average_normalized) for p in points] == [
        (0, 0.0, 0.0),
        (2, 1.5, 30.0),
        (2, 2.5, 50.0),
        (1, 4.0, 80.0),
    ]
    assert points[2].level_counts == (0, 1, 1, 0, 0)
    assert [p.people for p in trend_points(history, days, {"T2"}, 5)] == [0, 0, 1, 1]
