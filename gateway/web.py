"""The web app: server-rendered pages over the same use cases and policy as the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway import api, models, skills_api
from gateway.oidc import FLOW_COOKIE, FLOW_SECONDS, Flow
from gateway.policy import Access, Permission, _same_origin, requires
from gateway.problems import NOT_FOUND_DETAIL, TITLES, FieldError, ProblemError
from gateway.team import team_of

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, access: Access | None, status: int = 200, **context: Any) -> HTMLResponse:
    gw = request.app.state.gateway
    principal = access._principal if access else None
    response: HTMLResponse = gw.templates.TemplateResponse(
        request, template, {"principal": principal, "live": gw.settings.live_updates, **context}, status_code=status
    )
    return response


def form_problem(exc: Exception, field: str) -> tuple[int, list[FieldError]]:
    """The status and field errors a form page shows again with the form; sign-in and outages go on up.

    A ValueError that is not a validation error is a malformed `field` (a date, say)."""
    if isinstance(exc, ProblemError):
        if exc.status in (401, 503):
            raise exc
        return exc.status, exc.errors or [FieldError(field="", detail=exc.detail)]
    if isinstance(exc, ValidationError):
        return 422, [FieldError(field=".".join(str(p) for p in e["loc"]), detail=e["msg"]) for e in exc.errors()]
    return 422, [FieldError(field=field, detail=str(exc))]


def error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    if exc.status == 401:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    gw = request.app.state.gateway
    detail = NOT_FOUND_DETAIL if exc.status == 404 else exc.detail
    return gw.templates.TemplateResponse(
        request,
        "error.html",
        {
            "principal": None,
            "status": exc.status,
            "title": TITLES.get(exc.status, "Error"),
            "detail": detail,
            "live": False,
        },
        status_code=exc.status,
        headers=exc.headers,
    )


# ---- sign in (development issuer) -------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(access: Access = requires(Permission.PUBLIC)) -> Response:
    if not access.signed_in:
        return RedirectResponse("/signin", status_code=303)
    if access.is_admin or await access.is_manager():
        return RedirectResponse("/team", status_code=303)
    return RedirectResponse("/me", status_code=303)


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    gw = request.app.state.gateway
    users = gw.settings.users() if gw.dev_issuer else ()
    next_path = request.query_params.get("next", "/")
    return render(request, "signin.html", access, users=users, oidc=gw.oidc.enabled, next=next_path)


def _session(response: Response, settings: Any, token: str, seconds: int) -> None:
    response.set_cookie(
        settings.cookie_name,
        token,
        max_age=seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


@router.get("/signin/oidc")
async def signin_oidc(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    """Starts the authorisation code flow with PKCE at the organisation's identity provider."""
    gw = request.app.state.gateway
    if not gw.oidc.enabled:
        raise ProblemError(404, NOT_FOUND_DETAIL)
    flow = Flow.new(request.query_params.get("next", "/"))
    response = RedirectResponse(await gw.oidc.authorization_url(flow, str(request.base_url)), status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        flow.cookie(),
        max_age=FLOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=gw.settings.cookie_secure,
        path="/signin",
    )
    return response


