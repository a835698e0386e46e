"""The API through the real roles service: reads, changes, etags, problems, request ids."""

from __future__ import annotations

import time
import uuid

import pytest
from engage.roles.v1 import assignments_pb2

from gateway.app import create_app
from tests.conftest import fresh_database_url, start_roles
from tests.gateway.conftest import Stack, asgi_client, gateway_settings
from tests.support.company import load_company
from tests.support.waiting import eventually

PROBLEM = "application/problem+json"


async def test_me_and_team_of_a_manager(stack: Stack) -> None:
    c = stack.client
    me = (await c.get("/api/v1/me", headers=stack.auth("line_manager"))).json()
    assert me["person"]["name"] == "people/VP-S"
    assert me["heads"] == ["orgUnits/SALES"]
    team = (await c.get("/api/v1/me/team", headers=stack.auth("line_manager"))).json()
    names = {m["person"]["name"] for m in team["members"]}
    assert names == {"people/VP-S", "people/TL-N", "people/A1", "people/A2"}
    assert {u["name"] for u in team["orgUnits"]} == {"orgUnits/SALES", "orgUnits/SALES-N"}
    other = (await c.get("/api/v1/me/team", headers=stack.auth("other_manager"))).json()
    assert "people/A1" not in {m["person"]["name"] for m in other["members"]}


