"""Pages of skills: the team's skill matrix with gaps against roles, and my skills with self-assessment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import skills_api
from gateway import skills_models as sm
from gateway.policy import Access, Permission, requires
from gateway.problems import ProblemError
from gateway.web import form_problem, render

router = APIRouter(include_in_schema=False)


@router.get("/skills", response_class=HTMLResponse)
async def skill_matrix_page(request: Request, access: Access = requires(Permission.TEAM_FIT_READ)) -> Response:
    gw = request.app.state.gateway
    heads = await access.heads()
    if access.is_admin and not heads:
        heads = [u.name for u in await gw.roles.all_units(access.principal) if not u.parent]
    unit = request.query_params.get("unit") or (heads[0] if heads else "")
    await access.require_unit_managed(unit)
    matrix = sm.SkillMatrix.of(await gw.skills.matrix(unit, access.principal))
    units = {u.name: u.display_name for u in await gw.roles.all_units(access.principal)}
    choices = [(name, units.get(name, name)) for name in sorted(units) if name in heads or name == unit]
    people = {p.name: p.display_name for p in await gw.roles.all_people(unit, access.principal)}
    roles = {r.name: r.display_name for r in await gw.roles.active_roles(access.principal)}
    return render(
        request,
        "skills.html",
        access,
        matrix=matrix,
        unit=unit,
        unit_names=units,
        choices=choices,
        people=people,
        role_names=roles,
        skill_names=await gw.skills.skill_names(access.principal),
    )


async def _my_skills_context(request: Request, access: Access) -> dict[str, Any]:
    gw = request.app.state.gateway
    me = access.principal.person
    levels = [sm.SkillLevel.of(v) for v in await gw.skills.levels(me, access.principal)] if me else []
    skills = sorted(await gw.skills.active_skills(access.principal), key=lambda s: s.preferred_name)
    return {"levels": levels, "skills": skills, "skill_names": {s.name: s.preferred_name for s in skills}}


@router.get("/me/skills", response_class=HTMLResponse)
async def my_skills_page(request: Request, access: Access = requires(Permission.SKILLS_READ)) -> Response:
    context = await _my_skills_context(request, access)
    return render(
        request, "my_skills.html", access, errors=[], form={}, notice=request.query_params.get("notice", ""), **context
    )


@router.post("/me/skills", response_class=HTMLResponse)
async def self_assess(request: Request, access: Access = requires(Permission.SKILLS_ASSESS)) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        if not access.principal.person:
            raise ProblemError(403, "Your sign-in names no person: there is nobody to assess.", "FORBIDDEN")
        body = sm.AssessmentCreate(skill=form.get("skill", ""), level=form.get("level", ""), note=form.get("note", ""))  # type: ignore[arg-type]
        done = await skills_api.assess_for(access, request, access.principal.person, body, form.get("requestId", ""))
        return RedirectResponse(f"/me/skills?notice={quote('Recorded: ' + done.name)}", status_code=303)
    except (ValueError, ProblemError) as exc:
        status, errors = form_problem(exc, "level")
    context = await _my_skills_context(request, access)
    return render(request, "my_skills.html", access, status=status, errors=errors, form=form, notice="", **context)
