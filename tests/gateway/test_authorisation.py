"""Every route declares a permission, and every route x every kind of user gets the expected status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from engage.roles.v1 import assignments_pb2
from fastapi.routing import APIRoute
from starlette.routing import Mount

from gateway.app import create_app
from gateway.policy import route_permission
from tests.gateway.conftest import CLOSED, SCHEME, Stack

KINDS = ["admin", "line_manager", "other_manager", "employee_self", "employee_other", None]
A1 = "people/A1"


def all_routes(routes: list[Any]) -> list[Any]:
    """Routes with included routers flattened (FastAPI keeps them as `_IncludedRouter`)."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat += all_routes(list(inner.routes)) if inner is not None else [route]
    return flat


async def test_every_route_declares_a_permission() -> None:
    # create_app opens gRPC channels, which need a running event loop.
    app = create_app()
    missing = []
    routes = all_routes(list(app.routes))
    assert len([r for r in routes if isinstance(r, APIRoute)]) > 30
    for route in routes:
        if isinstance(route, Mount) and route.path == "/static":
            continue  # stylesheet and script: public files
        if not isinstance(route, APIRoute):
            if route.path in {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}:
                continue  # FastAPI's own documentation routes
            missing.append(route.path)
        elif route_permission(route.dependant) is None:
            missing.append(f"{sorted(route.methods)} {route.path}")
    assert not missing, f"routes without a declared permission: {missing}"


@dataclass
class Case:
    name: str
    expected: dict[str | None, int]  # user kind -> status
    call: Callable[[Stack, str | None], Awaitable[Any]]


def get(path: str, **params: str) -> Callable[[Stack, str | None], Awaitable[Any]]:
    async def run(stack: Stack, user: str | None) -> Any:
        return await stack.client.get(path, params=params, headers=stack.auth(user))

    return run


def by(admin: int, line: int, other: int, self_: int, colleague: int, anon: int) -> dict[str | None, int]:
    return dict(zip(KINDS, [admin, line, other, self_, colleague, anon], strict=True))


async def create(stack: Stack, user: str | None) -> Any:
    start, end = stack.period()
    body = {"person": A1, "role": "roles/service-agent", "orgUnit": "orgUnits/SALES-N"}
    body |= {"validFrom": start.isoformat(), "validTo": end.isoformat(), "reason": "matrix"}
    return await stack.client.post("/api/v1/assignments", json=body, headers=stack.auth(user))


async def end(stack: Stack, user: str | None) -> Any:
    aid = await stack.assignment()
    return await stack.client.post(f"/api/v1/assignments/{aid}/end", json=stack.end_body(aid), headers=stack.auth(user))


async def acknowledge(stack: Stack, user: str | None) -> Any:
    aid = await stack.assignment()
    return await stack.client.post(f"/api/v1/assignments/{aid}/acknowledge", headers=stack.auth(user))


async def read_assignment(stack: Stack, user: str | None) -> Any:
    aid = await stack.assignment()
    return await stack.client.get(f"/api/v1/assignments/{aid}", headers=stack.auth(user))


async def web_assign(stack: Stack, user: str | None) -> Any:
    start, _ = stack.period()
    form = {"person": A1, "role": "roles/service-agent", "orgUnit": "orgUnits/SALES-N"}
    form |= {"validFrom": start.date().isoformat(), "validTo": start.replace(month=6).date().isoformat(), "reason": "x"}
    return await stack.client.post("/assign", data=form, headers=stack.auth(user))


async def web_end(stack: Stack, user: str | None) -> Any:
    aid = await stack.assignment()
    return await stack.client.post(f"/assignments/{aid}/end", data={"reason": "x"}, headers=stack.auth(user))


async def web_acknowledge(stack: Stack, user: str | None) -> Any:
    aid = await stack.assignment()
    return await stack.client.post(f"/me/assignments/{aid}/acknowledge", data={}, headers=stack.auth(user))


