"""RoleService: decision categories and role definitions."""

from __future__ import annotations

import grpc
from engage.roles.v1 import roles_pb2, roles_pb2_grpc
from google.protobuf import empty_pb2

from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.resources import check_id, mask_paths, page_of, parse_name, required_text
from services.roles import messages
from services.roles.app import catalogue as uc
from services.roles.domain.model import RoleState
from services.roles.store.decision_view import DecisionView

_CATEGORY_MASK = {"display_name", "description", "tier", "min_level", "max_level"}
_ROLE_MASK = {
    "display_name",
    "purpose",
    "responsibilities",
    "management_level",
    "decision_rights",
    "skill_requirements",
}


def _band_level(value: int, field: str) -> int:
    return 0 if value == 0 else messages.level_in(value, field)


def _role_name(name: str) -> tuple[str, int | None]:
    """`roles/x` or `roles/x@3`."""
    base, _, version = name.partition("@")
    role_id = parse_name(base, "roles", "name")
    if not version:
        return role_id, None
    if not version.isdigit() or int(version) < 1:
        raise invalid("name", "version after '@' must be a positive number")
    return role_id, int(version)


class RoleServicer(roles_pb2_grpc.RoleServiceServicer):
    def __init__(self, db: Database, view: DecisionView):
        self.db = db
        self.view = view

    async def CreateDecisionCategory(
        self, request: roles_pb2.CreateDecisionCategoryRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.DecisionCategory:
        category_id = check_id(request.decision_category_id, "decision_category_id")
        c = request.decision_category
        fields = uc.CategoryFields(
            display_name=required_text(c.display_name, "decision_category.display_name"),
            description=c.description[:2000],
            tier=messages.tier_in(c.tier, "decision_category.tier"),
            min_level=_band_level(c.min_level, "decision_category.min_level"),
            max_level=_band_level(c.max_level, "decision_category.max_level"),
        )
        row = await uc.create_category(self.db, category_id, fields, request.request_id, request)
        return messages.category_out(row)

    async def GetDecisionCategory(
        self, request: roles_pb2.GetDecisionCategoryRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.DecisionCategory:
        row = await uc.get_category(self.db, parse_name(request.name, "decisionCategories", "name"))
        return messages.category_out(row)

    async def ListDecisionCategories(
        self, request: roles_pb2.ListDecisionCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.ListDecisionCategoriesResponse:
        tier = messages.tier_in(request.tier, "tier") if request.tier else None
        page = page_of(request.page_size, request.page_token, tier=tier)
        rows = await uc.list_categories(self.db, tier, page)
        return roles_pb2.ListDecisionCategoriesResponse(
            decision_categories=[messages.category_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateDecisionCategory(
        self, request: roles_pb2.UpdateDecisionCategoryRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.DecisionCategory:
        c = request.decision_category
        category_id = parse_name(c.name, "decisionCategories", "decision_category.name")
        paths = mask_paths(request.update_mask, _CATEGORY_MASK)
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = required_text(c.display_name, "decision_category.display_name")
        if "description" in paths:
            changes["description"] = c.description[:2000]
        if "tier" in paths:
            changes["tier"] = messages.tier_in(c.tier, "decision_category.tier")
        if "min_level" in paths:
            changes["min_level"] = _band_level(c.min_level, "decision_category.min_level")
        if "max_level" in paths:
            changes["max_level"] = _band_level(c.max_level, "decision_category.max_level")
        row = await uc.update_category(self.db, category_id, changes, c.etag)
        return messages.category_out(row)

    async def DeleteDecisionCategory(
        self, request: roles_pb2.DeleteDecisionCategoryRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await uc.delete_category(self.db, parse_name(request.name, "decisionCategories", "name"), request.etag)
        return empty_pb2.Empty()

    async def CreateRole(
        self, request: roles_pb2.CreateRoleRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.Role:
        role_id = check_id(request.role_id, "role_id")
        display_name = required_text(request.role.display_name, "role.display_name")
        messages.level_in(request.role.management_level, "role.management_level")
        content = messages.role_content_in(request.role)
        row = await uc.create_role(self.db, role_id, display_name, content, request.request_id, request)
        return messages.role_out(row)

    async def GetRole(self, request: roles_pb2.GetRoleRequest, context: grpc.aio.ServicerContext) -> roles_pb2.Role:
        role_id, version = _role_name(request.name)
        if version is None:  # the current version: from memory (the view follows every change)
            current = (await self.view.fresh()).roles.get(role_id)
            if current is not None:
                return current
            # Not in the view: absent, or just created by another replica (seen here within the poll).
        row, past = await uc.get_role(self.db, role_id, version)
        return messages.role_version_out(past, row) if past else messages.role_out(row)

    async def ListRoles(
        self, request: roles_pb2.ListRolesRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.ListRolesResponse:
        state = (
            messages.enum_in(RoleState, roles_pb2.Role.State, request.state, "STATE_", "state")
            if request.state
            else None
        )
        page = page_of(request.page_size, request.page_token, state=state)
        rows = await uc.list_roles(self.db, state, page)
        return roles_pb2.ListRolesResponse(
            roles=[messages.role_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateRole(
        self, request: roles_pb2.UpdateRoleRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.Role:
        role_id = parse_name(request.role.name, "roles", "role.name")
        paths = mask_paths(request.update_mask, _ROLE_MASK)
        display_name = (
            required_text(request.role.display_name, "role.display_name") if "display_name" in paths else None
        )
        if "management_level" in paths:
            messages.level_in(request.role.management_level, "role.management_level")
        content = messages.role_content_in(request.role)
        row = await uc.update_role(self.db, role_id, display_name, content, paths, request.role.etag)
        return messages.role_out(row)

    async def DeleteRole(
        self, request: roles_pb2.DeleteRoleRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await uc.delete_role(self.db, parse_name(request.name, "roles", "name"), request.etag)
        return empty_pb2.Empty()

    async def ActivateRole(
        self, request: roles_pb2.ActivateRoleRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.Role:
        return messages.role_out(
            await uc.activate_role(self.db, parse_name(request.name, "roles", "name"), request.etag)
        )

    async def RetireRole(
        self, request: roles_pb2.RetireRoleRequest, context: grpc.aio.ServicerContext
    ) -> roles_pb2.Role:
        return messages.role_out(await uc.retire_role(self.db, parse_name(request.name, "roles", "name"), request.etag))