async def test_lists_paginate_like_the_service(stack: Stack) -> None:
    c = stack.client
    first = await c.get("/api/v1/people", params={"pageSize": 4}, headers=stack.auth("admin"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["people"]) == 4 and body["nextPageToken"]
    rest = await c.get(
        "/api/v1/people", params={"pageSize": 4, "pageToken": body["nextPageToken"]}, headers=stack.auth("admin")
    )
    assert [p["name"] for p in rest.json()["people"]] and not set(p["name"] for p in rest.json()["people"]) & {
        p["name"] for p in body["people"]
    }
    scoped = await c.get(
        "/api/v1/people",
        params={"orgUnit": "orgUnits/SALES", "includeDescendants": "true"},
        headers=stack.auth("line_manager"),
    )
    assert {p["name"] for p in scoped.json()["people"]} == {"people/VP-S", "people/TL-N", "people/A1", "people/A2"}
    # A page token bound to other filters is refused by the service: a 422 naming the field.
    bad = await c.get(
        "/api/v1/people", params={"pageToken": body["nextPageToken"], "status": "LEAVE"}, headers=stack.auth("admin")
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


async def test_assign_read_end_with_etags(stack: Stack) -> None:
    c = stack.client
    start, end = stack.period()
    created = await c.post(
        "/api/v1/assignments",
        json={
            "person": "people/A1",
            "role": "roles/service-agent",
            "orgUnit": "orgUnits/SALES-N",
            "validFrom": start.isoformat(),
            "validTo": end.isoformat(),
            "reason": "covers the northern accounts",
        },
        headers={**stack.auth("line_manager"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201, created.text
    a = created.json()
    assert a["assignedBy"] == "people/VP-S"  # the user's token reached the service
    assert a["state"] == "SCHEDULED" and a["acknowledgementState"] == "PENDING"
    assert created.headers["location"] == f"/api/v1/{a['name']}"
    etag = created.headers["etag"]
    got = await c.get(created.headers["location"], headers=stack.auth("line_manager"))
    assert got.headers["etag"] == etag
    # The holder acknowledges; the etag changes; the manager's stale If-Match is refused.
    ack = await c.post(f"/api/v1/{a['name']}/acknowledge", headers={**stack.auth("employee_self"), "If-Match": etag})
    assert ack.status_code == 200, ack.text
    assert ack.json()["acknowledgementState"] == "ACKNOWLEDGED"
    stale = await c.post(
        f"/api/v1/{a['name']}/end",
        json={"reason": "reorganised"},
        headers={**stack.auth("line_manager"), "If-Match": etag},
    )
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    assert stale.json()["reason"] == "ETAG_MISMATCH"
    ended = await c.post(
        f"/api/v1/{a['name']}/end",
        json={"reason": "reorganised", "endTime": start.isoformat()},
        headers={**stack.auth("line_manager"), "If-Match": ack.headers["etag"]},
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["endedBy"] == "people/VP-S"
    # The same role again in an overlapping period is a conflict.
    start2, end2 = stack.period()
    body = {"person": "people/A1", "role": "roles/service-agent", "orgUnit": "orgUnits/SALES-N"}
    body |= {"validFrom": start2.isoformat(), "validTo": end2.isoformat()}
    assert (await c.post("/api/v1/assignments", json=body, headers=stack.auth("admin"))).status_code == 201
    again = await c.post("/api/v1/assignments", json=body, headers=stack.auth("admin"))
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["reason"] == "DUPLICATE_ASSIGNMENT"


async def test_stale_etag_caught_by_the_service_is_412(stack: Stack) -> None:
    """The gateway's own check passes (it reads first); a change in between is the service's ABORTED."""
    assignment_id = await stack.assignment()
    first = await stack.client.get(f"/api/v1/assignments/{assignment_id}", headers=stack.auth("admin"))
    await stack.roles.assignments.AcknowledgeAssignment(
        assignments_pb2.AcknowledgeAssignmentRequest(name=f"assignments/{assignment_id}"),
        metadata=stack.roles.as_person("A1"),
        timeout=10,
    )
    end = await stack.client.post(
        f"/api/v1/assignments/{assignment_id}/end",
        json=stack.end_body(assignment_id),
        headers={**stack.auth("admin"), "If-Match": first.headers["etag"]},
    )
    assert end.status_code == 412


async def test_problem_shapes(stack: Stack) -> None:
    c = stack.client
    # Request validation: 422 with each field named.
    bad = await c.post("/api/v1/assignments", json={"person": "nobody", "role": "roles/x"}, headers=stack.auth("admin"))
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    body = bad.json()
    assert body["status"] == 422 and body["type"].endswith("/invalid-request")
    assert {"body.person", "body.orgUnit"} <= {e["field"] for e in body["errors"]}
    # Service validation: the service's field violation comes through.
    start, _ = stack.period()
    backwards = await c.post(
        "/api/v1/assignments",
        json={
            "person": "people/A1",
            "role": "roles/service-agent",
            "orgUnit": "orgUnits/SALES-N",
            "validFrom": start.isoformat(),
            "validTo": start.replace(month=1, day=1, year=start.year - 1).isoformat(),
        },
        headers=stack.auth("admin"),
    )
    assert backwards.status_code == 422, backwards.text
    assert backwards.json()["errors"] and all(e["field"] for e in backwards.json()["errors"])
    # A level-2 person cannot hold a level-4 role: a conflict with the service's reason.
    low = await c.post(
        "/api/v1/assignments",
        json={"person": "people/A2", "role": "roles/team-lead", "orgUnit": "orgUnits/SALES-N"},
        headers=stack.auth("admin"),
    )
    assert low.status_code == 409 and low.json()["reason"] == "MANAGEMENT_LEVEL_TOO_LOW"
    # Not signed in.
    anon = await c.get("/api/v1/me")
    assert anon.status_code == 401 and anon.headers["content-type"] == PROBLEM
    assert anon.headers["www-authenticate"].startswith("Bearer")
    forged = await c.get("/api/v1/me", headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401
    # Unknown things are 404 problems.
    missing = await c.get("/api/v1/roles/no-such-role", headers=stack.auth("admin"))
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_not_yours_looks_exactly_like_not_there(stack: Stack) -> None:
    c = stack.client
    theirs = await c.get("/api/v1/people/A1", headers=stack.auth("other_manager"))
    absent = await c.get("/api/v1/people/NOBODY", headers=stack.auth("other_manager"))
    assert theirs.status_code == absent.status_code == 404
    assert theirs.content == absent.content
    assignment_id = await stack.assignment()
    theirs = await c.post(f"/api/v1/assignments/{assignment_id}/end", json={}, headers=stack.auth("other_manager"))
    absent = await c.post("/api/v1/assignments/nope/end", json={}, headers=stack.auth("other_manager"))
    assert theirs.status_code == absent.status_code == 404
    assert theirs.content == absent.content


async def test_request_ids_are_returned_and_generated(stack: Stack) -> None:
    given = await stack.client.get("/api/v1/roles", headers={**stack.auth("admin"), "X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    made = await stack.client.get("/api/v1/roles", headers=stack.auth("admin"))
    assert uuid.UUID(made.headers["x-request-id"])
    junk = await stack.client.get("/api/v1/roles", headers={**stack.auth("admin"), "X-Request-ID": "bad id\t"})
    assert junk.headers["x-request-id"] != "bad id\t"


async def test_who_decides(stack: Stack) -> None:
    c = stack.client
    await stack.assignment()  # scheduled only: A1 holds no role now
    answer = await c.get(
        "/api/v1/people/A1/decisions/customer-refund", params={"amount": "350.00"}, headers=stack.auth("employee_self")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] in ("DECIDE", "ESCALATE") and body["explanation"] and body["chain"]
    unknown = await c.get("/api/v1/people/A1/decisions/no-such-category", headers=stack.auth("employee_self"))
    assert unknown.status_code == 404


async def test_rate_limit_is_per_user(stack: Stack) -> None:
    app = create_app(stack.settings.model_copy(update={"rate_per_second": 0.5, "rate_burst": 3}))
    async with asgi_client(app) as client:
        statuses = [(await client.get("/api/v1/roles", headers=stack.auth("admin"))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/api/v1/roles", headers=stack.auth("admin"))
        assert limited.headers["content-type"] == PROBLEM and int(limited.headers["retry-after"]) >= 1
        other = await client.get("/api/v1/roles", headers=stack.auth("line_manager"))
        assert other.status_code == 200
    await app.state.gateway.roles.close()


async def test_unavailable_roles_service_is_503_with_retry_after(stack: Stack, workdir, mint, module_nats) -> None:  # type: ignore[no-untyped-def]
    url, _ = await fresh_database_url("sqlite", workdir)
    roles = await start_roles(url, module_nats, mint)
    await load_company(roles)
    app = create_app(gateway_settings(workdir, mint, roles.app.port, module_nats.url, grpc_deadline_seconds=1.0))
    async with asgi_client(app) as client:
        up = await client.get("/api/v1/roles", headers=stack.auth("admin"))
        assert up.status_code == 200
        await roles.channel.close(None)
        await roles.app.stop()
        down = await client.get("/api/v1/roles", headers=stack.auth("admin"))
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == PROBLEM and int(down.headers["retry-after"]) > 0
        page = await client.get("/team", headers=stack.auth("admin"))
        assert page.status_code == 503 and "retry-after" in page.headers
    await app.state.gateway.roles.close()


@pytest.mark.parametrize("method", ["POST"])
async def test_cookie_sessions_refuse_cross_site_changes(stack: Stack, method: str) -> None:
    c = stack.client
    no_origin = await c.post("/signin", data={"user": "VP-S"})
    assert no_origin.status_code == 403
    signed = await c.post("/signin", data={"user": "VP-S"}, headers={"Origin": "http://gateway.test"})
    assert signed.status_code == 303
    cookie = signed.cookies[stack.settings.cookie_name]
    assert "httponly" in signed.headers["set-cookie"].lower() and "samesite=lax" in signed.headers["set-cookie"].lower()
    c.cookies.set(stack.settings.cookie_name, cookie)
    me = await c.get("/api/v1/me")
    assert me.json()["person"]["name"] == "people/VP-S"
    assignment_id = await stack.assignment()
    cross = await c.request(
        method,
        f"/api/v1/assignments/{assignment_id}/end",
        json={},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and cross.json()["reason"] == "CSRF"
    same = await c.request(
        method,
        f"/api/v1/assignments/{assignment_id}/end",
        json=stack.end_body(assignment_id),
        headers={"Origin": "http://gateway.test"},
    )
    assert same.status_code == 200, same.text
    c.cookies.clear()


async def test_dev_issuer_publishes_its_keys(stack: Stack) -> None:
    config = (await stack.client.get("/.well-known/openid-configuration")).json()
    assert config["issuer"] == stack.settings.oidc_issuer
    jwks = (await stack.client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"][0]["kid"] == stack.mint.kid and "d" not in jwks["keys"][0]


async def test_a_remembered_token_is_refused_once_it_expires(stack: Stack) -> None:
    token = stack.mint.token("short-lived", roles=["hr_admin"], exp=int(time.time()) + 2)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await stack.client.get("/api/v1/roles", headers=headers)).status_code == 200
    assert (await stack.client.get("/api/v1/roles", headers=headers)).status_code == 200  # remembered

    async def status() -> int:
        return (await stack.client.get("/api/v1/me", headers=headers)).status_code

    assert await eventually(status, lambda code: code == 401, timeout=10, what="the expired token refused") == 401