async def events_anonymous(stack: Stack, user: str | None) -> Any:
    return await stack.client.get("/api/v1/events", headers=stack.auth(user))


def post(path: str, body: dict[str, Any] | None = None) -> Callable[[Stack, str | None], Awaitable[Any]]:
    async def run(stack: Stack, user: str | None) -> Any:
        return await stack.client.post(path, json=body, headers=stack.auth(user))

    return run


def form(path: str, data: dict[str, str]) -> Callable[[Stack, str | None], Awaitable[Any]]:
    async def run(stack: Stack, user: str | None) -> Any:
        return await stack.client.post(path, data=data, headers=stack.auth(user))

    return run


PERIOD = f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}"
ADJUST = {"amount": "123.00", "reason": "matrix"}


async def approve(stack: Stack, user: str | None) -> Any:
    """Each manager approves an award of their own team (an award is approved once); the rest try A1's."""
    person = {"admin": "S1", "line_manager": "TL-N"}.get(user or "", "A1")
    return await stack.client.post(f"{PERIOD}/awards/{person}/approve", headers=stack.auth(user))


async def delegation(stack: Stack) -> str:
    """A fresh delegation of A1's refund decisions to their colleague A2 (made by HR over gRPC); returns its id."""
    _, end = stack.period()
    d = assignments_pb2.Delegation(
        delegator=A1, delegate="people/A2", categories=["decisionCategories/customer-refund"], reason="holiday"
    )
    d.valid_to.FromDatetime(end)
    created = await stack.roles.assignments.CreateDelegation(
        assignments_pb2.CreateDelegationRequest(delegation=d), metadata=stack.roles.admin, timeout=10
    )
    return str(created.name.split("/", 1)[1])


async def delegate(stack: Stack, user: str | None) -> Any:
    """Everyone delegates to A2 (A1's colleague); HR on A1's behalf; A2 to themselves."""
    body: dict[str, Any] = {"delegate": "people/A2", "categories": ["decisionCategories/customer-refund"]}
    body |= {"validTo": stack.period()[1].isoformat(), "reason": "matrix"}
    if user == "admin":
        body["delegator"] = A1
    return await stack.client.post("/api/v1/delegations", json=body, headers=stack.auth(user))


async def read_delegation(stack: Stack, user: str | None) -> Any:
    return await stack.client.get(f"/api/v1/delegations/{await delegation(stack)}", headers=stack.auth(user))


async def revoke(stack: Stack, user: str | None) -> Any:
    return await stack.client.post(f"/api/v1/delegations/{await delegation(stack)}/revoke", headers=stack.auth(user))


async def web_delegate(stack: Stack, user: str | None) -> Any:
    data = {"delegate": "people/A2", "categories": "decisionCategories/customer-refund", "validTo": "2041-01-01"}
    return await stack.client.post("/me/delegations", data=data, headers=stack.auth(user))


async def web_revoke(stack: Stack, user: str | None) -> Any:
    path = f"/me/delegations/{await delegation(stack)}/revoke"
    return await stack.client.post(path, data={}, headers=stack.auth(user))


