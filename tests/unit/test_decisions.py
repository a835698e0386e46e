"""Rules of engagement as a pure function: own rights, delegation, scope holders, manager chain."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.roles.domain.decisions import (
    DecisionFacts,
    DelegationFacts,
    Holding,
    Outcome,
    PersonFacts,
    StepKind,
    may_decide,
    resolve,
    right_covers,
)
from services.roles.domain.model import Authority, DecisionRight, Money, PersonStatus, Scope

REFUND = "customer-refund"


def eur(amount: int) -> Money:
    return Money(Decimal(amount), "EUR")


def person(
    pid: str, manager: str | None, unit: str, status: PersonStatus = PersonStatus.ACTIVE, level: int = 3
) -> PersonFacts:
    return PersonFacts(pid, status, manager, unit, level)


def holding(
    pid: str,
    unit: str,
    limit: int | None,
    scope: Scope = Scope.ORG_UNIT_ONLY,
    role: str = "agent",
    authority: Authority = Authority.DECIDE,
) -> Holding:
    right = DecisionRight(REFUND, authority, eur(limit) if limit is not None else None)
    return Holding(f"as-{pid}-{role}", pid, role, role.title(), 1, unit, scope, (right,))


def facts(
    amount: int | None,
    holdings: list[Holding],
    people: list[PersonFacts],
    *,
    delegations: list[DelegationFacts] | None = None,
    asker: str = "A1",
) -> DecisionFacts:
    by_id = {p.id: p for p in people}
    me = by_id[asker]
    chain, current = [], me.manager_id
    while current:
        chain.append(current)
        current = by_id[current].manager_id if current in by_id else None
    by_person: dict[str, list[Holding]] = {}
    by_unit: dict[str, list[Holding]] = {}
    for h in holdings:
        by_person.setdefault(h.person_id, []).append(h)
        by_unit.setdefault(h.org_unit_id, []).append(h)
    return DecisionFacts(
        person=me,
        category_id=REFUND,
        category_name="Customer refund",
        amount=eur(amount) if amount is not None else None,
        unit_path=["TEAM", "DEPT", "LOB", "CO"],
        people=by_id,
        holdings_by_person=by_person,
        holdings_by_unit=by_unit,
        delegations=delegations or [],
        manager_chain=chain,
    )


PEOPLE = [
    person("CEO", None, "CO"),
    person("HEAD", "CEO", "LOB"),
    person("MGR", "HEAD", "DEPT"),
    person("LEAD", "MGR", "TEAM"),
    person("A1", "LEAD", "TEAM"),
    person("A2", "LEAD", "TEAM"),
]


def test_agent_decides_within_limit_and_says_which_role_allows_it():
    answer = resolve(facts(350, [holding("A1", "TEAM", 500)], PEOPLE))
    assert answer.outcome == Outcome.DECIDE
    assert answer.grant is not None and answer.grant.limit == eur(500)
    assert "500 EUR" in answer.explanation


def test_limit_is_inclusive_and_one_cent_more_escalates():
    assert resolve(facts(500, [holding("A1", "TEAM", 500)], PEOPLE)).outcome == Outcome.DECIDE
    f = facts(500, [holding("A1", "TEAM", 500)], PEOPLE)
    f.amount = Money(Decimal("500.01"), "EUR")
    assert resolve(f).outcome == Outcome.ESCALATE


def test_above_limit_escalates_to_the_nearest_scope_holder():
    holdings = [
        holding("A1", "TEAM", 500),
        holding("LEAD", "TEAM", 5000, role="lead"),
        holding("HEAD", "LOB", None, Scope.WITH_DESCENDANTS, role="head"),
    ]
    answer = resolve(facts(1200, holdings, PEOPLE))
    assert answer.outcome == Outcome.ESCALATE
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "LEAD"
    assert [s.kind for s in answer.chain] == [StepKind.OWN_RIGHTS, StepKind.SCOPE_HOLDER]


def test_beyond_the_team_lead_goes_to_the_enclosing_scope():
    holdings = [
        holding("A1", "TEAM", 500),
        holding("LEAD", "TEAM", 5000, role="lead"),
        holding("HEAD", "LOB", None, Scope.WITH_DESCENDANTS, role="head"),
    ]
    answer = resolve(facts(20000, holdings, PEOPLE))
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "HEAD"
    assert answer.escalate_to.org_unit_id == "LOB"


def test_an_org_unit_only_assignment_above_does_not_cover_the_team():
    holdings = [holding("HEAD", "LOB", None, Scope.ORG_UNIT_ONLY, role="head")]
    answer = resolve(facts(100, holdings, PEOPLE))
    # Not a scope holder for TEAM: found through the manager chain instead.
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "HEAD"
    assert answer.chain[-1].kind == StepKind.MANAGER


def test_unassigned_descendants_scope_yields_to_a_holder_of_the_same_role_below():
    holdings = [
        holding("LEAD", "TEAM", 100, role="refunder"),
        holding("MGR", "DEPT", 10000, Scope.WITH_UNASSIGNED_DESCENDANTS, role="refunder"),
    ]
    # LEAD's own holding of the role in TEAM means MGR's assignment does not cover TEAM.
    answer = resolve(facts(5000, holdings, PEOPLE))
    assert answer.escalate_to is not None
    assert answer.escalate_to.person_id == "MGR"
    assert answer.chain[-1].kind == StepKind.MANAGER


def test_vacant_manager_position_falls_to_the_next_manager_up():
    people = [*PEOPLE[:3], person("LEAD", "MGR", "TEAM", PersonStatus.LEAVE), *PEOPLE[4:]]
    holdings = [holding("LEAD", "TEAM", 5000, role="lead"), holding("MGR", "DEPT", 50000, role="mgr")]
    answer = resolve(facts(1000, holdings, people))
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "MGR"
    notes = [s.note for s in answer.chain]
    assert any("vacant" in n or "not active" in n for n in notes)


def test_delegation_lets_the_delegate_decide_capped_by_the_delegation():
    holdings = [holding("LEAD", "TEAM", 5000, role="lead")]
    delegation = DelegationFacts("d1", "LEAD", frozenset({REFUND}), eur(2000))
    ok = resolve(facts(1500, holdings, PEOPLE, delegations=[delegation]))
    assert ok.outcome == Outcome.DECIDE and ok.grant is not None
    assert ok.grant.delegation_id == "d1" and ok.grant.limit == eur(2000)
    too_much = resolve(facts(3000, holdings, PEOPLE, delegations=[delegation]))
    assert too_much.outcome == Outcome.ESCALATE


def test_delegated_rights_are_not_delegated_again():
    # A2 delegated to A1, but A2 holds no right of their own (only a delegation from LEAD).
    holdings = [holding("LEAD", "TEAM", 5000, role="lead")]
    delegations = [DelegationFacts("d2", "A2", frozenset({REFUND}), None)]
    answer = resolve(facts(100, holdings, PEOPLE, delegations=delegations))
    assert answer.outcome == Outcome.ESCALATE


def test_currency_mismatch_does_not_apply_a_limit():
    ok, note = right_covers(DecisionRight(REFUND, Authority.DECIDE, eur(500)), REFUND, Money(Decimal(10), "USD"))
    assert not ok and "EUR" in note and "USD" in note


def test_recommend_authority_does_not_decide():
    answer = resolve(facts(10, [holding("A1", "TEAM", None, authority=Authority.RECOMMEND)], PEOPLE))
    assert answer.outcome == Outcome.ESCALATE


def test_nobody_with_the_right_escalates_to_the_top_and_says_so():
    answer = resolve(facts(10, [], PEOPLE))
    assert answer.outcome == Outcome.ESCALATE
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "CEO"
    assert answer.escalate_to.may_decide is False
    assert [s.person_id for s in answer.chain if s.kind == StepKind.MANAGER] == ["LEAD", "MGR", "HEAD", "CEO"]


def test_person_on_leave_cannot_decide_even_within_limit():
    people = [*PEOPLE[:4], person("A1", "LEAD", "TEAM", PersonStatus.LEAVE), PEOPLE[5]]
    answer = resolve(facts(10, [holding("A1", "TEAM", 500), holding("LEAD", "TEAM", 5000, role="lead")], people))
    assert answer.outcome == Outcome.ESCALATE


def test_within_a_unit_the_own_line_manager_comes_before_a_lower_peer_and_then_the_lowest_level():
    senior = person("SENIOR", "LEAD", "TEAM", level=3)
    people = [*PEOPLE, senior]
    holdings = [
        holding("A1", "TEAM", 500),
        holding("SENIOR", "TEAM", 2000, role="senior"),
        holding("LEAD", "TEAM", 10000, role="lead"),
    ]
    answer = resolve(facts(1200, holdings, people))
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "LEAD"
    # Outside the person's line, the lowest sufficient level wins.
    other_lead = person("ZLEAD", "MGR", "TEAM", level=4)
    people = [*PEOPLE[:3], person("LEAD", "MGR", "DEPT"), person("A1", "MGR", "TEAM"), senior, other_lead]
    holdings = [holding("SENIOR", "TEAM", 2000, role="senior"), holding("ZLEAD", "TEAM", 10000, role="lead")]
    answer = resolve(facts(1200, holdings, people))
    assert answer.escalate_to is not None and answer.escalate_to.person_id == "SENIOR"


rights = st.builds(
    DecisionRight,
    st.sampled_from([REFUND, "discount"]),
    st.sampled_from(list(Authority)),
    st.one_of(st.none(), st.builds(Money, st.decimals(0, 10_000, places=2), st.sampled_from(["EUR", "USD"]))),
)
amounts = st.one_of(st.none(), st.builds(Money, st.decimals(0, 10_000, places=2), st.sampled_from(["EUR", "USD"])))


@given(st.lists(rights, max_size=4), amounts)
def test_the_quick_check_of_a_holding_agrees_with_right_covers(held: list[DecisionRight], amount: Money | None) -> None:
    assert may_decide(tuple(held), REFUND, amount) == any(right_covers(r, REFUND, amount)[0] for r in held)
