"""Fairness and privacy rules, settlement windows and close-time totals."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.incentives.domain.fairness import (
    month_bounds,
    over_budget,
    reciprocal_pairs,
    recognition_month,
    self_recognition,
    shown,
)
from services.incentives.domain.model import (
    Aggregation,
    Calendar,
    CreditSplit,
    Measure,
    PayoutCurve,
    PeriodKind,
    SchemeContent,
    Tier,
)
from services.incentives.domain.periods import (
    parse_period,
    period_containing,
    settlement_period,
    settlement_windows,
)
from services.incentives.domain.scoring import Contribution, Counted, score, score_totals, totals_of
from services.platform.errors import InvalidArgument

MONTHLY = Calendar(PeriodKind.MONTH, "Europe/Amsterdam")


def test_nobody_recognises_themselves_and_budgets_stop_at_the_limit():
    assert self_recognition(["A1", "A2"], "A2") and not self_recognition(["A1"], "A2")
    assert not self_recognition(["A1"], None)
    assert not over_budget(1, 2) and over_budget(2, 2)
    assert not over_budget(1000, 0)  # 0: no limit


def test_recognition_months_are_utc_months():
    # 23:30 UTC on 31 January is February in Amsterdam, but budgets run on UTC months.
    assert recognition_month(datetime(2025, 1, 31, 23, 30, tzinfo=UTC)) == "2025-01"
    assert month_bounds("2025-12", "month") == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidArgument) as info:
        month_bounds("2025-13", "month")
    assert info.value.violations[0].field == "month"


def test_pairs_who_mostly_recognise_each_other_are_flagged():
    given = {
        ("A", "B"): 4,
        ("B", "A"): 3,
        ("B", "C"): 1,  # B still gives 3 of 4 to A
        ("C", "D"): 3,
        ("D", "C"): 3,
        ("C", "E"): 4,  # C gives only 3 of 7 to D: not "mostly"
        ("F", "G"): 2,
        ("G", "F"): 2,  # too few to tell
    }
    [pair] = reciprocal_pairs(given)
    assert (pair.person_a, pair.person_b, pair.a_to_b, pair.b_to_a, pair.a_given, pair.b_given) == (
        "A",
        "B",
        4,
        3,
        4,
        4,
    )


@pytest.mark.parametrize(("members", "minimum", "visible"), [(4, 5, False), (5, 5, True), (1, 0, True), (0, 0, False)])
def test_groups_below_the_minimum_size_are_withheld(members, minimum, visible):
    assert shown(members, minimum) is visible


def test_settlement_windows_put_every_credit_where_settlement_period_does():
    rng = random.Random(7)
    months = [parse_period(f"2025-{m:02d}", MONTHLY) for m in range(1, 7)]
    # January to March closed (February before January's late events came), May closed, April open.
    closed = {
        "2025-01": months[0].end + timedelta(days=5),
        "2025-02": months[1].end + timedelta(days=2),
        "2025-03": months[2].end + timedelta(days=9),
        "2025-05": months[4].end + timedelta(days=1),
    }
    for _ in range(3000):
        occurred = months[0].start + timedelta(
            seconds=rng.uniform(0, (months[5].end - months[0].start).total_seconds())
        )
        accepted = occurred + timedelta(days=rng.uniform(0, 80))
        expected = settlement_period(period_containing(occurred, MONTHLY), accepted, closed, MONTHLY).id
        hits = [
            (p.id, w.late_from_period)
            for p in months
            for w in settlement_windows(p, closed, MONTHLY)
            if w.occurred_from <= occurred < w.occurred_to
            and (w.accepted_from is None or accepted >= w.accepted_from)
            and (w.accepted_to is None or accepted < w.accepted_to)
        ]
        if expected > "2025-06":
            assert hits == []
            continue
        own = period_containing(occurred, MONTHLY).id
        assert hits == [(expected, own if own != expected else "")], (occurred, accepted)


@pytest.mark.parametrize("split", [CreditSplit.SHARED, CreditSplit.OVERLAY])
def test_totals_score_exactly_as_the_events_do(split):
    content = SchemeContent(
        display_name="s",
        description="",
        calendar=MONTHLY,
        measures=(
            Measure("cases", "Cases", ("case",), Aggregation.COUNT, 40, 3),
            Measure("csat", "CSAT", ("csat",), Aggregation.AVERAGE, 30, 4),
            Measure("value", "Value", ("case", "csat"), Aggregation.SUM, 10, 10),
            Measure("people", "People", ("case",), Aggregation.DISTINCT_COLLABORATORS, 20, 2),
        ),
        payout=PayoutCurve("EUR", 1000, (Tier(0, 1), Tier(1, 2)), threshold=0.2),
        credit_split=split,
    )
    rng = random.Random(3)
    t0 = datetime(2025, 1, 2, tzinfo=UTC)
    items = [
        Contribution(
            f"e{i}",
            rng.choice(["case", "csat", "other"]),
            t0 + timedelta(hours=i),
            rng.choice([1.0, 3.0, 5.0]),
            rng.choice([1.0, 0.5, 0.25]),
            collaborators=frozenset(rng.sample(["B", "C", "D"], rng.randint(0, 2))),
        )
        for i in range(40)
    ]
    direct = score(content, items)
    totals = {
        m.id: totals_of(
            m.aggregation,
            [
                Counted(c, 1.0 if split == CreditSplit.OVERLAY else c.share)
                for c in items
                if c.behaviour_type in m.behaviour_types
            ],
        )
        for m in content.measures
    }
    summed = score_totals(content, totals)
    assert [round(line.value, 9) for line in summed.lines] == [round(line.value, 9) for line in direct.lines]
    assert summed.payout == direct.payout and summed.attainment == pytest.approx(direct.attainment)