OK_ALL = by(200, 200, 200, 200, 200, 401)
MANAGERS = by(200, 200, 200, 403, 403, 401)
CASES = [
    Case("GET /api/v1/me", OK_ALL, get("/api/v1/me")),
    Case("GET /api/v1/me/team", OK_ALL, get("/api/v1/me/team")),
    Case(
        "GET /api/v1/me/team?orgUnit",
        by(200, 200, 404, 404, 404, 401),
        get("/api/v1/me/team", orgUnit="orgUnits/SALES-N"),
    ),
    Case("GET /api/v1/orgUnits", by(200, 200, 404, 404, 404, 401), get("/api/v1/orgUnits", parent="orgUnits/SALES")),
    Case("GET /api/v1/orgUnits (no parent)", by(200, 422, 422, 422, 422, 401), get("/api/v1/orgUnits")),
    Case("GET /api/v1/orgUnits/{id}", by(200, 200, 404, 200, 200, 401), get("/api/v1/orgUnits/SALES-N")),
    Case("GET /api/v1/orgUnits/{id} (parent)", by(200, 200, 404, 404, 404, 401), get("/api/v1/orgUnits/SALES")),
    Case("GET /api/v1/people", by(200, 200, 404, 404, 404, 401), get("/api/v1/people", orgUnit="orgUnits/SALES-N")),
    Case("GET /api/v1/people/{id}", by(200, 200, 404, 200, 404, 401), get("/api/v1/people/A1")),
    Case("GET /api/v1/roles", OK_ALL, get("/api/v1/roles")),
    Case("GET /api/v1/roles/{id}", OK_ALL, get("/api/v1/roles/service-agent")),
    Case("GET /api/v1/decisionCategories", OK_ALL, get("/api/v1/decisionCategories")),
    Case("GET /api/v1/decisionCategories/{id}", OK_ALL, get("/api/v1/decisionCategories/customer-refund")),
    Case("GET /api/v1/assignments", by(200, 200, 404, 200, 404, 401), get("/api/v1/assignments", person=A1)),
    Case(
        "GET /api/v1/assignments?orgUnit",
        by(200, 200, 404, 404, 404, 401),
        get("/api/v1/assignments", orgUnit="orgUnits/SALES-N", includeDescendants="true"),
    ),
    Case("GET /api/v1/assignments/{id}", by(200, 200, 404, 200, 404, 401), read_assignment),
    Case("POST /api/v1/assignments", by(201, 201, 404, 403, 403, 401), create),
    Case("POST /api/v1/assignments/{id}/end", by(200, 200, 404, 403, 403, 401), end),
    Case("POST /api/v1/assignments/{id}/acknowledge", by(403, 403, 404, 200, 404, 401), acknowledge),
    Case(
        "GET /api/v1/people/{id}/decisions/{category}",
        by(200, 200, 404, 200, 404, 401),
        get("/api/v1/people/A1/decisions/customer-refund", amount="100"),
    ),
    Case("GET /api/v1/events (anonymous only: a stream)", {None: 401}, events_anonymous),
    # Skills and role fit.
    Case("GET /api/v1/skills", OK_ALL, get("/api/v1/skills")),
    Case("GET /api/v1/people/{id}/skillLevels", by(200, 200, 404, 200, 404, 401), get("/api/v1/people/A1/skillLevels")),
    Case(
        "POST /api/v1/people/{id}/assessments",
        by(201, 201, 404, 201, 404, 401),
        post("/api/v1/people/A1/assessments", {"skill": "skills/customer-empathy", "level": 3}),
    ),
    Case(
        "GET /api/v1/people/{id}/roleFits/{id}",
        by(200, 200, 404, 200, 404, 401),
        get("/api/v1/people/A1/roleFits/service-agent"),
    ),
    Case("GET /api/v1/roles/{id}/candidates", MANAGERS, get("/api/v1/roles/service-agent/candidates")),
    Case(
        "GET /api/v1/roles/{id}/candidates?orgUnit",
        by(200, 200, 404, 403, 403, 401),
        get("/api/v1/roles/service-agent/candidates", orgUnit="orgUnits/SALES-N"),
    ),
    Case(
        "GET /api/v1/orgUnits/{id}/skillMatrix",
        by(200, 200, 404, 403, 403, 401),
        get("/api/v1/orgUnits/SALES-N/skillMatrix"),
    ),
    # Incentives.
    Case("GET /api/v1/schemes", OK_ALL, get("/api/v1/schemes")),
    Case("GET /api/v1/schemes/{id}/periods/{period}", MANAGERS, get(PERIOD)),
    Case("GET /api/v1/schemes/{id}/periods/{period}/scorecards", OK_ALL, get(f"{PERIOD}/scorecards")),
    Case(
        "GET /api/v1/schemes/{id}/periods/{period}/scorecards/{id}",
        by(200, 200, 404, 200, 404, 401),
        get(f"{PERIOD}/scorecards/A1"),
    ),
    Case("GET /api/v1/schemes/{id}/periods/{period}/awards", OK_ALL, get(f"{PERIOD}/awards")),
    Case(
        "GET /api/v1/schemes/{id}/periods/{period}/awards/{id}",
        by(200, 200, 404, 200, 404, 401),
        get(f"{PERIOD}/awards/A1"),
    ),
    Case(
        "POST /api/v1/schemes/{id}/periods/{period}/awards/{id}/adjust",
        by(200, 200, 404, 403, 403, 401),
        post(f"{PERIOD}/awards/A1/adjust", ADJUST),
    ),
    Case("POST /api/v1/schemes/{id}/periods/{period}/awards/{id}/approve", by(200, 200, 404, 403, 403, 401), approve),
    # Delegations.
    Case("POST /api/v1/delegations", by(201, 201, 404, 201, 409, 401), delegate),
    Case("GET /api/v1/delegations", OK_ALL, get("/api/v1/delegations")),
    Case(
        "GET /api/v1/delegations?delegator", by(200, 200, 404, 200, 404, 401), get("/api/v1/delegations", delegator=A1)
    ),
    Case("GET /api/v1/delegations/{id}", by(200, 200, 404, 200, 200, 401), read_delegation),
    Case("POST /api/v1/delegations/{id}/revoke", by(200, 403, 404, 200, 403, 401), revoke),
    # Pages: anonymous visitors are sent to the sign-in page.
    Case("GET /", by(303, 303, 303, 303, 303, 303), get("/")),
    Case("GET /signin", by(200, 200, 200, 200, 200, 200), get("/signin")),
    Case("GET /healthz", by(200, 200, 200, 200, 200, 200), get("/healthz")),
    Case("GET /.well-known/jwks.json", by(200, 200, 200, 200, 200, 200), get("/.well-known/jwks.json")),
    Case(
        "GET /.well-known/openid-configuration",
        by(200, 200, 200, 200, 200, 200),
        get("/.well-known/openid-configuration"),
    ),
    Case("GET /team", by(200, 200, 200, 200, 200, 303), get("/team")),
    Case("GET /team?unit", by(200, 200, 404, 404, 404, 303), get("/team", unit="orgUnits/SALES-N")),
    Case("GET /team/table", by(200, 200, 200, 200, 200, 303), get("/team/table")),
    Case("GET /assign", by(200, 200, 200, 403, 403, 303), get("/assign")),
    Case("POST /assign", by(303, 303, 404, 403, 403, 303), web_assign),
    Case("POST /assignments/{id}/end", by(303, 303, 404, 403, 403, 303), web_end),
    Case(
        "GET /decide",
        by(200, 200, 404, 200, 404, 303),
        get("/decide", person=A1, category="decisionCategories/customer-refund"),
    ),
    Case("GET /me", by(200, 200, 200, 200, 200, 303), get("/me")),
    Case("POST /me/assignments/{id}/acknowledge", by(403, 403, 404, 303, 404, 303), web_acknowledge),
    Case("GET /assign?role", by(200, 200, 200, 403, 403, 303), get("/assign", role="roles/service-agent")),
    Case("GET /skills", by(200, 200, 200, 403, 403, 303), get("/skills")),
    Case("GET /skills?unit", by(200, 200, 404, 403, 403, 303), get("/skills", unit="orgUnits/SALES-N")),
    Case("GET /me/skills", by(200, 200, 200, 200, 200, 303), get("/me/skills")),
    Case(
        "POST /me/skills",
        by(403, 303, 303, 303, 303, 303),
        form("/me/skills", {"skill": "skills/customer-empathy", "level": "3"}),
    ),
    Case("GET /awards", by(200, 200, 200, 403, 403, 303), get("/awards")),
    Case(
        "POST /awards/{id}/{period}/{id}/{action}",
        by(303, 303, 404, 403, 403, 303),
        form(f"/awards/{SCHEME}/{CLOSED}/A1/adjust", ADJUST),
    ),
    Case("GET /me/scorecard", by(200, 200, 200, 200, 200, 303), get("/me/scorecard")),
    Case("GET /metrics", by(200, 200, 200, 200, 200, 200), get("/metrics")),
    Case("GET /me/delegations", by(200, 200, 200, 200, 200, 303), get("/me/delegations")),
    Case("POST /me/delegations", by(403, 303, 404, 303, 409, 303), web_delegate),
    Case("POST /me/delegations/{id}/revoke", by(303, 403, 404, 303, 403, 303), web_revoke),
]
# /signin and /signout (POST) are public and guarded by the same-origin check: tests/gateway/test_api.py;
# the provider sign-in (public, guarded by state, nonce and PKCE): tests/gateway/test_oidc.py.
SEPARATELY_TESTED = {("POST", "/signin"), ("POST", "/signout"), ("GET", "/signin/oidc"), ("GET", "/signin/callback")}


