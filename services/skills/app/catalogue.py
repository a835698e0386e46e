"""Catalogue use cases: proficiency scales, skill categories and skills."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import AlreadyExists, FailedPrecondition, FieldViolation, invalid
from services.platform.lookups import get_or_404, get_reference, recall_created
from services.platform.resources import Page, check_etag, recall_request, remember_request
from services.skills import messages
from services.skills.domain.categories import cycle_through, descendants
from services.skills.domain.model import (
    DEFAULT_SCALE,
    ExternalReference,
    ScaleLevel,
    SkillStatus,
    SkillType,
    check_levels,
    check_names,
    check_reference,
    fold,
)
from services.skills.events.outgoing import category_event, scale_event, skill_event
from services.skills.store.tables import (
    CategoryParentRow,
    ProficiencyScaleRow,
    SkillCategoryRow,
    SkillMembershipRow,
    SkillNameRow,
    SkillRow,
)

# ---- proficiency scales ------------------------------------------------------------


@dataclass
class ScaleFields:
    display_name: str
    description: str
    levels: list[ScaleLevel]


async def create_scale(
    db: Database, scale_id: str, fields: ScaleFields, request_id: str = "", request: Message | None = None
) -> ProficiencyScaleRow:
    async with db.write() as uow:
        s = uow.session
        if request is not None and (
            earlier := await recall_created(s, request_id, "CreateProficiencyScale", request, ProficiencyScaleRow)
        ):
            return earlier
        row = await add_scale(uow, scale_id, fields)
        if request is not None:
            remember_request(s, request_id, "CreateProficiencyScale", request, f"proficiencyScales/{scale_id}")
        return row


async def add_scale(uow: UnitOfWork, scale_id: str, fields: ScaleFields) -> ProficiencyScaleRow:
    s = uow.session
    if await s.get(ProficiencyScaleRow, scale_id) is not None:
        raise AlreadyExists(f"proficiencyScales/{scale_id} already exists")
    levels = check_levels(fields.levels, "proficiency_scale.levels")
    now = utcnow()
    row = ProficiencyScaleRow(
        id=scale_id,
        display_name=fields.display_name,
        description=fields.description,
        levels=messages.levels_to_json(levels),
        create_time=now,
        update_time=now,
    )
    s.add(row)
    uow.emit(scale_event("created", row))
    return row


async def get_scale(db: Database, scale_id: str) -> ProficiencyScaleRow:
    async with db.read() as s:
        return await get_or_404(s, ProficiencyScaleRow, scale_id, f"proficiencyScales/{scale_id}")


async def list_scales(db: Database, page: Page) -> Sequence[ProficiencyScaleRow]:
    async with db.read() as s:
        query = select(ProficiencyScaleRow).order_by(col(ProficiencyScaleRow.id)).limit(page.size)
        if page.after is not None:
            query = query.where(col(ProficiencyScaleRow.id) > page.after)
        return (await s.exec(query)).all()


async def update_scale(db: Database, scale_id: str, changes: dict[str, Any], etag: str) -> ProficiencyScaleRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, ProficiencyScaleRow, scale_id, f"proficiencyScales/{scale_id}", lock=True)
        check_etag(etag, f"proficiencyScales/{scale_id}", row.revision)
        if "levels" in changes:
            levels = check_levels(changes["levels"], "proficiency_scale.levels")
            before = {lv["ordinal"] for lv in row.levels}
            if {lv.ordinal for lv in levels} != before:
                user = (await s.exec(select(SkillRow.id).where(SkillRow.scale_id == scale_id).limit(1))).first()
                if user is not None:
                    raise FailedPrecondition(
                        f"skills/{user} uses proficiencyScales/{scale_id}: its ordinals cannot change "
                        "(names and descriptions can)",
                        "SCALE_IN_USE",
                        FieldViolation("proficiency_scale.levels", "ordinals are in use"),
                    )
            row.levels = messages.levels_to_json(levels)
        for key in ("display_name", "description"):
            if key in changes:
                setattr(row, key, changes[key])
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(scale_event("updated", row))
        return row


def scale_ordinals(row: ProficiencyScaleRow) -> list[int]:
    return [lv["ordinal"] for lv in row.levels]


# ---- categories ---------------------------------------------------------------------------


@dataclass
class CategoryFields:
    display_name: str
    description: str
    parents: list[str]


async def parents_of(s: AsyncSession, category_ids: list[str] | None = None) -> dict[str, list[str]]:
    query = select(CategoryParentRow).order_by(col(CategoryParentRow.category_id), col(CategoryParentRow.position))
    if category_ids is not None:
        query = query.where(col(CategoryParentRow.category_id).in_(category_ids))
    out: dict[str, list[str]] = defaultdict(list)
    for edge in (await s.exec(query)).all():
        out[edge.category_id].append(edge.parent_id)
    return out


async def _check_parents(s: AsyncSession, parents: list[str], prefix: str) -> None:
    if len(set(parents)) != len(parents):
        raise invalid(f"{prefix}.parents", "names a parent twice")
    for i, parent in enumerate(parents):
        await get_reference(s, SkillCategoryRow, parent, f"skillCategories/{parent}", f"{prefix}.parents[{i}]")


def _add_edges(s: AsyncSession, category_id: str, parents: list[str]) -> None:
    for i, parent in enumerate(parents):
        s.add(CategoryParentRow(category_id=category_id, parent_id=parent, position=i))


async def create_category(
    db: Database, category_id: str, fields: CategoryFields, request_id: str = "", request: Message | None = None
) -> tuple[SkillCategoryRow, list[str]]:
    async with db.write() as uow:
        s = uow.session
        if request is not None:
            earlier = await recall_request(s, request_id, "CreateSkillCategory", request)
            if earlier:
                row = await get_or_404(s, SkillCategoryRow, earlier.split("/", 1)[1], earlier)
                return row, (await parents_of(s, [row.id])).get(row.id, [])
        row = await add_category(uow, category_id, fields)
        if request is not None:
            remember_request(s, request_id, "CreateSkillCategory", request, f"skillCategories/{category_id}")
        return row, fields.parents


async def add_category(uow: UnitOfWork, category_id: str, fields: CategoryFields) -> SkillCategoryRow:
    s = uow.session
    if await s.get(SkillCategoryRow, category_id) is not None:
        raise AlreadyExists(f"skillCategories/{category_id} already exists")
    if category_id in fields.parents:
        raise FailedPrecondition(
            f"skillCategories/{category_id} cannot be its own parent",
            "CATEGORY_CYCLE",
            FieldViolation("skill_category.parents", "a category cannot be its own parent"),
        )
    await _check_parents(s, fields.parents, "skill_category")
    now = utcnow()
    row = SkillCategoryRow(
        id=category_id,
        display_name=fields.display_name,
        description=fields.description,
        create_time=now,
        update_time=now,
    )
    s.add(row)
    await s.flush()
    _add_edges(s, category_id, fields.parents)
    uow.emit(category_event("created", row, fields.parents))
    return row


async def get_category(db: Database, category_id: str) -> tuple[SkillCategoryRow, list[str]]:
    async with db.read() as s:
        row = await get_or_404(s, SkillCategoryRow, category_id, f"skillCategories/{category_id}")
        return row, (await parents_of(s, [category_id])).get(category_id, [])


async def _children_map(s: AsyncSession) -> dict[str, list[str]]:
    children: dict[str, list[str]] = defaultdict(list)
    for edge in (await s.exec(select(CategoryParentRow))).all():
        children[edge.parent_id].append(edge.category_id)
    return children


async def category_subtree(s: AsyncSession, category_id: str, field: str) -> set[str]:
    """The category and every category below it."""
    await get_reference(s, SkillCategoryRow, category_id, f"skillCategories/{category_id}", field)
    return {category_id} | descendants(await _children_map(s), category_id)


async def list_categories(
    db: Database, parent: str, include_descendants: bool, page: Page
) -> tuple[Sequence[SkillCategoryRow], dict[str, list[str]]]:
    async with db.read() as s:
        query = select(SkillCategoryRow).order_by(col(SkillCategoryRow.id)).limit(page.size)
        if parent:
            await get_reference(s, SkillCategoryRow, parent, f"skillCategories/{parent}", "parent")
            children = await _children_map(s)
            wanted = descendants(children, parent) if include_descendants else set(children.get(parent, []))
            query = query.where(col(SkillCategoryRow.id).in_(wanted))
        if page.after is not None:
            query = query.where(col(SkillCategoryRow.id) > page.after)
        rows = (await s.exec(query)).all()
        return rows, await parents_of(s, [r.id for r in rows])


async def update_category(
    db: Database, category_id: str, changes: dict[str, Any], etag: str
) -> tuple[SkillCategoryRow, list[str]]:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SkillCategoryRow, category_id, f"skillCategories/{category_id}", lock=True)
        check_etag(etag, f"skillCategories/{category_id}", row.revision)
        graph = await parents_of(s)
        parents = graph.get(category_id, [])
        if "parents" in changes and changes["parents"] != parents:
            new_parents: list[str] = changes["parents"]
            await _check_parents(s, new_parents, "skill_category")
            cycle = cycle_through(graph, category_id, new_parents)
            if cycle:
                path = " -> ".join(f"skillCategories/{c}" for c in cycle)
                raise FailedPrecondition(
                    f"the new parents would make a cycle: {path}",
                    "CATEGORY_CYCLE",
                    FieldViolation("skill_category.parents", f"would make a cycle: {path}"),
                )
            await s.execute(sa.delete(CategoryParentRow).where(col(CategoryParentRow.category_id) == category_id))
            _add_edges(s, category_id, new_parents)
            parents = new_parents
        for key in ("display_name", "description"):
            if key in changes:
                setattr(row, key, changes[key])
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(category_event("updated", row, parents))
        return row, parents


async def delete_category(db: Database, category_id: str, etag: str) -> None:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SkillCategoryRow, category_id, f"skillCategories/{category_id}", lock=True)
        check_etag(etag, f"skillCategories/{category_id}", row.revision)
        child = (
            await s.exec(select(CategoryParentRow.category_id).where(CategoryParentRow.parent_id == category_id))
        ).first()
        if child:
            raise FailedPrecondition(
                f"skillCategories/{child} sits under skillCategories/{category_id}", "CATEGORY_IN_USE"
            )
        member = (
            await s.exec(select(SkillMembershipRow.skill_id).where(SkillMembershipRow.category_id == category_id))
        ).first()
        if member:
            raise FailedPrecondition(f"skills/{member} is in skillCategories/{category_id}", "CATEGORY_IN_USE")
        parents = (await parents_of(s, [category_id])).get(category_id, [])
        await s.execute(sa.delete(CategoryParentRow).where(col(CategoryParentRow.category_id) == category_id))
        row.revision += 1  # the delete is the newest version consumers see
        uow.emit(category_event("deleted", row, parents))
        await s.delete(row)


# ---- skills ---------------------------------------------------------------------------------


@dataclass
class SkillFields:
    preferred_name: str
    type: SkillType
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    categories: list[str] = field(default_factory=list)
    scale_id: str = ""
    external_references: list[ExternalReference] = field(default_factory=list)
    level_descriptions: list[tuple[int, str]] = field(default_factory=list)


async def categories_of(s: AsyncSession, skill_ids: list[str]) -> dict[str, list[str]]:
    query = (
        select(SkillMembershipRow)
        .where(col(SkillMembershipRow.skill_id).in_(skill_ids))
        .order_by(col(SkillMembershipRow.skill_id), col(SkillMembershipRow.position))
    )
    out: dict[str, list[str]] = defaultdict(list)
    for m in (await s.exec(query)).all():
        out[m.skill_id].append(m.category_id)
    return out


async def _check_categories(s: AsyncSession, categories: list[str]) -> None:
    if len(set(categories)) != len(categories):
        raise invalid("skill.categories", "names a category twice")
    for i, category in enumerate(categories):
        await get_reference(s, SkillCategoryRow, category, f"skillCategories/{category}", f"skill.categories[{i}]")


def _check_descriptions(scale: ProficiencyScaleRow, descriptions: list[tuple[int, str]]) -> list[dict[str, Any]]:
    ordinals = scale_ordinals(scale)
    seen: set[int] = set()
    out = []
    for i, (level, text) in enumerate(descriptions):
        path = f"skill.level_descriptions[{i}]"
        if level not in ordinals:
            raise invalid(f"{path}.level", f"level {level} is not on proficiencyScales/{scale.id} ({_range(ordinals)})")
        if level in seen:
            raise invalid(f"{path}.level", f"level {level} is described twice")
        seen.add(level)
        if not text.strip() or len(text) > 4000:
            raise invalid(f"{path}.description", "is required (at most 4000 characters)")
        out.append({"level": level, "description": text.strip()})
    return sorted(out, key=lambda d: d["level"])


def _range(ordinals: list[int]) -> str:
    return f"{min(ordinals)}-{max(ordinals)}" if ordinals else "no levels"


async def _write_names(s: AsyncSession, row: SkillRow) -> None:
    await s.execute(sa.delete(SkillNameRow).where(col(SkillNameRow.skill_id) == row.id))
    await s.flush()
    seen: set[str] = set()
    for name, preferred in [(row.preferred_name, True), *((a, False) for a in row.aliases)]:
        folded = fold(name)
        if folded not in seen:
            seen.add(folded)
            s.add(SkillNameRow(skill_id=row.id, folded=folded, name=name, preferred=preferred))


async def _write_categories(s: AsyncSession, skill_id: str, categories: list[str]) -> None:
    await s.execute(sa.delete(SkillMembershipRow).where(col(SkillMembershipRow.skill_id) == skill_id))
    await s.flush()
    for i, category in enumerate(categories):
        s.add(SkillMembershipRow(skill_id=skill_id, category_id=category, position=i))


async def create_skill(
    db: Database, skill_id: str, fields: SkillFields, request_id: str = "", request: Message | None = None
) -> tuple[SkillRow, list[str]]:
    async with db.write() as uow:
        s = uow.session
        if request is not None:
            earlier = await recall_request(s, request_id, "CreateSkill", request)
            if earlier:
                row = await get_or_404(s, SkillRow, earlier.split("/", 1)[1], earlier)
                return row, (await categories_of(s, [row.id])).get(row.id, [])
        row = await add_skill(uow, skill_id, fields)
        if request is not None:
            remember_request(s, request_id, "CreateSkill", request, f"skills/{skill_id}")
        return row, fields.categories


async def add_skill(uow: UnitOfWork, skill_id: str, fields: SkillFields) -> SkillRow:
    s = uow.session
    if await s.get(SkillRow, skill_id) is not None:
        raise AlreadyExists(f"skills/{skill_id} already exists")
    name, aliases = check_names(fields.preferred_name, fields.aliases, "skill")
    scale_id = fields.scale_id or DEFAULT_SCALE
    scale = await get_reference(s, ProficiencyScaleRow, scale_id, f"proficiencyScales/{scale_id}", "skill.scale")
    await _check_categories(s, fields.categories)
    refs = [check_reference(r, f"skill.external_references[{i}]") for i, r in enumerate(fields.external_references)]
    now = utcnow()
    row = SkillRow(
        id=skill_id,
        preferred_name=name,
        aliases=aliases,
        description=fields.description,
        type=fields.type.value,
        status=SkillStatus.ACTIVE.value,
        scale_id=scale_id,
        external_references=[{"framework": r.framework.value, "id": r.id} for r in refs],
        level_descriptions=_check_descriptions(scale, fields.level_descriptions),
        create_time=now,
        update_time=now,
    )
    s.add(row)
    await s.flush()
    await _write_names(s, row)
    await _write_categories(s, skill_id, fields.categories)
    uow.emit(skill_event("created", row, fields.categories))
    return row


async def get_skill(db: Database, skill_id: str) -> tuple[SkillRow, list[str]]:
    async with db.read() as s:
        row = await get_or_404(s, SkillRow, skill_id, f"skills/{skill_id}")
        return row, (await categories_of(s, [skill_id])).get(skill_id, [])


async def list_skills(
    db: Database,
    category: str,
    include_descendants: bool,
    status: SkillStatus | None,
    skill_type: SkillType | None,
    page: Page,
) -> tuple[Sequence[SkillRow], dict[str, list[str]]]:
    async with db.read() as s:
        query = select(SkillRow).order_by(col(SkillRow.id)).limit(page.size)
        if category:
            if include_descendants:
                wanted = await category_subtree(s, category, "category")
            else:
                await get_reference(s, SkillCategoryRow, category, f"skillCategories/{category}", "category")
                wanted = {category}
            members = select(SkillMembershipRow.skill_id).where(col(SkillMembershipRow.category_id).in_(wanted))
            query = query.where(col(SkillRow.id).in_(members))
        if status is not None:
            query = query.where(SkillRow.status == status.value)
        if skill_type is not None:
            query = query.where(SkillRow.type == skill_type.value)
        if page.after is not None:
            query = query.where(col(SkillRow.id) > page.after)
        rows = (await s.exec(query)).all()
        return rows, await categories_of(s, [r.id for r in rows])


async def update_skill(db: Database, skill_id: str, changes: dict[str, Any], etag: str) -> tuple[SkillRow, list[str]]:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SkillRow, skill_id, f"skills/{skill_id}", lock=True)
        check_etag(etag, f"skills/{skill_id}", row.revision)
        if "preferred_name" in changes or "aliases" in changes:
            name, aliases = check_names(
                changes.get("preferred_name", row.preferred_name), changes.get("aliases", row.aliases), "skill"
            )
            row.preferred_name, row.aliases = name, aliases
            await _write_names(s, row)
        if "description" in changes:
            row.description = changes["description"]
        if "type" in changes:
            row.type = changes["type"].value
        if "external_references" in changes:
            refs = [
                check_reference(r, f"skill.external_references[{i}]")
                for i, r in enumerate(changes["external_references"])
            ]
            row.external_references = [{"framework": r.framework.value, "id": r.id} for r in refs]
        if "level_descriptions" in changes:
            scale = await get_or_404(s, ProficiencyScaleRow, row.scale_id, f"proficiencyScales/{row.scale_id}")
            row.level_descriptions = _check_descriptions(scale, changes["level_descriptions"])
        if "categories" in changes:
            await _check_categories(s, changes["categories"])
            await _write_categories(s, skill_id, changes["categories"])
            categories = changes["categories"]
        else:
            categories = (await categories_of(s, [skill_id])).get(skill_id, [])
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(skill_event("updated", row, categories))
        return row, categories


async def deprecate_skill(db: Database, skill_id: str, replaced_by: str, etag: str) -> tuple[SkillRow, list[str]]:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, SkillRow, skill_id, f"skills/{skill_id}", lock=True)
        check_etag(etag, f"skills/{skill_id}", row.revision)
        if row.status == SkillStatus.DEPRECATED:
            raise FailedPrecondition(f"skills/{skill_id} is already deprecated", "SKILL_DEPRECATED")
        if replaced_by:
            if replaced_by == skill_id:
                raise invalid("replaced_by", "a skill cannot replace itself")
            other = await get_reference(s, SkillRow, replaced_by, f"skills/{replaced_by}", "replaced_by")
            if other.status == SkillStatus.DEPRECATED:
                raise invalid("replaced_by", f"skills/{replaced_by} is deprecated itself")
        row.status = SkillStatus.DEPRECATED.value
        row.replaced_by = replaced_by or None
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        categories = (await categories_of(s, [skill_id])).get(skill_id, [])
        uow.emit(skill_event("deprecated", row, categories))
        return row, categories


@dataclass(frozen=True)
class SearchHit:
    skill: SkillRow
    categories: list[str]
    matched_name: str
    match: str  # EXACT, PREFIX or SUBSTRING


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_skills(db: Database, query: str, include_deprecated: bool, offset: int, size: int) -> list[SearchHit]:
    """Best match per skill: exact before prefix before substring, the
    preferred name before an alias, then by skill id."""
    wanted = fold(query)
    async with db.read() as s:
        stmt = select(SkillNameRow).where(col(SkillNameRow.folded).like(f"%{_escape_like(wanted)}%", escape="\\"))
        if not include_deprecated:
            active = select(SkillRow.id).where(SkillRow.status == SkillStatus.ACTIVE.value)
            stmt = stmt.where(col(SkillNameRow.skill_id).in_(active))
        best: dict[str, tuple[int, int, str]] = {}
        for n in (await s.exec(stmt)).all():
            kind = 0 if n.folded == wanted else 1 if n.folded.startswith(wanted) else 2
            key = (kind, 0 if n.preferred else 1, n.name)
            if n.skill_id not in best or key < best[n.skill_id]:
                best[n.skill_id] = key
        ordered = sorted(best, key=lambda sid: (best[sid][0], best[sid][1], sid))[offset : offset + size]
        if not ordered:
            return []
        rows = {r.id: r for r in (await s.exec(select(SkillRow).where(col(SkillRow.id).in_(ordered)))).all()}
        cats = await categories_of(s, ordered)
        kinds = ["EXACT", "PREFIX", "SUBSTRING"]
        return [SearchHit(rows[sid], cats.get(sid, []), best[sid][2], kinds[best[sid][0]]) for sid in ordered]
