"""The events of the roles service: `engage.roles.v1.<entity>.<verb>`.

Each builder returns a CloudEvent whose body is a message of events.proto;
the use case emits it in the transaction of the change.
"""

from __future__ import annotations

from datetime import datetime

from engage.roles.v1 import events_pb2
from google.protobuf.message import Message

from services.platform.cloudevents import CloudEvent, change_event
from services.roles import messages
from services.roles.store.tables import (
    AssignmentRow,
    DecisionCategoryRow,
    DelegationRow,
    OrgUnitRow,
    RoleRow,
)

SOURCE = "/engage/roles"


def _event(entity: str, verb: str, subject: str, body: Message, revision: int, partition: str = "") -> CloudEvent:
    return change_event("roles", entity, verb, subject, body, revision, partition)


def org_unit_event(verb: str, row: OrgUnitRow) -> CloudEvent:
    body = events_pb2.OrgUnitEvent(org_unit=messages.org_unit_out(row))
    return _event("org_unit", verb, f"orgUnits/{row.id}", body, row.revision)


def person_event(verb: str, row: messages.PersonFields) -> CloudEvent:
    body = events_pb2.PersonEvent(person=messages.person_record(row))
    return _event("person", verb, f"people/{row.id}", body, row.revision)


def category_event(verb: str, row: DecisionCategoryRow) -> CloudEvent:
    body = events_pb2.DecisionCategoryEvent(decision_category=messages.category_out(row))
    return _event("decision_category", verb, f"decisionCategories/{row.id}", body, row.revision)


def role_event(verb: str, row: RoleRow) -> CloudEvent:
    body = events_pb2.RoleEvent(role=messages.role_out(row))
    return _event("role", verb, f"roles/{row.id}", body, row.revision)


def assignment_event(verb: str, row: AssignmentRow, now: datetime) -> CloudEvent:
    body = events_pb2.AssignmentEvent(assignment=messages.assignment_out(row, now))
    # Partitioned by person: a consumer sees one person's roles in order.
    return _event("assignment", verb, f"assignments/{row.id}", body, row.revision, f"people/{row.person_id}")


def delegation_event(verb: str, row: DelegationRow) -> CloudEvent:
    body = events_pb2.DelegationEvent(delegation=messages.delegation_out(row))
    return _event("delegation", verb, f"delegations/{row.id}", body, row.revision, f"people/{row.delegator_id}")
