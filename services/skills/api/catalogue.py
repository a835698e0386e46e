"""CatalogueService: proficiency scales, skill categories and skills."""

from __future__ import annotations

import grpc
from engage.skills.v1 import catalogue_pb2, catalogue_pb2_grpc
from google.protobuf import empty_pb2

from services.platform.db import Database
from services.platform.resources import check_id, mask_paths, page_of, parse_name
from services.skills import messages
from services.skills.api.fields import names_in, offset_of, text_in
from services.skills.app import catalogue as uc

_SCALE_MASK = {"display_name", "description", "levels"}
_CATEGORY_MASK = {"display_name", "description", "parents"}
_SKILL_MASK = {
    "preferred_name",
    "aliases",
    "description",
    "type",
    "categories",
    "external_references",
    "level_descriptions",
}


def _skill_fields(skill: catalogue_pb2.Skill) -> uc.SkillFields:
    return uc.SkillFields(
        preferred_name=skill.preferred_name,
        type=messages.skill_type_in(skill.type, "skill.type"),  # type: ignore[arg-type]
        aliases=list(skill.aliases),
        description=text_in(skill.description, "skill.description", 4000, required=False),
        categories=names_in(list(skill.categories), "skillCategories", "skill.categories"),
        scale_id=parse_name(skill.scale, "proficiencyScales", "skill.scale", required=False),
        external_references=messages.references_in(skill.external_references, "skill.external_references"),
        level_descriptions=[(d.level, d.description) for d in skill.level_descriptions],
    )


