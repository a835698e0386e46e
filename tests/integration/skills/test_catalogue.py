"""The skills catalogue through gRPC: seed, search, the category DAG, changes and their events."""

import grpc
from engage.skills.v1 import catalogue_pb2, events_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from services.skills import catalogue_seed
from services.skills.migrate import migrate
from tests.integration.skills.catalogue_requests import skill
from tests.support.events import published, types
from tests.support.grpc_errors import call_error

C = catalogue_pb2
DEMO_SKILLS = {
    # every skill the demo company's roles require (scripts/demo_company.py)
    "customer-empathy", "crm-case-management", "knowledge-sharing", "teaming", "problem-solving-across-boundaries",
    "relationship-management", "networking-outside-department", "knowledge-management", "campaign-management",
    "data-driven-decisions", "coaching", "change-leadership", "strategic-thinking",
}  # fmt: skip


async def test_the_seeded_catalogue_has_every_demo_skill_described_at_every_level_and_publishes_once(skills):
    listed = await skills.catalogue.ListSkills(C.ListSkillsRequest(page_size=1000), metadata=skills.admin, timeout=5)
    by_id = {s.name.removeprefix("skills/"): s for s in listed.skills}
    assert DEMO_SKILLS | {"knowledge-discovery", "crm-pipeline-management", "customer-data-quality"} <= set(by_id)
    scales = await skills.catalogue.ListProficiencyScales(C.ListProficiencyScalesRequest(), metadata=skills.admin)
    levels = {s.name: len(s.levels) for s in scales.proficiency_scales}
    assert levels == {"proficiencyScales/engage-default": 5, "proficiencyScales/engage-leadership": 7}
    for s in by_id.values():
        assert len(s.level_descriptions) == levels[s.scale], s.name
        assert all(d.description for d in s.level_descriptions)
    empathy = by_id["customer-empathy"]
    assert empathy.status == C.Skill.STATUS_ACTIVE and empathy.type == C.SKILL_TYPE_SKILL
    assert {"skillCategories/crm-behaviours", "skillCategories/customer-relationships"} == set(empathy.categories)
    assert any(r.framework == C.FRAMEWORK_ONET and r.id == "2.B.1.f" for r in empathy.external_references)
    # Running the migrations (and the seed) again changes nothing and publishes nothing more.
    await migrate(skills.app.db)
    await skills.settle()
    counts = types(await published(skills.nats.url))
    assert counts["engage.skills.v1.skill.created"] == len(catalogue_seed.SKILLS)
    assert counts["engage.skills.v1.proficiency_scale.created"] == 2
    assert counts["engage.skills.v1.skill_category.created"] == len(catalogue_seed.CATEGORIES)


async def test_search_finds_a_skill_by_any_name_in_any_case_best_match_first(skills):
    found = await skills.catalogue.SearchSkills(C.SearchSkillsRequest(query="EMPATHY"), metadata=skills.admin)
    first = found.results[0]
    assert first.skill.name == "skills/customer-empathy"
    assert (first.matched_name, first.match) == ("empathy", C.NAME_MATCH_EXACT)
    prefix = await skills.catalogue.SearchSkills(C.SearchSkillsRequest(query="knowledge s"), metadata=skills.admin)
    assert [r.skill.name for r in prefix.results] == ["skills/knowledge-sharing"]
    assert prefix.results[0].match == C.NAME_MATCH_PREFIX
    inner = await skills.catalogue.SearchSkills(C.SearchSkillsRequest(query="pipeline"), metadata=skills.admin)
    assert inner.results[0].skill.name == "skills/crm-pipeline-management"
    assert inner.results[0].match in (C.NAME_MATCH_SUBSTRING, C.NAME_MATCH_PREFIX)
    # Paging through a broad query returns every hit once.
    seen, token = [], ""
    while True:
        page = await skills.catalogue.SearchSkills(
            C.SearchSkillsRequest(query="e", page_size=4, page_token=token), metadata=skills.admin
        )
        seen += [r.skill.name for r in page.results]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 10
    err = await call_error(skills.catalogue.SearchSkills(C.SearchSkillsRequest(query=" "), metadata=skills.admin))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.fields == ["query"]