@router.get("/signin/callback")
async def signin_callback(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    """The provider sends the browser back here with a code; redeemed, it becomes the session."""
    gw = request.app.state.gateway
    if not gw.oidc.enabled:
        raise ProblemError(404, NOT_FOUND_DETAIL)
    q = request.query_params
    if q.get("error"):
        raise ProblemError(401, f"The identity provider did not sign you in ({q['error']}).", "UNAUTHENTICATED")
    flow = Flow.from_cookie(request.cookies.get(FLOW_COOKIE, ""))
    principal, seconds = await gw.oidc.finish(flow, q.get("state", ""), q.get("code", ""), str(request.base_url))
    response = RedirectResponse(flow.next if flow else "/", status_code=303)
    _session(response, gw.settings, principal.token, seconds)
    response.delete_cookie(FLOW_COOKIE, path="/signin")
    return response


@router.post("/signin")
async def signin(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    gw = request.app.state.gateway
    if gw.dev_issuer is None:
        raise ProblemError(404, NOT_FOUND_DETAIL)
    if not _same_origin(request, gw.settings.public_origin):
        raise ProblemError(403, "Cross-site request refused (Origin does not match).", "CSRF")
    form = await request.form()
    user = next((u for u in gw.settings.users() if u.key == form.get("user")), None)
    if user is None:
        raise ProblemError(422, "Unknown demo user.", "INVALID_ARGUMENT", [FieldError(field="user", detail="unknown")])
    response = RedirectResponse("/", status_code=303)
    _session(response, gw.settings, gw.dev_issuer.token(user), gw.settings.dev_token_minutes * 60)
    return response


@router.post("/signout")
async def signout(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    gw = request.app.state.gateway
    if not _same_origin(request, gw.settings.public_origin):
        raise ProblemError(403, "Cross-site request refused (Origin does not match).", "CSRF")
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(gw.settings.cookie_name, path="/")
    return response


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request, access: Access = requires(Permission.PUBLIC)) -> JSONResponse:
    gw = request.app.state.gateway
    if gw.dev_issuer is None:
        raise ProblemError(404, NOT_FOUND_DETAIL)
    return JSONResponse(gw.dev_issuer.openid_configuration(str(request.base_url)))


@router.get("/.well-known/jwks.json")
async def jwks(request: Request, access: Access = requires(Permission.PUBLIC)) -> JSONResponse:
    gw = request.app.state.gateway
    if gw.dev_issuer is None:
        raise ProblemError(404, NOT_FOUND_DETAIL)
    return JSONResponse(gw.dev_issuer.jwks())


@router.get("/metrics")
async def metrics(request: Request, access: Access = requires(Permission.PUBLIC)) -> Response:
    """Prometheus exposition (scraped inside the cluster; holds no personal data: route templates only)."""
    gw = request.app.state.gateway
    return Response(gw.metrics.exposition(), media_type=gw.metrics.content_type)


@router.get("/healthz")
async def healthz(access: Access = requires(Permission.PUBLIC)) -> JSONResponse:
    return JSONResponse({"status": "ok"})


# ---- manager pages --------------------------------------------------------------------------


async def _team_context(request: Request, access: Access) -> dict[str, Any]:
    gw = request.app.state.gateway
    team, active = await asyncio.gather(
        team_of(access, request, request.query_params.get("unit") or None), gw.roles.active_roles(access.principal)
    )
    roles = {r.name: r.display_name for r in active}
    units = {u.name: u.displayName for u in team.orgUnits}
    return {"team": team, "role_names": roles, "unit_names": units}


@router.get("/team", response_class=HTMLResponse)
async def team_page(request: Request, access: Access = requires(Permission.DIRECTORY_READ)) -> Response:
    context = await _team_context(request, access)
    return render(request, "team.html", access, notice=request.query_params.get("notice", ""), **context)


@router.get("/team/table", response_class=HTMLResponse)
async def team_table(request: Request, access: Access = requires(Permission.DIRECTORY_READ)) -> Response:
    return render(request, "_team_table.html", access, **await _team_context(request, access))


async def _assign_context(request: Request, access: Access, form: dict[str, str]) -> dict[str, Any]:
    context = await _team_context(request, access)
    gw = request.app.state.gateway
    context["roles"] = sorted(await gw.roles.active_roles(access.principal), key=lambda r: r.display_name)
    context["names"] = {m.person.name: m.person.displayName for m in context["team"].members}
    context["candidates"], context["candidates_error"], context["skill_names"] = None, "", {}
    units = [u.name for u in context["team"].orgUnits]
    form.setdefault("orgUnit", units[0] if units else "")
    if form.get("role") and form["orgUnit"]:
        try:
            context["candidates"] = await skills_api.candidates_for(access, request, form["role"], form["orgUnit"])
            context["skill_names"] = await gw.skills.skill_names(access.principal)
        except ProblemError as exc:
            if exc.status == 401:
                raise
            context["candidates_error"] = "Candidates are not available right now: " + exc.detail
    return context


@router.get("/assign", response_class=HTMLResponse)
async def assign_page(request: Request, access: Access = requires(Permission.ASSIGNMENTS_MANAGE)) -> Response:
    q = request.query_params
    form = {"person": q.get("person", ""), "validFrom": date.today().isoformat(), "role": q.get("role", "")}
    if q.get("orgUnit"):
        form["orgUnit"] = q["orgUnit"]
    context = await _assign_context(request, access, form)
    return render(request, "assign.html", access, form=form, errors=[], **context)


def _day(value: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)


@router.post("/assign", response_class=HTMLResponse)
async def assign(request: Request, access: Access = requires(Permission.ASSIGNMENTS_MANAGE)) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        body = models.AssignmentCreate(
            person=form.get("person", ""),
            role=form.get("role", ""),
            orgUnit=form.get("orgUnit", ""),
            scope=form.get("scope") or "ORG_UNIT_ONLY",  # type: ignore[arg-type]
            validFrom=_day(form.get("validFrom", "")),
            validTo=_day(form.get("validTo", "")),
            reason=form.get("reason", ""),
        )
        created = await api.create_assignment_for(access, request, body, form.get("requestId", ""))
        return RedirectResponse(f"/team?notice={quote('Assigned: ' + created.name)}", status_code=303)
    except (ValueError, ProblemError) as exc:
        status, errors = form_problem(exc, "validFrom")
    context = await _assign_context(request, access, form)
    return render(request, "assign.html", access, status=status, form=form, errors=errors, **context)


@router.post("/assignments/{assignment_id}/end")
async def end_page(
    request: Request, assignment_id: str, access: Access = requires(Permission.ASSIGNMENTS_MANAGE)
) -> Response:
    form = await request.form()
    body = models.AssignmentEnd(reason=str(form.get("reason", ""))[:500])
    ended = await api.end_assignment_for(
        access, request, assignment_id, body, str(form.get("etag", "")) or None, cancel_scheduled=True
    )
    return RedirectResponse(f"/team?notice={quote('Ended: ' + ended.name)}", status_code=303)


# ---- who decides? ----------------------------------------------------------------------------


@router.get("/decide", response_class=HTMLResponse)
async def decide_page(request: Request, access: Access = requires(Permission.DECISIONS_CHECK)) -> Response:
    gw = request.app.state.gateway
    q = request.query_params
    people: list[models.Person] = []
    if access.is_admin or await access.is_manager():
        people = [m.person for m in (await team_of(access, request, None, enrich=False)).members]
    me = await access.me()
    if me is not None and all(p.name != me.name for p in people):
        people.insert(0, models.Person.of(me))
    categories = sorted(await gw.roles.categories(access.principal), key=lambda c: c.display_name)
    form = {
        "person": q.get("person", me.name if me else ""),
        "category": q.get("category", ""),
        "amount": q.get("amount", ""),
        "currency": q.get("currency", "EUR") or "EUR",
    }
    answer = None
    errors: list[FieldError] = []
    status = 200
    if form["person"] and form["category"]:
        try:
            answer = await api.check_decision_for(
                access, request, form["person"], form["category"], form["amount"] or None, form["currency"], None
            )
        except ProblemError as exc:
            if exc.status in (401, 503):
                raise
            status = exc.status
            errors = exc.errors or [FieldError(field="", detail=exc.detail)]
    names = {p.name: p.displayName for p in people}
    return render(
        request,
        "decide.html",
        access,
        status=status,
        people=people,
        categories=categories,
        form=form,
        answer=answer,
        errors=errors,
        names=names,
    )


# ---- employee pages --------------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse)
async def me_page(request: Request, access: Access = requires(Permission.SIGNED_IN)) -> Response:
    gw = request.app.state.gateway
    me = await access.me()
    mine: list[models.Assignment] = []
    if me is not None:
        for state in (2, 1):  # active, scheduled
            mine += [
                models.Assignment.of(a)
                for a in await gw.roles.all_assignments(access.principal, person=me.name, state=state)
            ]
    roles = {r.name: r for r in await gw.roles.active_roles(access.principal)}
    return render(
        request, "me.html", access, me=me, assignments=mine, roles=roles, notice=request.query_params.get("notice", "")
    )


@router.post("/me/assignments/{assignment_id}/acknowledge")
async def acknowledge_page(
    request: Request, assignment_id: str, access: Access = requires(Permission.ASSIGNMENTS_ACKNOWLEDGE)
) -> Response:
    form = await request.form()
    done = await api.acknowledge_for(access, request, assignment_id, str(form.get("etag", "")) or None)
    return RedirectResponse(f"/me?notice={quote('Acknowledged: ' + done.name)}", status_code=303)