class CatalogueServicer(catalogue_pb2_grpc.CatalogueServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    # ---- scales

    async def CreateProficiencyScale(
        self, request: catalogue_pb2.CreateProficiencyScaleRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ProficiencyScale:
        scale_id = check_id(request.proficiency_scale_id, "proficiency_scale_id")
        p = request.proficiency_scale
        fields = uc.ScaleFields(
            display_name=text_in(p.display_name, "proficiency_scale.display_name"),
            description=text_in(p.description, "proficiency_scale.description", 4000, required=False),
            levels=messages.levels_in(p.levels),
        )
        row = await uc.create_scale(self.db, scale_id, fields, request.request_id, request)
        return messages.scale_out(row)

    async def GetProficiencyScale(
        self, request: catalogue_pb2.GetProficiencyScaleRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ProficiencyScale:
        row = await uc.get_scale(self.db, parse_name(request.name, "proficiencyScales", "name"))
        return messages.scale_out(row)

    async def ListProficiencyScales(
        self, request: catalogue_pb2.ListProficiencyScalesRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ListProficiencyScalesResponse:
        page = page_of(request.page_size, request.page_token)
        rows = await uc.list_scales(self.db, page)
        return catalogue_pb2.ListProficiencyScalesResponse(
            proficiency_scales=[messages.scale_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateProficiencyScale(
        self, request: catalogue_pb2.UpdateProficiencyScaleRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ProficiencyScale:
        p = request.proficiency_scale
        scale_id = parse_name(p.name, "proficiencyScales", "proficiency_scale.name")
        paths = mask_paths(request.update_mask, _SCALE_MASK)
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = text_in(p.display_name, "proficiency_scale.display_name")
        if "description" in paths:
            changes["description"] = text_in(p.description, "proficiency_scale.description", 4000, required=False)
        if "levels" in paths:
            changes["levels"] = messages.levels_in(p.levels)
        return messages.scale_out(await uc.update_scale(self.db, scale_id, changes, p.etag))

    # ---- categories

    async def CreateSkillCategory(
        self, request: catalogue_pb2.CreateSkillCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.SkillCategory:
        category_id = check_id(request.skill_category_id, "skill_category_id")
        c = request.skill_category
        fields = uc.CategoryFields(
            display_name=text_in(c.display_name, "skill_category.display_name"),
            description=text_in(c.description, "skill_category.description", 4000, required=False),
            parents=names_in(list(c.parents), "skillCategories", "skill_category.parents"),
        )
        row, parents = await uc.create_category(self.db, category_id, fields, request.request_id, request)
        return messages.category_out(row, parents)

    async def GetSkillCategory(
        self, request: catalogue_pb2.GetSkillCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.SkillCategory:
        row, parents = await uc.get_category(self.db, parse_name(request.name, "skillCategories", "name"))
        return messages.category_out(row, parents)

    async def ListSkillCategories(
        self, request: catalogue_pb2.ListSkillCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ListSkillCategoriesResponse:
        parent = parse_name(request.parent, "skillCategories", "parent", required=False)
        page = page_of(request.page_size, request.page_token, p=parent, d=request.include_descendants)
        rows, parents = await uc.list_categories(self.db, parent, request.include_descendants, page)
        return catalogue_pb2.ListSkillCategoriesResponse(
            skill_categories=[messages.category_out(r, parents.get(r.id, [])) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateSkillCategory(
        self, request: catalogue_pb2.UpdateSkillCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.SkillCategory:
        c = request.skill_category
        category_id = parse_name(c.name, "skillCategories", "skill_category.name")
        paths = mask_paths(request.update_mask, _CATEGORY_MASK)
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = text_in(c.display_name, "skill_category.display_name")
        if "description" in paths:
            changes["description"] = text_in(c.description, "skill_category.description", 4000, required=False)
        if "parents" in paths:
            changes["parents"] = names_in(list(c.parents), "skillCategories", "skill_category.parents")
        row, parents = await uc.update_category(self.db, category_id, changes, c.etag)
        return messages.category_out(row, parents)

    async def DeleteSkillCategory(
        self, request: catalogue_pb2.DeleteSkillCategoryRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await uc.delete_category(self.db, parse_name(request.name, "skillCategories", "name"), request.etag)
        return empty_pb2.Empty()

    # ---- skills

    async def CreateSkill(
        self, request: catalogue_pb2.CreateSkillRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.Skill:
        skill_id = check_id(request.skill_id, "skill_id")
        row, categories = await uc.create_skill(
            self.db, skill_id, _skill_fields(request.skill), request.request_id, request
        )
        return messages.skill_out(row, categories)

    async def GetSkill(
        self, request: catalogue_pb2.GetSkillRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.Skill:
        row, categories = await uc.get_skill(self.db, parse_name(request.name, "skills", "name"))
        return messages.skill_out(row, categories)

    async def ListSkills(
        self, request: catalogue_pb2.ListSkillsRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.ListSkillsResponse:
        category = parse_name(request.category, "skillCategories", "category", required=False)
        status = messages.skill_status_in(request.status, "status")
        skill_type = messages.skill_type_in(request.type, "type", required=False)
        page = page_of(
            request.page_size, request.page_token, c=category, d=request.include_descendants, s=status, t=skill_type
        )
        rows, categories = await uc.list_skills(
            self.db, category, request.include_descendants, status, skill_type, page
        )
        return catalogue_pb2.ListSkillsResponse(
            skills=[messages.skill_out(r, categories.get(r.id, [])) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateSkill(
        self, request: catalogue_pb2.UpdateSkillRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.Skill:
        sk = request.skill
        skill_id = parse_name(sk.name, "skills", "skill.name")
        paths = mask_paths(request.update_mask, _SKILL_MASK)
        changes: dict[str, object] = {}
        if "preferred_name" in paths:
            changes["preferred_name"] = sk.preferred_name
        if "aliases" in paths:
            changes["aliases"] = list(sk.aliases)
        if "description" in paths:
            changes["description"] = text_in(sk.description, "skill.description", 4000, required=False)
        if "type" in paths:
            changes["type"] = messages.skill_type_in(sk.type, "skill.type")
        if "categories" in paths:
            changes["categories"] = names_in(list(sk.categories), "skillCategories", "skill.categories")
        if "external_references" in paths:
            changes["external_references"] = messages.references_in(sk.external_references, "skill.external_references")
        if "level_descriptions" in paths:
            changes["level_descriptions"] = [(d.level, d.description) for d in sk.level_descriptions]
        row, categories = await uc.update_skill(self.db, skill_id, changes, sk.etag)
        return messages.skill_out(row, categories)

    async def DeprecateSkill(
        self, request: catalogue_pb2.DeprecateSkillRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.Skill:
        skill_id = parse_name(request.name, "skills", "name")
        replaced_by = parse_name(request.replaced_by, "skills", "replaced_by", required=False)
        row, categories = await uc.deprecate_skill(self.db, skill_id, replaced_by, request.etag)
        return messages.skill_out(row, categories)

    async def SearchSkills(
        self, request: catalogue_pb2.SearchSkillsRequest, context: grpc.aio.ServicerContext
    ) -> catalogue_pb2.SearchSkillsResponse:
        query = text_in(request.query, "query")
        page = page_of(request.page_size, request.page_token, q=query.casefold(), d=request.include_deprecated)
        offset = offset_of(page)
        hits = await uc.search_skills(self.db, query, request.include_deprecated, offset, page.size)
        return catalogue_pb2.SearchSkillsResponse(
            results=[
                catalogue_pb2.SkillSearchResult(
                    skill=messages.skill_out(h.skill, h.categories),
                    matched_name=h.matched_name,
                    match=messages.enum_out(catalogue_pb2.NameMatch, "NAME_MATCH_", h.match),  # type: ignore[arg-type]
                )
                for h in hits
            ],
            next_page_token=page.next_token(offset + len(hits), len(hits)),
        )
