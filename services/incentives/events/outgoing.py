"""The events of the incentives service: `engage.incentives.v1.<entity>.<verb>`.

Each builder returns a CloudEvent whose body is a message of events.proto;
the use case emits it in the transaction of the change.
"""

from __future__ import annotations

from engage.incentives.v1 import awards_pb2, events_pb2, schemes_pb2
from google.protobuf.message import Message

from services.incentives import messages
from services.incentives.store.tables import AwardRow, BehaviourTypeRow, DeadLetterDecisionRow
from services.platform.cloudevents import CloudEvent, change_event
from services.platform.consumer import DeadLetterRow

SOURCE = "/engage/incentives"


def _event(entity: str, verb: str, subject: str, body: Message, revision: int, partition: str = "") -> CloudEvent:
    return change_event("incentives", entity, verb, subject, body, revision, partition)


def behaviour_type_event(verb: str, row: BehaviourTypeRow) -> CloudEvent:
    body = events_pb2.BehaviourTypeEvent(behaviour_type=messages.behaviour_type_out(row))
    return _event("behaviour_type", verb, f"behaviourTypes/{row.id}", body, row.revision)


def scheme_event(verb: str, scheme: schemes_pb2.Scheme, revision: int) -> CloudEvent:
    return _event("scheme", verb, scheme.name, events_pb2.SchemeEvent(scheme=scheme), revision)


def period_event(verb: str, period: awards_pb2.Period, revision: int) -> CloudEvent:
    return _event("period", verb, period.name, events_pb2.PeriodEvent(period=period), revision)


def award_event(verb: str, row: AwardRow) -> CloudEvent:
    award = messages.award_out(row)
    # Partitioned by person: payroll sees one person's awards in order.
    return _event("award", verb, award.name, events_pb2.AwardEvent(award=award), row.revision, award.person)


def dead_letter_event(verb: str, row: DeadLetterRow, decision: DeadLetterDecisionRow) -> CloudEvent:
    # Without headers and body: those may hold what the sender should not have sent.
    letter = messages.dead_letter_out(row, decision, with_body=False)
    return _event("dead_letter", verb, letter.name, events_pb2.DeadLetterEvent(dead_letter=letter), decision.revision)
