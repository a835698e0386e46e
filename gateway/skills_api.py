"""The HTTP/JSON API of skills and role fit, scoped to the caller (the skills service checks again).

Every route declares its permission (`requires`) and every status it can return (`responses`).
"""

from __future__ import annotations

from typing import Annotated

from engage.skills.v1 import assessments_pb2, catalogue_pb2, fit_pb2
from fastapi import APIRouter, Path, Query, Request

from gateway import skills_models as sm
from gateway.api import CATALOGUE, CHANGE, READ_LIST, READ_ONE, IdempotencyKey, PageSize, PageToken, PersonId, UnitId
from gateway.models import ID, UNIT_NAME
from gateway.policy import Access, Permission, requires
from gateway.problems import invalid, responses

router = APIRouter(prefix="/api/v1")
RoleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,63}(@[0-9]{1,9})?$", examples=["service-agent"])]
TEAM_READ = responses(401, 403, 404, 422, 429, 503)


@router.get("/skills", response_model=sm.SkillList, responses=CATALOGUE, tags=["skills"])
async def list_skills(
    request: Request,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.SIGNED_IN),
) -> sm.SkillList:
    """Active skills of the catalogue, ordered by id."""
    gw = request.app.state.gateway
    page = await gw.skills.call(
        gw.skills.catalogue.ListSkills,
        catalogue_pb2.ListSkillsRequest(
            status=catalogue_pb2.Skill.STATUS_ACTIVE, page_size=page_size, page_token=page_token
        ),
        access.principal,
    )
    return sm.SkillList(skills=[sm.Skill.of(s) for s in page.skills], nextPageToken=page.next_page_token)


@router.get("/people/{person_id}/skillLevels", response_model=sm.SkillLevelList, responses=READ_LIST, tags=["skills"])
async def list_skill_levels(
    request: Request,
    person_id: PersonId,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.SKILLS_READ),
) -> sm.SkillLevelList:
    """A person's effective level and own claim in each skill they have been assessed in, ordered by skill."""
    person = f"people/{person_id}"
    await access.require_person(person)
    gw = request.app.state.gateway
    page = await gw.skills.call(
        gw.skills.assessments.ListSkillLevels,
        assessments_pb2.ListSkillLevelsRequest(parent=person, page_size=page_size, page_token=page_token),
        access.principal,
    )
    return sm.SkillLevelList(
        skillLevels=[sm.SkillLevel.of(v) for v in page.skill_levels], nextPageToken=page.next_page_token
    )


async def assess_for(
    access: Access, request: Request, person: str, body: sm.AssessmentCreate, request_id: str = ""
) -> assessments_pb2.Assessment:
    """Records the caller's assessment of `person`: a self-assessment, or a manager's."""
    source = await access.assessment_source(person)
    gw = request.app.state.gateway
    assessment = assessments_pb2.Assessment(
        skill=body.skill,
        level=body.level,
        source=sm.SOURCES[source],  # type: ignore[arg-type]
        note=body.note,
    )
    return await gw.skills.call(
        gw.skills.assessments.CreateAssessment,
        assessments_pb2.CreateAssessmentRequest(parent=person, assessment=assessment, request_id=request_id),
        access.principal,
    )


@router.post(
    "/people/{person_id}/assessments",
    status_code=201,
    response_model=sm.Assessment,
    responses=CHANGE,
    tags=["skills"],
)
async def create_assessment(
    request: Request,
    person_id: PersonId,
    body: sm.AssessmentCreate,
    idempotency_key: IdempotencyKey = None,
    access: Access = requires(Permission.SKILLS_ASSESS),
) -> sm.Assessment:
    """Assesses a skill: yourself (a SELF claim, shown but not counted in your effective level)
    or someone in your team (a MANAGER assessment)."""
    created = await assess_for(access, request, f"people/{person_id}", body, idempotency_key or "")
    return sm.Assessment.of(created)


@router.get("/people/{person_id}/roleFits/{role_id}", response_model=sm.RoleFit, responses=READ_ONE, tags=["skills"])
async def get_role_fit(
    request: Request, person_id: PersonId, role_id: RoleId, access: Access = requires(Permission.SKILLS_READ)
) -> sm.RoleFit:
    """How a person fits a role (its current version, or `{role}@{version}`): every requirement with its gap."""
    person = f"people/{person_id}"
    await access.require_person(person)
    gw = request.app.state.gateway
    fit = await gw.skills.call(
        gw.skills.fit.GetRoleFit, fit_pb2.GetRoleFitRequest(person=person, role=f"roles/{role_id}"), access.principal
    )
    return sm.RoleFit.of(fit)


async def candidates_for(
    access: Access,
    request: Request,
    role: str,
    org_unit: str | None,
    *,
    fits_only: bool = False,
    exclude_holders: bool = False,
    page_size: int = 50,
    page_token: str = "",
) -> sm.CandidateList:
    if org_unit:
        await access.require_unit_managed(org_unit)
    elif not access.is_admin:
        heads = await access.heads()
        if len(heads) != 1:
            raise invalid("query.orgUnit", "required: you head more than one unit")
        org_unit = heads[0]
    gw = request.app.state.gateway
    found = await gw.skills.call(
        gw.skills.fit.FindCandidates,
        fit_pb2.FindCandidatesRequest(
            role=role,
            org_unit=org_unit or "",
            fits_only=fits_only,
            exclude_holders=exclude_holders,
            page_size=page_size,
            page_token=page_token,
        ),
        access.principal,
    )
    return sm.CandidateList(
        role=role,
        roleVersion=found.role_version,
        candidates=[sm.Candidate.of(c) for c in found.candidates],
        nextPageToken=found.next_page_token,
    )


@router.get("/roles/{role_id}/candidates", response_model=sm.CandidateList, responses=TEAM_READ, tags=["skills"])
async def find_candidates(
    request: Request,
    role_id: Annotated[str, Path(pattern=ID, examples=["service-agent"])],
    org_unit: Annotated[
        str | None,
        Query(alias="orgUnit", pattern=UNIT_NAME, description="Look here and below; default the unit you head."),
    ] = None,
    fits_only: Annotated[bool, Query(alias="fitsOnly", description="Only people without a mandatory gap.")] = False,
    exclude_holders: Annotated[bool, Query(alias="excludeHolders")] = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.TEAM_FIT_READ),
) -> sm.CandidateList:
    """Active people of your units ranked for a role, best first, each with their skill gaps.

    HR administrators may leave out `orgUnit` for the whole company."""
    return await candidates_for(
        access,
        request,
        f"roles/{role_id}",
        org_unit,
        fits_only=fits_only,
        exclude_holders=exclude_holders,
        page_size=page_size,
        page_token=page_token,
    )


@router.get("/orgUnits/{unit_id}/skillMatrix", response_model=sm.SkillMatrix, responses=TEAM_READ, tags=["skills"])
async def get_skill_matrix(
    request: Request, unit_id: UnitId, access: Access = requires(Permission.TEAM_FIT_READ)
) -> sm.SkillMatrix:
    """The people of a unit you manage (and below) against the skills their roles require or they have,
    with gaps, and each person's fit to the roles they hold."""
    unit = f"orgUnits/{unit_id}"
    await access.require_unit_managed(unit)
    gw = request.app.state.gateway
    return sm.SkillMatrix.of(await gw.skills.matrix(unit, access.principal))
