"""The effective-level rule: which assessments count and which one decides."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.skills.domain.effective import SOURCE_RANK, AssessmentFact, Source, effective_level

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def fact(
    id: str,
    level: int,
    source: Source,
    days_ago: float = 10,
    *,
    expires_in: float | None = None,
    superseded: bool = False,
    recorded_later: float = 0,
) -> AssessmentFact:
    at = NOW - days_ago * DAY
    return AssessmentFact(
        id=id,
        level=level,
        source=source,
        assessed_at=at,
        recorded_at=at + timedelta(seconds=recorded_later),
        expires_at=None if expires_in is None else NOW + expires_in * DAY,
        superseded=superseded,
    )


def test_nothing_assessed_is_level_zero():
    result = effective_level([], NOW)
    assert (result.level, result.claimed_level, result.basis, result.source) == (0, 0, (), None)


def test_a_self_assessment_alone_is_only_a_claim():
    result = effective_level([fact("s", 4, Source.SELF)], NOW)
    assert result.level == 0 and result.claimed_level == 4
    assert result.basis == ("s",) and "confirm" in result.explanation


def test_manager_outranks_peer_and_crm_evidence_even_when_older_and_lower():
    result = effective_level(
        [
            fact("peer", 4, Source.PEER, days_ago=1),
            fact("crm", 5, Source.CRM_EVIDENCE, days_ago=2),
            fact("mgr", 2, Source.MANAGER, days_ago=100),
        ],
        NOW,
    )
    assert (result.level, result.source, result.basis) == (2, Source.MANAGER, ("mgr",))
    assert "MANAGER outranks PEER/CRM_EVIDENCE" in result.explanation


def test_certification_and_test_outrank_the_manager():
    result = effective_level([fact("mgr", 4, Source.MANAGER, 1), fact("cert", 2, Source.CERTIFICATION, 300)], NOW)
    assert (result.level, result.source) == (2, Source.CERTIFICATION)
    result = effective_level([fact("mgr", 4, Source.MANAGER, 1), fact("exam", 3, Source.TEST, 30)], NOW)
    assert (result.level, result.source) == (3, Source.TEST)


def test_latest_within_the_winning_class_decides():
    result = effective_level(
        [fact("old", 2, Source.MANAGER, 50), fact("new", 4, Source.MANAGER, 5), fact("mid", 3, Source.MANAGER, 20)],
        NOW,
    )
    assert result.level == 4 and result.basis == ("new",)
    # certification and test are one class: the later one wins
    result = effective_level([fact("cert", 5, Source.CERTIFICATION, 40), fact("exam", 3, Source.TEST, 4)], NOW)
    assert result.level == 3 and result.basis == ("exam",)


def test_same_assessment_time_the_later_recorded_wins():
    result = effective_level(
        [fact("a", 2, Source.MANAGER, 3, recorded_later=10), fact("b", 3, Source.MANAGER, 3, recorded_later=5)], NOW
    )
    assert result.basis == ("a",)


def test_expired_assessments_drop_out_and_the_next_class_takes_over():
    result = effective_level(
        [fact("cert", 5, Source.CERTIFICATION, 400, expires_in=-1), fact("mgr", 3, Source.MANAGER, 30)], NOW
    )
    assert (result.level, result.source) == (3, Source.MANAGER)


def test_superseded_assessments_never_count():
    result = effective_level(
        [fact("wrong", 5, Source.MANAGER, 2, superseded=True), fact("right", 2, Source.MANAGER, 1)], NOW
    )
    assert result.level == 2
    result = effective_level([fact("only", 5, Source.MANAGER, superseded=True)], NOW)
    assert result.level == 0 and result.basis == ()


def test_future_dated_assessments_wait_and_mark_when_the_level_changes():
    later = fact("later", 4, Source.MANAGER, days_ago=-3)
    result = effective_level([later, fact("now", 2, Source.MANAGER, 5)], NOW)
    assert result.level == 2 and result.valid_until == later.assessed_at


def test_valid_until_is_the_next_expiry_of_anything_in_force():
    result = effective_level(
        [
            fact("cert", 4, Source.CERTIFICATION, expires_in=30),
            fact("mgr", 3, Source.MANAGER, expires_in=10),
            fact("self", 3, Source.SELF, expires_in=5),
            fact("gone", 1, Source.PEER, expires_in=-5),
        ],
        NOW,
    )
    assert result.level == 4 and result.valid_until == NOW + 5 * DAY
    assert effective_level([fact("m", 3, Source.MANAGER)], NOW).valid_until is None


def test_the_basis_names_the_deciding_assessment_and_the_claim():
    result = effective_level([fact("self", 5, Source.SELF, 1), fact("mgr", 3, Source.MANAGER, 2)], NOW)
    assert result.level == 3 and result.claimed_level == 5 and result.basis == ("mgr", "self")


def test_latest_claim_is_the_claimed_level():
    result = effective_level([fact("s1", 2, Source.SELF, 10), fact("s2", 4, Source.SELF, 1)], NOW)
    assert result.claimed_level == 4 and result.basis == ("s2",)


@pytest.mark.parametrize("seed", range(300))
def test_rule_invariants_on_random_histories(seed: int):
    rng = random.Random(seed)
    facts = [
        fact(
            f"a{i}",
            rng.randint(1, 5),
            rng.choice(list(Source)),
            days_ago=rng.uniform(-5, 400),
            expires_in=rng.choice([None, rng.uniform(-100, 300)]),
            superseded=rng.random() < 0.15,
            recorded_later=rng.uniform(0, 10),
        )
        for i in range(rng.randint(0, 8))
    ]
    result = effective_level(facts, NOW)
    shuffled = facts[:]
    rng.shuffle(shuffled)
    assert effective_level(shuffled, NOW) == result  # order of input never matters
    ranked = [f for f in facts if f.in_force(NOW) and f.source != Source.SELF]
    if not ranked:
        assert result.level == 0 and result.source is None
        return
    deciding = next(f for f in facts if f.id == result.basis[0])
    assert deciding.in_force(NOW) and deciding.level == result.level
    assert SOURCE_RANK[deciding.source] == max(SOURCE_RANK[f.source] for f in ranked)
    same_class = [f for f in ranked if SOURCE_RANK[f.source] == SOURCE_RANK[deciding.source]]
    assert deciding.order() == max(f.order() for f in same_class)
    if result.valid_until is not None:
        assert result.valid_until > NOW