async def test_the_matrix_covers_every_route() -> None:  # create_app needs an event loop
    covered = {tuple(c.name.split(" (")[0].split("?")[0].split(" ", 1)) for c in CASES} | SEPARATELY_TESTED
    app = create_app()
    routes = {(m, r.path) for r in all_routes(list(app.routes)) if isinstance(r, APIRoute) for m in r.methods}
    normalised = {
        (
            m,
            p.replace("{unit_id}", "{id}")
            .replace("{person_id}", "{id}")
            .replace("{role_id}", "{id}")
            .replace("{category_id}", "{id}")
            .replace("{assignment_id}", "{id}")
            .replace("{scheme_id}", "{id}")
            .replace("{delegation_id}", "{id}")
            .replace("{period_id}", "{period}")
            .replace("/decisions/{id}", "/decisions/{category}"),
        )
        for m, p in routes
    }
    assert normalised <= covered, f"routes missing from the matrix: {sorted(normalised - covered)}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_route_by_user(stack: Stack, case: Case) -> None:
    got = {}
    for kind in case.expected:
        response = await case.call(stack, kind)
        got[kind] = response.status_code
        if response.status_code == 404 and response.headers.get("content-type") == "application/problem+json":
            assert response.json()["detail"] == "No such resource, or it is not visible to you."
    assert got == case.expected