async def test_categories_form_a_dag_and_a_cycle_is_refused_naming_the_field(skills):
    async def category(cid: str, *parents: str) -> C.SkillCategory:
        return await skills.catalogue.CreateSkillCategory(
            C.CreateSkillCategoryRequest(
                skill_category_id=cid,
                skill_category=C.SkillCategory(display_name=cid, parents=[f"skillCategories/{p}" for p in parents]),
            ),
            metadata=skills.admin,
            timeout=5,
        )

    await category("digital")
    await category("service")
    both = await category("digital-service", "digital", "service")  # two parents
    await category("chatbots", "digital-service")
    assert list(both.parents) == ["skillCategories/digital", "skillCategories/service"]
    below = await skills.catalogue.ListSkillCategories(
        C.ListSkillCategoriesRequest(parent="skillCategories/service", include_descendants=True), metadata=skills.admin
    )
    assert [c.name for c in below.skill_categories] == ["skillCategories/chatbots", "skillCategories/digital-service"]

    digital = await skills.catalogue.GetSkillCategory(
        C.GetSkillCategoryRequest(name="skillCategories/digital"), metadata=skills.admin
    )
    digital.parents.append("skillCategories/chatbots")
    err = await call_error(
        skills.catalogue.UpdateSkillCategory(
            C.UpdateSkillCategoryRequest(skill_category=digital, update_mask=FieldMask(paths=["parents"])),
            metadata=skills.admin,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.fields == ["skill_category.parents"] and err.reason == "CATEGORY_CYCLE"
    assert "skillCategories/chatbots -> skillCategories/digital-service -> skillCategories/digital" in err.message
    unchanged = await skills.catalogue.GetSkillCategory(
        C.GetSkillCategoryRequest(name="skillCategories/digital"), metadata=skills.admin
    )
    assert list(unchanged.parents) == [] and unchanged.etag == digital.etag

    # A skill in the sub-graph is found from the top category.
    await skills.catalogue.CreateSkill(
        C.CreateSkillRequest(skill_id="chatbot-design", skill=skill("Chatbot design", "chatbots")),
        metadata=skills.admin,
    )
    listed = await skills.catalogue.ListSkills(
        C.ListSkillsRequest(category="skillCategories/digital", include_descendants=True), metadata=skills.admin
    )
    assert [s.name for s in listed.skills] == ["skills/chatbot-design"]
    err = await call_error(
        skills.catalogue.DeleteSkillCategory(
            C.DeleteSkillCategoryRequest(name="skillCategories/chatbots"), metadata=skills.admin
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "CATEGORY_IN_USE"


async def test_bad_skills_are_refused_with_the_field_and_nothing_is_written(skills):
    bad_category = skill("Bots", "no-such-category")
    err = await call_error(
        skills.catalogue.CreateSkill(C.CreateSkillRequest(skill_id="bots", skill=bad_category), metadata=skills.admin),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["skill.categories[0]"]
    out_of_scale = skill("Bots")
    out_of_scale.level_descriptions.append(C.LevelDescription(level=9, description="flies"))
    err = await call_error(
        skills.catalogue.CreateSkill(C.CreateSkillRequest(skill_id="bots", skill=out_of_scale), metadata=skills.admin),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["skill.level_descriptions[0].level"] and "1-5" in err.message
    bad_ref = skill("Bots")
    bad_ref.external_references.append(C.ExternalReference(framework=C.FRAMEWORK_SFIA, id="bots"))
    err = await call_error(
        skills.catalogue.CreateSkill(C.CreateSkillRequest(skill_id="bots", skill=bad_ref), metadata=skills.admin),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["skill.external_references[0].id"]
    await call_error(
        skills.catalogue.GetSkill(C.GetSkillRequest(name="skills/bots"), metadata=skills.admin),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_deprecating_a_merged_duplicate_points_to_its_replacement_and_hides_it_from_search(skills):
    dup = await skills.catalogue.CreateSkill(
        C.CreateSkillRequest(skill_id="empathy-dup", skill=skill("Empathising with clients"), request_id="r-1"),
        metadata=skills.admin,
    )
    again = await skills.catalogue.CreateSkill(
        C.CreateSkillRequest(skill_id="empathy-dup", skill=skill("Empathising with clients"), request_id="r-1"),
        metadata=skills.admin,
    )
    assert again.etag == dup.etag  # a retry with the same request id returns the first result
    done = await skills.catalogue.DeprecateSkill(
        C.DeprecateSkillRequest(name=dup.name, replaced_by="skills/customer-empathy", etag=dup.etag),
        metadata=skills.admin,
    )
    assert done.status == C.Skill.STATUS_DEPRECATED and done.replaced_by == "skills/customer-empathy"
    hits = await skills.catalogue.SearchSkills(C.SearchSkillsRequest(query="empathising"), metadata=skills.admin)
    assert list(hits.results) == []
    hits = await skills.catalogue.SearchSkills(
        C.SearchSkillsRequest(query="empathising", include_deprecated=True), metadata=skills.admin
    )
    assert [r.skill.name for r in hits.results] == ["skills/empathy-dup"]
    await call_error(
        skills.catalogue.DeprecateSkill(C.DeprecateSkillRequest(name=dup.name), metadata=skills.admin),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await skills.settle()
    events = [e for e in await published(skills.nats.url) if e.type == "engage.skills.v1.skill.deprecated"]
    assert len(events) == 1 and events[0].subject == "skills/empathy-dup" and events[0].authid == "hr-admin"
    body = events_pb2.SkillEvent.FromString(events[0].data)
    assert body.skill.replaced_by == "skills/customer-empathy"


async def test_only_hr_and_programme_leads_change_the_catalogue_and_everyone_reads_it(skills):
    request = C.CreateSkillRequest(skill_id="negotiation", skill=skill("Negotiation"))
    err = await call_error(
        skills.catalogue.CreateSkill(request, metadata=skills.as_person("S1")), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "catalogue.write" in err.message
    created = await skills.catalogue.CreateSkill(request, metadata=skills.as_roles("programme_lead"))
    assert created.scale == "proficiencyScales/engage-default"
    read = await skills.catalogue.GetSkill(C.GetSkillRequest(name=created.name), metadata=skills.as_person("S1"))
    assert read.preferred_name == "Negotiation"
    await call_error(skills.catalogue.GetSkill(C.GetSkillRequest(name=created.name)), grpc.StatusCode.UNAUTHENTICATED)
