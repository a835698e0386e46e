"""AssignmentService: who holds which role where, and delegations."""

from __future__ import annotations

from datetime import UTC

import grpc
from engage.roles.v1 import assignments_pb2, assignments_pb2_grpc

from services.platform.db import Database, utcnow
from services.platform.errors import invalid
from services.platform.resources import mask_paths, page_of, parse_name
from services.roles import messages
from services.roles.app import assignments as uc

_ASSIGNMENT_MASK = {"valid_to", "reason", "scope"}
_STATES = {1: "SCHEDULED", 2: "ACTIVE", 3: "ENDED"}


def _reason(value: str, field: str) -> str:
    if len(value) > 2000:
        raise invalid(field, "must be at most 2000 characters")
    return value


class AssignmentServicer(assignments_pb2_grpc.AssignmentServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    def _out(self, row: object) -> assignments_pb2.Assignment:
        return messages.assignment_out(row, utcnow())  # type: ignore[arg-type]

    async def CreateAssignment(
        self, request: assignments_pb2.CreateAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Assignment:
        a = request.assignment
        new = uc.NewAssignment(
            person_id=parse_name(a.person, "people", "assignment.person"),
            role_id=parse_name(a.role, "roles", "assignment.role"),
            org_unit_id=parse_name(a.org_unit, "orgUnits", "assignment.org_unit"),
            scope=messages.scope_in(a.scope, "assignment.scope"),
            valid_from=messages.ts_in(a.valid_from, a.HasField("valid_from")),
            valid_to=messages.ts_in(a.valid_to, a.HasField("valid_to")),
            reason=_reason(a.reason, "assignment.reason"),
        )
        return self._out(await uc.create_assignment(self.db, new, request.request_id, request))

    async def GetAssignment(
        self, request: assignments_pb2.GetAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Assignment:
        return self._out(await uc.get_assignment(self.db, parse_name(request.name, "assignments", "name")))

    async def ListAssignments(
        self, request: assignments_pb2.ListAssignmentsRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.ListAssignmentsResponse:
        person = parse_name(request.person, "people", "person", required=False)
        role = parse_name(request.role, "roles", "role", required=False)
        unit = parse_name(request.org_unit, "orgUnits", "org_unit", required=False)
        if request.state and request.state not in _STATES:
            raise invalid("state", f"unknown value {request.state}")
        state = _STATES.get(request.state, "")
        page = page_of(
            request.page_size, request.page_token, p=person, r=role, u=unit, d=request.include_descendants, s=state
        )
        rows = await uc.list_assignments(self.db, person, role, unit, request.include_descendants, state, page)
        return assignments_pb2.ListAssignmentsResponse(
            assignments=[self._out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateAssignment(
        self, request: assignments_pb2.UpdateAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Assignment:
        a = request.assignment
        assignment_id = parse_name(a.name, "assignments", "assignment.name")
        paths = mask_paths(request.update_mask, _ASSIGNMENT_MASK)
        changes: dict[str, object] = {}
        if "valid_to" in paths:
            changes["valid_to"] = messages.ts_in(a.valid_to, a.HasField("valid_to"))
        if "reason" in paths:
            changes["reason"] = _reason(a.reason, "assignment.reason")
        if "scope" in paths:
            changes["scope"] = messages.scope_in(a.scope, "assignment.scope")
        return self._out(await uc.update_assignment(self.db, assignment_id, changes, a.etag))

    async def EndAssignment(
        self, request: assignments_pb2.EndAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Assignment:
        row = await uc.end_assignment(
            self.db,
            parse_name(request.name, "assignments", "name"),
            _reason(request.reason, "reason"),
            messages.ts_in(request.end_time, request.HasField("end_time")),
            request.etag,
        )
        return self._out(row)

    async def AcknowledgeAssignment(
        self, request: assignments_pb2.AcknowledgeAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Assignment:
        row = await uc.acknowledge_assignment(self.db, parse_name(request.name, "assignments", "name"), request.etag)
        return self._out(row)

    async def CreateDelegation(
        self, request: assignments_pb2.CreateDelegationRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Delegation:
        d = request.delegation
        if not d.categories:
            raise invalid("delegation.categories", "name at least one decision category")
        if not d.HasField("valid_to"):
            raise invalid("delegation.valid_to", "is required: delegations are always dated")
        new = uc.NewDelegation(
            delegator_id=parse_name(d.delegator, "people", "delegation.delegator"),
            delegate_id=parse_name(d.delegate, "people", "delegation.delegate"),
            categories=[
                parse_name(c, "decisionCategories", f"delegation.categories[{i}]") for i, c in enumerate(d.categories)
            ],
            max_amount=messages.money_in(d.max_amount, "delegation.max_amount") if d.HasField("max_amount") else None,
            valid_from=messages.ts_in(d.valid_from, d.HasField("valid_from")),
            valid_to=d.valid_to.ToDatetime(tzinfo=UTC),
            reason=_reason(d.reason, "delegation.reason"),
        )
        return messages.delegation_out(await uc.create_delegation(self.db, new, request.request_id, request))

    async def GetDelegation(
        self, request: assignments_pb2.GetDelegationRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Delegation:
        return messages.delegation_out(
            await uc.get_delegation(self.db, parse_name(request.name, "delegations", "name"))
        )

    async def ListDelegations(
        self, request: assignments_pb2.ListDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.ListDelegationsResponse:
        delegator = parse_name(request.delegator, "people", "delegator", required=False)
        delegate = parse_name(request.delegate, "people", "delegate", required=False)
        page = page_of(request.page_size, request.page_token, a=delegator, b=delegate)
        rows = await uc.list_delegations(self.db, delegator, delegate, page)
        return assignments_pb2.ListDelegationsResponse(
            delegations=[messages.delegation_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def RevokeDelegation(
        self, request: assignments_pb2.RevokeDelegationRequest, context: grpc.aio.ServicerContext
    ) -> assignments_pb2.Delegation:
        row = await uc.revoke_delegation(self.db, parse_name(request.name, "delegations", "name"), request.etag)
        return messages.delegation_out(row)
