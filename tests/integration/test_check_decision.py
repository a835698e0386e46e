"""The rules-of-engagement question through the real service."""

import datetime as dt

import grpc
from engage.roles.v1 import assignments_pb2, decisions_pb2, roles_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from tests.support.company import assign, eur, load_company
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

DECIDE, ESCALATE = decisions_pb2.DECISION_OUTCOME_DECIDE, decisions_pb2.DECISION_OUTCOME_ESCALATE
SCOPE_DESC = assignments_pb2.ASSIGNMENT_SCOPE_WITH_DESCENDANTS


async def ask(roles, person, category="customer-refund", amount=None, at=None):
    request = decisions_pb2.CheckDecisionRequest(person=f"people/{person}", category=f"decisionCategories/{category}")
    if amount is not None:
        request.amount.CopyFrom(amount)
    if at is not None:
        request.at.CopyFrom(at)
    return await roles.decisions.CheckDecision(request, metadata=roles.admin, timeout=5)


async def staffed(roles):
    await load_company(roles)
    await assign(roles, "S1", "service-agent", "SVC-1")
    await assign(roles, "TL-S", "team-lead", "SVC-1")
    await assign(roles, "VP-C", "lob-head", "SERVICE", scope=SCOPE_DESC)
    await assign(roles, "CEO", "chief", "ACME", scope=SCOPE_DESC)


async def test_agent_refund_within_limit_is_decided_and_explained(roles):
    await staffed(roles)
    answer = await ask(roles, "S1", amount=eur(350))
    assert answer.outcome == DECIDE
    assert answer.applied_rule.role == "roles/service-agent" and answer.applied_rule.role_version == 1
    assert answer.applied_rule.limit.units == 500
    assert "500 EUR" in answer.explanation


async def test_escalation_walks_to_the_team_lead_then_the_line_of_business(roles):
    await staffed(roles)
    to_lead = await ask(roles, "S1", amount=eur(1200))
    assert to_lead.outcome == ESCALATE and to_lead.escalate_to.person == "people/TL-S"
    assert to_lead.escalate_to.may_decide and to_lead.escalate_to.role == "roles/team-lead"
    assert [s.kind for s in to_lead.chain] == [
        decisions_pb2.DecisionStep.KIND_OWN_RIGHTS,
        decisions_pb2.DecisionStep.KIND_SCOPE_HOLDER,
    ]
    to_head = await ask(roles, "S1", amount=eur(90_000))
    assert to_head.escalate_to.person == "people/VP-C" and to_head.escalate_to.org_unit == "orgUnits/SERVICE"


async def test_a_strategic_question_goes_to_the_chief(roles):
    await staffed(roles)
    answer = await ask(roles, "TL-S", category="market-entry")
    assert answer.outcome == ESCALATE and answer.escalate_to.person == "people/CEO"


async def test_delegation_lets_an_agent_decide_for_the_lead_until_revoked(roles):
    await staffed(roles)
    until = Timestamp()
    until.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=7))
    delegation = await roles.assignments.CreateDelegation(
        assignments_pb2.CreateDelegationRequest(
            delegation=assignments_pb2.Delegation(
                delegator="people/TL-S",
                delegate="people/S1",
                categories=["decisionCategories/customer-refund"],
                max_amount=eur(2000),
                valid_to=until,
                reason="holiday cover",
            )
        ),
        metadata=roles.as_person("TL-S"),
        timeout=5,
    )
    covered = await ask(roles, "S1", amount=eur(1500))
    assert covered.outcome == DECIDE and covered.applied_rule.delegation == delegation.name
    assert covered.applied_rule.holder == "people/TL-S"
    assert (await ask(roles, "S1", amount=eur(2500))).outcome == ESCALATE
    await roles.assignments.RevokeDelegation(
        assignments_pb2.RevokeDelegationRequest(name=delegation.name), metadata=roles.as_person("TL-S"), timeout=5
    )
    after = await ask(roles, "S1", amount=eur(1500))
    assert after.outcome == ESCALATE, after


async def test_answers_for_a_past_moment_use_the_role_version_then_in_force(roles):
    await staffed(roles)
    before = Timestamp()
    before.GetCurrentTime()
    current = await roles.roles.GetRole(
        roles_pb2.GetRoleRequest(name="roles/service-agent"), metadata=roles.admin, timeout=5
    )
    current.decision_rights[0].limit.CopyFrom(eur(100))
    await roles.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=current, update_mask=FieldMask(paths=["decision_rights"])),
        metadata=roles.admin,
        timeout=5,
    )
    now = await ask(roles, "S1", amount=eur(350))
    assert now.outcome == ESCALATE
    then = await ask(roles, "S1", amount=eur(350), at=before)
    assert then.outcome == DECIDE and then.applied_rule.role_version == 1, then


async def test_bad_questions_get_clear_errors(roles):
    await staffed(roles)
    negative = money_pb2.Money(currency_code="EUR", units=-5)
    assert (await call_error(ask(roles, "S1", amount=negative), grpc.StatusCode.INVALID_ARGUMENT)).fields == ["amount"]
    no_currency = money_pb2.Money(units=5)
    assert (await call_error(ask(roles, "S1", amount=no_currency))).fields == ["amount.currency_code"]
    await call_error(ask(roles, "NOBODY"), grpc.StatusCode.NOT_FOUND)
    await call_error(ask(roles, "S1", category="nope"), grpc.StatusCode.NOT_FOUND)
    bad_name = decisions_pb2.CheckDecisionRequest(person="S1", category="decisionCategories/customer-refund")
    err = await call_error(
        roles.decisions.CheckDecision(bad_name, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert err.fields == ["person"]


async def test_an_answer_asked_again_follows_a_change_made_in_between(roles):
    await staffed(roles)
    before = await ask(roles, "S2", amount=eur(100))
    assert before.outcome == ESCALATE
    assert (await ask(roles, "S2", amount=eur(100))).outcome == ESCALATE  # asked again: the same answer
    await assign(roles, "S2", "service-agent", "SVC-1")
    assert (await ask(roles, "S2", amount=eur(100))).outcome == DECIDE


async def test_an_answer_asked_again_changes_when_a_dated_assignment_starts(roles):
    """Kept answers hold only until the next date a fact they rest on starts."""
    await staffed(roles)
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    await roles.assignments.CreateAssignment(
        assignments_pb2.CreateAssignmentRequest(
            assignment=assignments_pb2.Assignment(
                person="people/S2",
                role="roles/service-agent",
                org_unit="orgUnits/SVC-1",
                valid_from=Timestamp(seconds=int(starts.timestamp()), nanos=starts.microsecond * 1000),
                reason="starts shortly",
            )
        ),
        metadata=roles.admin,
        timeout=10,
    )
    first = await ask(roles, "S2", amount=eur(100))
    in_force = first.at.ToDatetime(dt.UTC) >= starts.replace(microsecond=starts.microsecond // 1000 * 1000)
    assert first.outcome == (DECIDE if in_force else ESCALATE)
    # Asked again and again, the answer turns once the assignment's start passes.
    await eventually(lambda: ask(roles, "S2", amount=eur(100)), lambda a: a.outcome == DECIDE, timeout=10)
