"""Calls to the roles service (directory, roles, assignments, decisions)."""

from __future__ import annotations

import asyncio
import time

from engage.roles.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)

from gateway.grpc_client import MAX_PAGE, ServiceClient
from gateway.identity import Principal


class RolesService(ServiceClient):
    def __init__(self, target: str, deadline: float, retry_after: int, cache_seconds: float):
        super().__init__(target, deadline, retry_after)
        self.directory = directory_pb2_grpc.DirectoryServiceStub(self.channel)
        self.roles = roles_pb2_grpc.RoleServiceStub(self.channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self.channel)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(self.channel)
        self._units: list[directory_pb2.OrgUnit] | None = None
        self._units_at = 0.0
        self._units_lock = asyncio.Lock()
        self.cache_seconds = cache_seconds

    # ---- directory -------------------------------------------------------------------

    async def all_units(self, principal: Principal) -> list[directory_pb2.OrgUnit]:
        """Every org unit, reused for `cache_seconds` (the tree changes rarely; events invalidate it)."""
        if self._units is not None and time.monotonic() - self._units_at < self.cache_seconds:
            return self._units
        async with self._units_lock:
            if self._units is not None and time.monotonic() - self._units_at < self.cache_seconds:
                return self._units
            units: list[directory_pb2.OrgUnit] = await self.every_page(
                self.directory.ListOrgUnits, directory_pb2.ListOrgUnitsRequest(), "org_units", principal
            )
            self._units, self._units_at = units, time.monotonic()
            return units

    def forget_units(self) -> None:
        self._units = None

    async def get_person(self, name: str, principal: Principal) -> directory_pb2.Person:
        return await self.call(self.directory.GetPerson, directory_pb2.GetPersonRequest(name=name), principal)

    async def all_people(self, unit: str, principal: Principal) -> list[directory_pb2.Person]:
        request = directory_pb2.ListPeopleRequest(org_unit=unit, include_descendants=True)
        return await self.every_page(self.directory.ListPeople, request, "people", principal)

    async def all_assignments(
        self, principal: Principal, *, unit: str = "", person: str = "", state: int = 0
    ) -> list[assignments_pb2.Assignment]:
        request = assignments_pb2.ListAssignmentsRequest(
            org_unit=unit,
            include_descendants=bool(unit),
            person=person,
            state=state,  # type: ignore[arg-type]
        )
        return await self.every_page(self.assignments.ListAssignments, request, "assignments", principal)

    async def get_assignment(self, name: str, principal: Principal) -> assignments_pb2.Assignment:
        return await self.call(
            self.assignments.GetAssignment, assignments_pb2.GetAssignmentRequest(name=name), principal
        )

    async def active_roles(self, principal: Principal) -> list[roles_pb2.Role]:
        page = await self.call(
            self.roles.ListRoles,
            roles_pb2.ListRolesRequest(state=roles_pb2.Role.STATE_ACTIVE, page_size=MAX_PAGE),
            principal,
        )
        return list(page.roles)

    async def categories(self, principal: Principal) -> list[roles_pb2.DecisionCategory]:
        page = await self.call(
            self.roles.ListDecisionCategories, roles_pb2.ListDecisionCategoriesRequest(page_size=MAX_PAGE), principal
        )
        return list(page.decision_categories)

    async def check_decision(
        self, request: decisions_pb2.CheckDecisionRequest, principal: Principal
    ) -> decisions_pb2.CheckDecisionResponse:
        return await self.call(self.decisions.CheckDecision, request, principal)
