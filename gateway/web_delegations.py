"""The page of my delegations: lend my decision rights to a colleague for a while, see and revoke them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import delegations_api as da
from gateway.models import Money
from gateway.policy import Access, Permission, requires
from gateway.problems import ProblemError
from gateway.web import form_problem, render

router = APIRouter(include_in_schema=False)


async def _context(request: Request, access: Access) -> dict[str, Any]:
    gw = request.app.state.gateway
    me = await access.me()
    roots = ([me.org_unit] if me else []) + await access.heads()
    people = {p.name: p.display_name for root in roots for p in await gw.roles.all_people(root, access.principal)}
    mine = await da.delegations_of(access, request, me.name) if me else []
    categories = sorted(await gw.roles.categories(access.principal), key=lambda c: c.display_name)
    return {
        "me": me,
        "people": people,
        "choices": sorted((n, label) for n, label in people.items() if me is None or n != me.name),
        "delegations": [da.Delegation.of(d) for d in mine],
        "categories": {c.name: c.display_name for c in categories},
        "now": datetime.now(UTC),
    }


@router.get("/me/delegations", response_class=HTMLResponse)
async def delegations_page(request: Request, access: Access = requires(Permission.DELEGATIONS_READ)) -> Response:
    context = await _context(request, access)
    notice = request.query_params.get("notice", "")
    return render(request, "delegations.html", access, form={}, errors=[], notice=notice, **context)


@router.post("/me/delegations", response_class=HTMLResponse)
async def delegate(request: Request, access: Access = requires(Permission.DELEGATIONS_MANAGE)) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not access.principal.person:
        raise ProblemError(403, "Your sign-in names no person: there are no decision rights to delegate.", "FORBIDDEN")
    try:
        until = date.fromisoformat(form.get("validTo", "")) if form.get("validTo") else None
        body = da.DelegationCreate(
            delegate=form.get("delegate", ""),
            categories=[str(c) for c in raw.getlist("categories")],
            maxAmount=Money(currencyCode="EUR", amount=form["maxAmount"]) if form.get("maxAmount") else None,
            validTo=datetime.combine(until, time.min, tzinfo=UTC) if until else None,  # type: ignore[arg-type]
            reason=form.get("reason", ""),
        )
        created = await da.create_delegation_for(access, request, body, form.get("requestId", ""))
        return RedirectResponse(f"/me/delegations?notice={quote('Delegated: ' + created.name)}", status_code=303)
    except (ValueError, ProblemError) as exc:
        status, errors = form_problem(exc, "validTo")
    context = await _context(request, access)
    return render(request, "delegations.html", access, status=status, form=form, errors=errors, notice="", **context)


@router.post("/me/delegations/{delegation_id}/revoke")
async def revoke(
    request: Request, delegation_id: str, access: Access = requires(Permission.DELEGATIONS_MANAGE)
) -> Response:
    form = await request.form()
    done = await da.revoke_delegation_for(access, request, delegation_id, str(form.get("etag", "")) or None)
    return RedirectResponse(f"/me/delegations?notice={quote('Revoked: ' + done.name)}", status_code=303)
