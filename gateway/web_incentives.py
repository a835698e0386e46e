"""Pages of incentives: awards to approve or adjust at period close, and my scorecard."""

from __future__ import annotations

from urllib.parse import urlencode

from engage.incentives.v1 import awards_pb2, scorecards_pb2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway import incentives_api as ia
from gateway import incentives_models as im
from gateway.incentives_service import period_ids
from gateway.policy import Access, Permission, requires
from gateway.problems import ProblemError
from gateway.web import render

router = APIRouter(include_in_schema=False)


async def _chosen(request: Request, access: Access, default_back: int) -> tuple[list[im.Scheme], im.Scheme | None, str]:
    """Active schemes, the one asked for (else the first) and the period asked for (else `default_back` ago)."""
    gw = request.app.state.gateway
    schemes = [im.Scheme.of(s, period_ids(s)) for s in await gw.incentives.active_schemes(access.principal)]
    q = request.query_params
    scheme = next((s for s in schemes if s.name == q.get("scheme")), schemes[0] if schemes else None)
    period = q.get("period") or (scheme.recentPeriods[default_back] if scheme else "")
    if scheme is not None and period not in scheme.recentPeriods:
        scheme.recentPeriods.append(period)  # an older period asked for: offer it in the picker too
    return schemes, scheme, period


@router.get("/awards", response_class=HTMLResponse)
async def awards_page(request: Request, access: Access = requires(Permission.AWARDS_DECIDE)) -> Response:
    gw = request.app.state.gateway
    schemes, scheme, period = await _chosen(request, access, default_back=1)
    awards: list[im.Award] = []
    summary: im.Period | None = None
    if scheme is not None:
        parent = f"{scheme.name}/periods/{period}"
        found = await gw.incentives.period_awards(parent, access.principal)
        awards = [im.Award.of(a) for a in found if await access.sees_in_list(a.person)]
        got = await gw.incentives.call(
            gw.incentives.awards.GetPeriod, awards_pb2.GetPeriodRequest(name=parent), access.principal
        )
        summary = im.Period.of(got)
    q = request.query_params
    return render(
        request,
        "awards.html",
        access,
        schemes=schemes,
        scheme=scheme,
        period=period,
        awards=awards,
        summary=summary,
        names=await _names(request, access),
        me=access.principal.person,
        notice=q.get("notice", ""),
        error=q.get("error", ""),
    )


async def _names(request: Request, access: Access) -> dict[str, str]:
    """Display names of the caller's team (everyone, for an HR administrator who heads nothing)."""
    gw = request.app.state.gateway
    roots = await access.heads()
    if access.is_admin and not roots:
        roots = [u.name for u in await gw.roles.all_units(access.principal) if not u.parent]
    return {p.name: p.display_name for root in roots for p in await gw.roles.all_people(root, access.principal)}


def _back(scheme_id: str, period_id: str, **message: str) -> RedirectResponse:
    query = urlencode({"scheme": f"schemes/{scheme_id}", "period": period_id, **message})
    return RedirectResponse(f"/awards?{query}", status_code=303)


@router.post("/awards/{scheme_id}/{period_id}/{person_id}/{action}")
async def decide_award(
    request: Request,
    scheme_id: str,
    period_id: str,
    person_id: str,
    action: str,
    access: Access = requires(Permission.AWARDS_DECIDE),
) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    key = ia.AwardKey(scheme_id, period_id, person_id)
    try:
        if action == "approve":
            done = await ia.approve_award_for(access, request, key, form.get("etag") or None)
            return _back(scheme_id, period_id, notice=f"Approved: {done.name}")
        if action == "adjust":
            body = im.AwardAdjust(amount=form.get("amount", ""), reason=form.get("reason", ""))
            done = await ia.adjust_award_for(access, request, key, body, form.get("etag") or None)
            return _back(scheme_id, period_id, notice=f"Adjusted: {done.name}")
        raise ProblemError(404, "No such action.")
    except ValidationError as exc:
        detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return _back(scheme_id, period_id, error=f"Not adjusted: {detail}")
    except ProblemError as exc:
        if exc.status in (401, 404, 503):
            raise
        return _back(scheme_id, period_id, error=exc.detail)


@router.get("/me/scorecard", response_class=HTMLResponse)
async def my_scorecard_page(request: Request, access: Access = requires(Permission.SCORECARDS_READ)) -> Response:
    gw = request.app.state.gateway
    schemes, scheme, period = await _chosen(request, access, default_back=0)
    card: im.Scorecard | None = None
    missing = ""
    me = access.principal.person
    if scheme is not None and me:
        name = f"{scheme.name}/periods/{period}/scorecards/{me.removeprefix('people/')}"
        try:
            found = await gw.incentives.call(
                gw.incentives.scorecards.GetScorecard, scorecards_pb2.GetScorecardRequest(name=name), access.principal
            )
            card = im.Scorecard.of(found)
        except ProblemError as exc:
            if exc.status in (401, 503):
                raise
            missing = exc.detail
    return render(
        request, "my_scorecard.html", access, schemes=schemes, scheme=scheme, period=period, card=card, missing=missing
    )
