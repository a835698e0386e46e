"""Catalogue use cases: decision categories and role definitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import AlreadyExists, FailedPrecondition, NotFound, invalid
from services.platform.lookups import get_or_404, recall_created
from services.platform.resources import Page, check_etag, remember_request
from services.roles import messages
from services.roles.domain.model import TIER_BANDS, RoleContent, RoleState, Tier, validate_role
from services.roles.events.outgoing import assignment_event, category_event, role_event
from services.roles.store.tables import AssignmentRow, DecisionCategoryRow, DelegationRow, RoleRow, RoleVersionRow


@dataclass
class CategoryFields:
    display_name: str
    description: str
    tier: Tier
    min_level: int  # 0: the tier's default
    max_level: int


def _band(fields_tier: Tier, min_level: int, max_level: int) -> tuple[int, int]:
    low, high = TIER_BANDS[fields_tier]
    low, high = min_level or low, max_level or high
    if low > high:
        raise invalid("decision_category.min_level", "must not be above max_level")
    return low, high


async def create_category(
    db: Database, category_id: str, fields: CategoryFields, request_id: str, request: Message
) -> DecisionCategoryRow:
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateDecisionCategory", request, DecisionCategoryRow):
            return earlier
        if await s.get(DecisionCategoryRow, category_id) is not None:
            raise AlreadyExists(f"decisionCategories/{category_id} already exists")
        low, high = _band(fields.tier, fields.min_level, fields.max_level)
        now = utcnow()
        row = DecisionCategoryRow(
            id=category_id,
            display_name=fields.display_name,
            description=fields.description,
            tier=fields.tier.value,
            min_level=low,
            max_level=high,
            create_time=now,
            update_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreateDecisionCategory", request, f"decisionCategories/{category_id}")
        uow.emit(category_event("created", row))
        return row


async def get_category(db: Database, category_id: str) -> DecisionCategoryRow:
    async with db.read() as s:
        return await get_or_404(s, DecisionCategoryRow, category_id, f"decisionCategories/{category_id}")


async def list_categories(db: Database, tier: Tier | None, page: Page) -> Sequence[DecisionCategoryRow]:
    async with db.read() as s:
        query = select(DecisionCategoryRow).order_by(col(DecisionCategoryRow.id)).limit(page.size)
        if tier is not None:
            query = query.where(DecisionCategoryRow.tier == tier.value)
        if page.after is not None:
            query = query.where(col(DecisionCategoryRow.id) > page.after)
        return (await s.exec(query)).all()


async def update_category(db: Database, category_id: str, changes: dict[str, Any], etag: str) -> DecisionCategoryRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, DecisionCategoryRow, category_id, f"decisionCategories/{category_id}", lock=True)
        check_etag(etag, f"decisionCategories/{category_id}", row.revision)
        tier = changes.get("tier", Tier(row.tier))
        if "tier" in changes:  # a new tier brings its band unless the band is given too
            row.min_level, row.max_level = TIER_BANDS[tier]
        row.min_level, row.max_level = _band(
            tier, changes.get("min_level", row.min_level), changes.get("max_level", row.max_level)
        )
        for key in ("display_name", "description"):
            if key in changes:
                setattr(row, key, changes[key])
        row.tier = tier.value
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(category_event("updated", row))
        return row


async def delete_category(db: Database, category_id: str, etag: str) -> None:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, DecisionCategoryRow, category_id, f"decisionCategories/{category_id}", lock=True)
        check_etag(etag, f"decisionCategories/{category_id}", row.revision)
        for role in (await s.exec(select(RoleRow))).all():
            if any(r["category"] == category_id for r in role.decision_rights):
                raise FailedPrecondition(f"roles/{role.id} still grants rights on it", "CATEGORY_IN_USE")
        pattern = f'%"{category_id}"%'
        used = (
            await s.exec(select(DelegationRow.id).where(sa.cast(DelegationRow.categories, sa.String).like(pattern)))
        ).first()
        if used:
            raise FailedPrecondition(f"delegations/{used} still refers to it", "CATEGORY_IN_USE")
        row.revision += 1  # the delete is the newest version consumers see
        uow.emit(category_event("deleted", row))
        await s.delete(row)


# ---- roles ----------------------------------------------------------------------


async def _validate(s: AsyncSession, content: RoleContent) -> None:
    ids = {r.category for r in content.decision_rights}
    bands: dict[str, tuple[int, int]] = {}
    if ids:
        rows = (await s.exec(select(DecisionCategoryRow).where(col(DecisionCategoryRow.id).in_(ids)))).all()
        bands = {r.id: (r.min_level, r.max_level) for r in rows}
    validate_role(content, bands)


async def create_role(
    db: Database, role_id: str, display_name: str, content: RoleContent, request_id: str, request: Message
) -> RoleRow:
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateRole", request, RoleRow):
            return earlier
        if await s.get(RoleRow, role_id) is not None:
            raise AlreadyExists(f"roles/{role_id} already exists")
        await _validate(s, content)
        now = utcnow()
        stored = messages.content_to_json(content)
        row = RoleRow(
            id=role_id,
            display_name=display_name,
            state=RoleState.DRAFT.value,
            create_time=now,
            update_time=now,
            **stored,
        )
        s.add(row)
        remember_request(s, request_id, "CreateRole", request, f"roles/{role_id}")
        uow.emit(role_event("created", row))
        return row


async def get_role(db: Database, role_id: str, version: int | None) -> tuple[RoleRow, RoleVersionRow | None]:
    async with db.read() as s:
        row = await get_or_404(s, RoleRow, role_id, f"roles/{role_id}")
        if version is None:
            return row, None
        past = await s.get(RoleVersionRow, (role_id, version))
        if past is None:
            raise NotFound(f"roles/{role_id}@{version} does not exist")
        return row, past


async def list_roles(db: Database, state: RoleState | None, page: Page) -> Sequence[RoleRow]:
    async with db.read() as s:
        query = select(RoleRow).order_by(col(RoleRow.id)).limit(page.size)
        if state is not None:
            query = query.where(RoleRow.state == state.value)
        if page.after is not None:
            query = query.where(col(RoleRow.id) > page.after)
        return (await s.exec(query)).all()


def _snapshot(row: RoleRow) -> RoleVersionRow:
    return RoleVersionRow(
        role_id=row.id,
        version=row.version,
        display_name=row.display_name,
        content=messages.content_to_json(messages.content_of(row)),
        effective_from=row.update_time,
    )


async def update_role(
    db: Database, role_id: str, display_name: str | None, content: RoleContent, paths: set[str], etag: str
) -> RoleRow:
    """`content` carries the new values for the content fields in `paths`."""
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, RoleRow, role_id, f"roles/{role_id}", lock=True)
        check_etag(etag, f"roles/{role_id}", row.revision)
        if row.state == RoleState.RETIRED:
            raise FailedPrecondition(f"roles/{role_id} is retired and cannot change", "ROLE_RETIRED")
        before = messages.content_of(row)
        merged = RoleContent(
            purpose=content.purpose if "purpose" in paths else before.purpose,
            responsibilities=content.responsibilities if "responsibilities" in paths else before.responsibilities,
            management_level=content.management_level if "management_level" in paths else before.management_level,
            decision_rights=content.decision_rights if "decision_rights" in paths else before.decision_rights,
            skill_requirements=content.skill_requirements
            if "skill_requirements" in paths
            else before.skill_requirements,
        )
        await _validate(s, merged)
        now = utcnow()
        material = merged != before
        for key, value in messages.content_to_json(merged).items():
            setattr(row, key, value)
        if display_name is not None:
            row.display_name = display_name
        row.revision += 1
        row.update_time = now
        new_version = material and row.state == RoleState.ACTIVE
        if new_version:
            row.version += 1
            s.add(_snapshot(row))
        s.add(row)
        uow.emit(role_event("updated", row))
        if new_version:
            await _move_holders_to_version(uow, row)
        return row


async def _move_holders_to_version(uow: UnitOfWork, role: RoleRow) -> None:
    """Holders are held to the new version and asked to acknowledge it."""
    now = utcnow()
    holders = (
        await uow.session.exec(
            select(AssignmentRow).where(
                AssignmentRow.role_id == role.id,
                or_(col(AssignmentRow.valid_to).is_(None), col(AssignmentRow.valid_to) > now),
            )
        )
    ).all()
    for a in holders:
        a.role_version = role.version
        a.revision += 1
        a.update_time = now
        uow.session.add(a)
        uow.emit(assignment_event("updated", a, now))


async def delete_role(db: Database, role_id: str, etag: str) -> None:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, RoleRow, role_id, f"roles/{role_id}", lock=True)
        check_etag(etag, f"roles/{role_id}", row.revision)
        if row.state != RoleState.DRAFT:
            raise FailedPrecondition(
                f"roles/{role_id} is {row.state.lower()}; only draft roles can be deleted (retire it instead)",
                "ROLE_NOT_DRAFT",
            )
        row.revision += 1  # the delete is the newest version consumers see
        uow.emit(role_event("deleted", row))
        await s.delete(row)


async def activate_role(db: Database, role_id: str, etag: str) -> RoleRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, RoleRow, role_id, f"roles/{role_id}", lock=True)
        check_etag(etag, f"roles/{role_id}", row.revision)
        if row.state != RoleState.DRAFT:
            raise FailedPrecondition(f"roles/{role_id} is {row.state.lower()}, not draft", "ROLE_NOT_DRAFT")
        await _validate(s, messages.content_of(row))
        row.state = RoleState.ACTIVE.value
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        s.add(_snapshot(row))
        uow.emit(role_event("activated", row))
        return row


async def retire_role(db: Database, role_id: str, etag: str) -> RoleRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, RoleRow, role_id, f"roles/{role_id}", lock=True)
        check_etag(etag, f"roles/{role_id}", row.revision)
        if row.state != RoleState.ACTIVE:
            raise FailedPrecondition(f"roles/{role_id} is {row.state.lower()}, not active", "ROLE_NOT_ACTIVE")
        now = utcnow()
        holders = (
            await s.exec(
                select(sa.func.count())
                .select_from(AssignmentRow)
                .where(
                    AssignmentRow.role_id == role_id,
                    or_(col(AssignmentRow.valid_to).is_(None), col(AssignmentRow.valid_to) > now),
                )
            )
        ).one()
        if holders:
            raise FailedPrecondition(
                f"roles/{role_id} still has {holders} active or scheduled holder(s); end their assignments first",
                "ROLE_HAS_HOLDERS",
            )
        row.state = RoleState.RETIRED.value
        row.revision += 1
        row.update_time = now
        s.add(row)
        uow.emit(role_event("retired", row))
        return row
