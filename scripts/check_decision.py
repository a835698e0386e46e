"""Ask the roles service the rules-of-engagement question, without grpcurl.

    .venv/bin/python -m scripts.check_decision people/E10167 customer-refund 1200 [EUR]

Prints DECIDE or ESCALATE, the explanation and the chain that was walked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import grpc
from engage.roles.v1 import decisions_pb2, decisions_pb2_grpc
from google.type import money_pb2


def money(amount: str, currency: str) -> money_pb2.Money:
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise SystemExit(f"not an amount: {amount!r}") from exc
    units = int(value)
    return money_pb2.Money(currency_code=currency, units=units, nanos=int((value - units) * 1_000_000_000))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="May this person decide this, or to whom must they escalate?")
    parser.add_argument("person", help="people/{id} or just the id")
    parser.add_argument("category", help="decisionCategories/{id} or just the id, e.g. customer-refund")
    parser.add_argument("amount", nargs="?", help="amount at stake, e.g. 350")
    parser.add_argument("currency", nargs="?", default="EUR", help="ISO 4217 code (default EUR)")
    parser.add_argument("--target", default=f"127.0.0.1:{os.environ.get('ENGAGE_GRPC_PORT', '50051')}")
    parser.add_argument("--token", default=os.environ.get("ENGAGE_TOKEN", ""), help="bearer token (jwt auth)")
    args = parser.parse_args(argv)
    person = args.person if args.person.startswith("people/") else f"people/{args.person}"
    category = args.category if "/" in args.category else f"decisionCategories/{args.category}"
    request = decisions_pb2.CheckDecisionRequest(person=person, category=category)
    if args.amount is not None:
        request.amount.CopyFrom(money(args.amount, args.currency))
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    with grpc.insecure_channel(args.target) as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        try:
            answer = stub.CheckDecision(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "ERROR"
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            print(f"{code}: {details}", file=sys.stderr)
            return 1
    print(decisions_pb2.DecisionOutcome.Name(answer.outcome).removeprefix("DECISION_OUTCOME_"))
    print(answer.explanation)
    for step in answer.chain:
        kind = decisions_pb2.DecisionStep.Kind.Name(step.kind).removeprefix("KIND_")
        verdict = "may decide" if step.may_decide else "may not"
        print(f"  {kind:<12} {step.person:<14} {step.org_unit:<24} {verdict:<10} {step.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
