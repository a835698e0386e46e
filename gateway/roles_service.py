"""Calls to the roles service: the caller's token forwarded, a deadline on every call.

gRPC errors become problems here (`problems.from_rpc_error`) and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
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

from gateway.identity import Principal
from gateway.problems import from_rpc_error
from services.platform.client import channel as platform_channel

T = TypeVar("T")
MAX_PAGE = 1000


class RolesService:
    def __init__(self, target: str, deadline: float, retry_after: int, cache_seconds: float):
        self.deadline = deadline
        self.retry_after = retry_after
        self.channel = platform_channel(target, default_deadline=deadline)
        self.directory = directory_pb2_grpc.DirectoryServiceStub(self.channel)
        self.roles = roles_pb2_grpc.RoleServiceStub(self.channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self.channel)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(self.channel)
        self._units: list[directory_pb2.OrgUnit] | None = None
        self._units_at = 0.0
        self._units_lock = asyncio.Lock()
        self.cache_seconds = cache_seconds

    async def close(self) -> None:
        await self.channel.close(None)

    def _metadata(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        metadata = [("authorization", f"Bearer {principal.token}")]
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            metadata.append(("x-request-id", str(request_id)))
        return tuple(metadata)

    async def call(self, method: Callable[..., Awaitable[T]], request: Any, principal: Principal) -> T:
        try:
            return await method(request, metadata=self._metadata(principal), timeout=self.deadline)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.retry_after) from exc

    # ---- directory -------------------------------------------------------------------

    async def all_units(self, principal: Principal) -> list[directory_pb2.OrgUnit]:
        """Every org unit, reused for `cache_seconds` (the tree changes rarely; events invalidate it)."""
        if self._units is not None and time.monotonic() - self._units_at < self.cache_seconds:
            return self._units
        async with self._units_lock:
            if self._units is not None and time.monotonic() - self._units_at < self.cache_seconds:
                return self._units
            units: list[directory_pb2.OrgUnit] = []
            token = ""
            while True:
                page = await self.call(
                    self.directory.ListOrgUnits,
                    directory_pb2.ListOrgUnitsRequest(page_size=MAX_PAGE, page_token=token),
                    principal,
                )
                units += page.org_units
                token = page.next_page_token
                if not token:
                    break
            self._units, self._units_at = units, time.monotonic()
            return units

    def forget_units(self) -> None:
        self._units = None

    async def get_person(self, name: str, principal: Principal) -> directory_pb2.Person:
        return await self.call(self.directory.GetPerson, directory_pb2.GetPersonRequest(name=name), principal)

    async def all_people(self, unit: str, principal: Principal) -> list[directory_pb2.Person]:
        people: list[directory_pb2.Person] = []
        token = ""
        while True:
            page = await self.call(
                self.directory.ListPeople,
                directory_pb2.ListPeopleRequest(
                    org_unit=unit, include_descendants=True, page_size=MAX_PAGE, page_token=token
                ),
                principal,
            )
            people += page.people
            token = page.next_page_token
            if not token:
                return people

    async def all_assignments(
        self, principal: Principal, *, unit: str = "", person: str = "", state: int = 0
    ) -> list[assignments_pb2.Assignment]:
        found: list[assignments_pb2.Assignment] = []
        token = ""
        while True:
            page = await self.call(
                self.assignments.ListAssignments,
                assignments_pb2.ListAssignmentsRequest(
                    org_unit=unit,
                    include_descendants=bool(unit),
                    person=person,
                    state=state,  # type: ignore[arg-type]
                    page_size=MAX_PAGE,
                    page_token=token,
                ),
                principal,
            )
            found += page.assignments
            token = page.next_page_token
            if not token:
                return found

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