async def test_another_line_manager_sees_nothing_of_the_team_in_lists(stack: Stack) -> None:
    c, other = stack.client, stack.auth("other_manager")
    for path, key in ((f"{PERIOD}/scorecards", "scorecards"), (f"{PERIOD}/awards", "awards")):
        seen = {x["person"] for x in (await c.get(path, headers=other)).json()[key]}
        assert seen and not seen & {"people/A1", "people/A2", "people/TL-N", "people/VP-S"}, (path, seen)
    candidates = (await c.get("/api/v1/roles/service-agent/candidates", headers=other)).json()["candidates"]
    assert candidates and all(x["orgUnit"] in ("orgUnits/SERVICE", "orgUnits/SVC-1") for x in candidates)
    page = await c.get("/awards", params={"period": CLOSED}, headers=other)
    assert "Agent one" not in page.text and "Service one" in page.text


async def test_another_line_manager_cannot_see_the_team(stack: Stack) -> None:
    team = (await stack.client.get("/api/v1/me/team", headers=stack.auth("other_manager"))).json()
    assert not {m["person"]["name"] for m in team["members"]} & {"people/A1", "people/A2", "people/TL-N"}
    page = await stack.client.get("/team", headers=stack.auth("other_manager"))
    assert "Agent one" not in page.text and "Service one" in page.text
