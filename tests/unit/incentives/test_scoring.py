"""Scorecard arithmetic: aggregation, attainment, payout curves, credit splits."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.incentives.domain.credits import applied_share, normalised_shares
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
from services.incentives.domain.scoring import (
    Contribution,
    Counted,
    aggregate,
    measure_attainment,
    payout_amount,
    payout_factor,
    score,
)

T0 = datetime(2025, 1, 10, tzinfo=UTC)
LINEAR = PayoutCurve("EUR", 1000.0, (Tier(0.0, 1.0),))
ACCELERATED = PayoutCurve(
    "EUR", 1000.0, (Tier(0.0, 1.0), Tier(1.0, 2.0)), threshold=0.5, cap_attainment=2.0, max_payout=2500.0
)


def c(event: str, kind: str = "case", value: float = 1.0, share: float = 1.0, **kw) -> Contribution:
    return Contribution(event, kind, T0, value, share, **kw)


def counted(*items: Contribution) -> list[Counted]:
    return [Counted(i, i.share) for i in items]


def test_count_weighs_each_event_by_the_persons_share():
    assert aggregate(Aggregation.COUNT, counted(c("a"), c("b", share=0.5), c("c", share=0.25))) == 1.75


def test_sum_and_average_use_values_and_shares():
    items = counted(c("a", value=4.0), c("b", value=2.0, share=0.5))
    assert aggregate(Aggregation.SUM, items) == 5.0
    assert aggregate(Aggregation.AVERAGE, items) == pytest.approx(5.0 / 1.5)
    assert aggregate(Aggregation.AVERAGE, []) == 0.0


def test_distinct_collaborators_and_departments_count_each_once():
    items = counted(
        c("a", collaborators=frozenset({"P1", "P2"}), departments=frozenset({"BILLING"})),
        c("b", collaborators=frozenset({"P2", "P3"}), departments=frozenset({"BILLING", "LENDING"})),
    )
    assert aggregate(Aggregation.DISTINCT_COLLABORATORS, items) == 3
    assert aggregate(Aggregation.DISTINCT_DEPARTMENTS, items) == 2


def test_attainment_is_value_over_target_and_respects_the_measure_cap():
    assert measure_attainment(5, 10, None) == 0.5
    assert measure_attainment(30, 10, None) == 3.0
    assert measure_attainment(30, 10, 1.5) == 1.5


@pytest.mark.parametrize(
    ("attainment", "expected"),
    [
        (0.0, 0),
        (0.49, 0),  # below the threshold nothing pays
        (0.5, 500),  # at the threshold the linear part pays in full
        (1.0, 1000),
        (1.2, 1400),  # 100% at rate 1, then 20% at the accelerator rate 2
        (2.0, 2500),  # 1000 + 2000 = 3000, capped by max_payout
        (5.0, 2500),  # attainment capped at 2.0 too
    ],
)
def test_accelerated_curve_pays_tiers_marginally_with_threshold_and_caps(attainment, expected):
    assert payout_amount(attainment, ACCELERATED) == Decimal(expected).quantize(Decimal("0.01"))


def test_payout_rounds_half_up_to_cents():
    curve = PayoutCurve("EUR", 100.0, (Tier(0.0, 1.0),))
    assert payout_amount(1 / 3, curve) == Decimal("33.33")
    assert payout_amount(0.12345, curve) == Decimal("12.35")


def test_payout_never_falls_when_attainment_rises():
    rng = random.Random(7)
    for _ in range(200):
        froms = sorted({0.0, *(round(rng.uniform(0.1, 3), 2) for _ in range(rng.randint(0, 3)))})
        curve = PayoutCurve(
            "",
            rng.uniform(1, 1000),
            tuple(Tier(f, rng.uniform(0, 3)) for f in froms),
            threshold=rng.choice([0.0, 0.3, 0.8]),
            cap_attainment=rng.choice([None, 1.5, 2.5]),
        )
        points = sorted(rng.uniform(0, 4) for _ in range(30))
        factors = [payout_factor(a, curve) for a in points]
        assert factors == sorted(factors), curve


def _scheme(split: CreditSplit, measures: tuple[Measure, ...], curve: PayoutCurve = LINEAR) -> SchemeContent:
    return SchemeContent("s", "", Calendar(PeriodKind.MONTH, "Europe/Amsterdam"), measures, curve, split)


CASES = Measure("cases", "Cases together", ("case",), Aggregation.COUNT, 60, 4)
CSAT = Measure("csat", "CSAT", ("csat",), Aggregation.AVERAGE, 40, 4.0, cap=1.25)


def test_scorecard_weights_measures_and_explains_each_event():
    items = [c("e1"), c("e2", share=0.5), c("s1", "csat", 5.0), c("s2", "csat", 4.0), c("x", "other")]
    result = score(_scheme(CreditSplit.SHARED, (CASES, CSAT)), items)
    cases, csat = result.lines
    assert cases.value == 1.5 and cases.attainment == 0.375
    assert [k.contribution.event_id for k in cases.counted] == ["e1", "e2"]
    assert [k.share for k in cases.counted] == [1.0, 0.5]
    assert csat.value == 4.5 and csat.attainment == 1.125
    assert result.attainment == pytest.approx(0.375 * 0.6 + 1.125 * 0.4)
    assert result.payout == Decimal("675.00")
    assert all(k.contribution.event_id != "x" for line in result.lines for k in line.counted)


def test_overlay_gives_everyone_full_credit_shared_splits_it():
    items = [c("e1", share=0.5), c("e2", share=0.5)]
    only_cases = (Measure("cases", "Cases", ("case",), Aggregation.COUNT, 100, 2),)
    assert score(_scheme(CreditSplit.SHARED, only_cases), items).lines[0].value == 1.0
    assert score(_scheme(CreditSplit.OVERLAY, only_cases), items).lines[0].value == 2.0
    assert applied_share(0.25, CreditSplit.OVERLAY) == 1.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([0, 0], [0.5, 0.5]),
        ([0.7, 0.3], [0.7, 0.3]),
        ([2, 2], [0.5, 0.5]),  # shares above 100% are scaled down
        ([0.6, 0, 0], [0.6, 0.2, 0.2]),  # unset shares take what is left, equally
        ([1.0, 0], [1.0, 0.0]),
    ],
)
def test_shares_are_normalised_to_one(given, expected):
    assert normalised_shares(given) == pytest.approx(expected)


def test_order_of_arrival_does_not_change_a_scorecard():
    rng = random.Random(3)
    items = [
        Contribution(f"e{i}", rng.choice(["case", "csat"]), T0 + timedelta(hours=i), rng.uniform(1, 5), rng.random())
        for i in range(40)
    ]
    scheme = _scheme(CreditSplit.SHARED, (CASES, CSAT), ACCELERATED)
    expected = score(scheme, items)
    for _ in range(5):
        rng.shuffle(items)
        assert score(scheme, items) == expected
