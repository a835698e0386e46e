"""DecisionService: the rules-of-engagement question."""

from __future__ import annotations

import grpc
from engage.roles.v1 import decisions_pb2, decisions_pb2_grpc

from services.platform.db import utcnow
from services.platform.resources import parse_name
from services.roles import messages
from services.roles.app.decisions import AnswerCache, check_decision
from services.roles.domain.decisions import Answer, Outcome
from services.roles.store.decision_view import DecisionView


def answer_out(answer: Answer) -> decisions_pb2.CheckDecisionResponse:
    response = decisions_pb2.CheckDecisionResponse(
        outcome=(
            decisions_pb2.DECISION_OUTCOME_DECIDE
            if answer.outcome == Outcome.DECIDE
            else decisions_pb2.DECISION_OUTCOME_ESCALATE
        ),
        explanation=answer.explanation,
    )
    if answer.grant is not None:
        h = answer.grant.holding
        response.applied_rule.CopyFrom(
            decisions_pb2.AppliedRule(
                holder=f"people/{answer.grant.holder_id}",
                role=f"roles/{h.role_id}",
                role_version=h.role_version,
                assignment=f"assignments/{h.assignment_id}",
                delegation=f"delegations/{answer.grant.delegation_id}" if answer.grant.delegation_id else "",
                limit=messages.money_out(answer.grant.limit) if answer.grant.limit else None,
            )
        )
    if answer.escalate_to is not None:
        t = answer.escalate_to
        response.escalate_to.CopyFrom(
            decisions_pb2.EscalationTarget(
                person=f"people/{t.person_id}",
                role=f"roles/{t.role_id}" if t.role_id else "",
                org_unit=f"orgUnits/{t.org_unit_id}" if t.org_unit_id else "",
                may_decide=t.may_decide,
            )
        )
    for step in answer.chain:
        response.chain.append(
            decisions_pb2.DecisionStep(
                kind=decisions_pb2.DecisionStep.Kind.Value(f"KIND_{step.kind.value}"),  # type: ignore[arg-type]
                person=f"people/{step.person_id}",
                org_unit=f"orgUnits/{step.org_unit_id}" if step.org_unit_id else "",
                may_decide=step.may_decide,
                note=step.note,
            )
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
