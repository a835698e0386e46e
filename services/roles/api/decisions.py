"""DecisionService: the rules-of-engagement question."""

from __future__ import annotations

import grpc
from engage.roles.v1 import decisions_pb2, decisions_pb2_grpc

from services.platform.db import utcnow
from services.platform.resources import parse_name
from services.roles import messages
from services.roles.app.decisions import AnswerCache, check_decision
from services.roles.domain.decisions import Answer, Outcome, StepKind
from services.roles.store.decision_view import DecisionView

_OUTCOMES = {
    Outcome.DECIDE: decisions_pb2.DECISION_OUTCOME_DECIDE,
    Outcome.ESCALATE: decisions_pb2.DECISION_OUTCOME_ESCALATE,
}
_STEP_KINDS = {kind: decisions_pb2.DecisionStep.Kind.Value(f"KIND_{kind.value}") for kind in StepKind}


def answer_out(answer: Answer) -> decisions_pb2.CheckDecisionResponse:
    # Fields are set in place (no sub-messages built and copied): every
    # CheckDecision renders one.
    response = decisions_pb2.CheckDecisionResponse(outcome=_OUTCOMES[answer.outcome], explanation=answer.explanation)
    if (grant := answer.grant) is not None:
        h = grant.holding
        rule = response.applied_rule
        rule.holder = f"people/{grant.holder_id}"
        rule.role = f"roles/{h.role_id}"
        rule.role_version = h.role_version
        rule.assignment = f"assignments/{h.assignment_id}"
        if grant.delegation_id:
            rule.delegation = f"delegations/{grant.delegation_id}"
        if grant.limit:
            rule.limit.CopyFrom(messages.money_out(grant.limit))
    if (t := answer.escalate_to) is not None:
        target = response.escalate_to
        target.person = f"people/{t.person_id}"
        if t.role_id:
            target.role = f"roles/{t.role_id}"
        if t.org_unit_id:
            target.org_unit = f"orgUnits/{t.org_unit_id}"
        target.may_decide = t.may_decide
    for step in answer.chain:
        response.chain.add(
            kind=_STEP_KINDS[step.kind],
            person=f"people/{step.person_id}",
            org_unit=f"orgUnits/{step.org_unit_id}" if step.org_unit_id else "",
            may_decide=step.may_decide,
            note=step.note,
        )
    return response


class DecisionServicer(decisions_pb2_grpc.DecisionServiceServicer):
    def __init__(self, view: DecisionView):
        self.view = view
        self.answers = AnswerCache()

    async def CheckDecision(
        self, request: decisions_pb2.CheckDecisionRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.CheckDecisionResponse:
        person = parse_name(request.person, "people", "person")
        category = parse_name(request.category, "decisionCategories", "category")
        amount = messages.money_in(request.amount, "amount") if request.HasField("amount") else None
        at = messages.ts_in(request.at, request.HasField("at")) or utcnow()
        answer = await check_decision(self.view, person, category, amount, at, self.answers)
        response = answer_out(answer)
        response.at.CopyFrom(messages.ts_required(at))
        return response
