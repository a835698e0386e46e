"""The fit score: per-skill min(e, r)/r capped at 1, weighted mean, mandatory gaps."""

import random

import pytest

from services.skills.domain.fit import Requirement, RequirementStatus, role_fit, skill_fit

AGENT = [
    Requirement("customer-empathy", 3, 2.0, True),
    Requirement("crm-case-management", 2, 1.5, True),
    Requirement("knowledge-sharing", 2, 1.0, False),
    Requirement("teaming", 2, 1.0, False),
]


def test_meeting_every_requirement_scores_one_and_fits():
    fit = role_fit(AGENT, {"customer-empathy": 3, "crm-case-management": 2, "knowledge-sharing": 2, "teaming": 2})
    assert fit.score == 1.0 and fit.fits and fit.mandatory_gaps == () and fit.surplus == 0
    assert {f.status for f in fit.skills} == {RequirementStatus.MET}


def test_over_qualification_is_capped_and_never_covers_a_gap():
    expert = {"customer-empathy": 5, "crm-case-management": 5, "knowledge-sharing": 5, "teaming": 0}
    fit = role_fit(AGENT, expert)
    # teaming is missing: (2 + 1.5 + 1 + 0) / 5.5
    assert fit.score == pytest.approx(4.5 / 5.5)
    assert fit.fits  # teaming is not mandatory
    assert fit.surplus == 2 + 3 + 3
    assert fit.skills[0].status == RequirementStatus.ABOVE and fit.skills[0].score == 1.0
    assert fit.skills[3].status == RequirementStatus.MISSING and fit.skills[3].gap == 2


def test_weighted_mean_of_partial_levels():
    fit = role_fit(AGENT, {"customer-empathy": 2, "crm-case-management": 1, "knowledge-sharing": 2, "teaming": 2})
    expected = (2.0 * 2 / 3 + 1.5 * 1 / 2 + 1.0 + 1.0) / 5.5
    assert fit.score == pytest.approx(expected, abs=1e-6)
    assert not fit.fits and fit.mandatory_gaps == ("customer-empathy", "crm-case-management")
    assert fit.skills[0].gap == 1 and fit.skills[0].status == RequirementStatus.BELOW


def test_claims_are_reported_but_do_not_count():
    fit = role_fit(AGENT[:1], {}, {"customer-empathy": 5})
    assert fit.score == 0.0 and fit.skills[0].claimed == 5 and fit.mandatory_gaps == ("customer-empathy",)


def test_no_requirements_or_only_zero_weights_score_one():
    assert role_fit([], {}).score == 1.0
    fit = role_fit([Requirement("x", 3, 0.0, True)], {})
    assert fit.score == 1.0 and not fit.fits  # a weightless mandatory skill still gates


def test_a_zero_requirement_is_always_met():
    f = skill_fit(Requirement("x", 0), 0)
    assert f.score == 1.0 and f.gap == 0 and f.status == RequirementStatus.MET


def test_ranking_puts_fitting_people_first_then_score_then_surplus():
    fits_low = role_fit(AGENT, {"customer-empathy": 3, "crm-case-management": 2})
    gap_high = role_fit(AGENT, {"customer-empathy": 2, "crm-case-management": 5, "knowledge-sharing": 5, "teaming": 5})
    perfect = role_fit(AGENT, {"customer-empathy": 3, "crm-case-management": 2, "knowledge-sharing": 2, "teaming": 2})
    perfect_plus = role_fit(
        AGENT, {"customer-empathy": 4, "crm-case-management": 2, "knowledge-sharing": 2, "teaming": 2}
    )
    assert gap_high.score > fits_low.score
    ranked = sorted([gap_high, fits_low, perfect, perfect_plus], key=lambda f: f.rank_key())
    assert ranked == [perfect_plus, perfect, fits_low, gap_high]


@pytest.mark.parametrize("seed", range(200))
def test_score_is_bounded_and_grows_with_levels(seed: int):
    rng = random.Random(seed)
    reqs = [
        Requirement(f"s{i}", rng.randint(1, 5), rng.choice([0.5, 1.0, 2.0]), rng.random() < 0.5)
        for i in range(rng.randint(1, 6))
    ]
    levels = {r.skill: rng.randint(0, 5) for r in reqs}
    fit = role_fit(reqs, levels)
    assert 0.0 <= fit.score <= 1.0
    raised = dict(levels)
    skill = rng.choice(reqs).skill
    raised[skill] += 1
    better = role_fit(reqs, raised)
    assert better.score >= fit.score and len(better.mandatory_gaps) <= len(fit.mandatory_gaps)
    assert fit.fits == all(levels[r.skill] >= r.min_level for r in reqs if r.mandatory)
