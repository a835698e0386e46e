"""Skills, role fit, scorecards and awards through the gateway and the real skills and incentives services."""

from __future__ import annotations

import asyncio

import httpx
from engage.roles.v1 import assignments_pb2

from gateway.app import create_app
from tests.gateway.conftest import CLOSED, SCHEME, Stack, asgi_client, served
from tests.support.waiting import eventually

PROBLEM = "application/problem+json"
AWARDS = f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}/awards"
TEAM = {"people/VP-S", "people/TL-N", "people/A1", "people/A2"}


async def test_a_manager_ranks_the_team_for_a_role_with_gaps(stack: Stack) -> None:
    c = stack.client
    found = await c.get("/api/v1/roles/service-agent/candidates", headers=stack.auth("line_manager"))
    assert found.status_code == 200, found.text
    body = found.json()
    ranked = [x["person"] for x in body["candidates"]]
    # Only the manager's line of business, best first: A1 (4 of 3) fits, A2 (2 of 3) and TL-N (1 of 3) do not.
    assert ranked[0] == "people/A1" and set(ranked) <= {"people/VP-S", "people/TL-N", "people/A1", "people/A2"}
    assert ranked.index("people/A2") < ranked.index("people/TL-N")
    a2 = next(x for x in body["candidates"] if x["person"] == "people/A2")
    assert not a2["fits"]
    assert [(g["skill"], g["requiredLevel"], g["effectiveLevel"], g["gap"]) for g in a2["gaps"]] == [
        ("skills/customer-empathy", 3, 2, 1)
    ]
    assert body["roleVersion"] >= 1
    fits_only = await c.get(
        "/api/v1/roles/service-agent/candidates", params={"fitsOnly": "true"}, headers=stack.auth("line_manager")
    )
    assert [x["person"] for x in fits_only.json()["candidates"]] == ["people/A1"]
    # Another line of business's unit is not theirs to search.
    other = await c.get(
        "/api/v1/roles/service-agent/candidates",
        params={"orgUnit": "orgUnits/SALES"},
        headers=stack.auth("other_manager"),
    )
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM


async def test_role_fit_skill_levels_and_the_team_matrix(stack: Stack) -> None:
    c = stack.client
    fit = (await c.get("/api/v1/people/A2/roleFits/service-agent", headers=stack.auth("employee_other"))).json()
    assert fit["fits"] is False and fit["mandatoryGaps"] == ["skills/customer-empathy"]
    assert fit["skills"][0]["status"] == "BELOW" and fit["score"] == round(2 / 3, 6)
    levels = (await c.get("/api/v1/people/A1/skillLevels", headers=stack.auth("line_manager"))).json()
    assert {(v["skill"], v["level"]) for v in levels["skillLevels"]} == {("skills/customer-empathy", 4)}
    matrix = await c.get("/api/v1/orgUnits/SALES-N/skillMatrix", headers=stack.auth("line_manager"))
    assert matrix.status_code == 200, matrix.text
    rows = {r["person"]: r for r in matrix.json()["rows"]}
    assert set(rows) == {"people/TL-N", "people/A1", "people/A2"}
    assert "skills/customer-empathy" in matrix.json()["skills"]
    col = matrix.json()["skills"].index("skills/customer-empathy")
    assert rows["people/A2"]["cells"][col]["level"] == 2
    denied = await c.get("/api/v1/orgUnits/SALES-N/skillMatrix", headers=stack.auth("other_manager"))
    assert denied.status_code == 404


async def test_an_employee_self_assesses_and_sees_the_claim_next_to_the_level(stack: Stack) -> None:
    c = stack.client
    created = await c.post(
        "/api/v1/people/A1/assessments",
        json={"skill": "skills/customer-empathy", "level": 5, "note": "ran the complaints workshop"},
        headers=stack.auth("employee_self"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "SELF" and created.json()["assessor"] == "people/A1"  # acting identity
    level = next(
        v
        for v in (await c.get("/api/v1/people/A1/skillLevels", headers=stack.auth("employee_self"))).json()[
            "skillLevels"
        ]
        if v["skill"] == "skills/customer-empathy"
    )
    assert level["claimedLevel"] == 5 and level["level"] == 4  # a claim is shown, it does not count
    # A colleague may not assess A1; a manager assesses as MANAGER.
    colleague = await c.post(
        "/api/v1/people/A1/assessments",
        json={"skill": "skills/customer-empathy", "level": 1},
        headers=stack.auth("employee_other"),
    )
    assert colleague.status_code == 404
    manager = await c.post(
        "/api/v1/people/A2/assessments",
        json={"skill": "skills/customer-empathy", "level": 2, "note": "checked on calls"},
        headers=stack.auth("line_manager"),
    )
    assert manager.status_code == 201 and manager.json()["source"] == "MANAGER", manager.text
    unknown = await c.post(
        "/api/v1/people/A1/assessments",
        json={"skill": "skills/no-such-skill", "level": 2},
        headers=stack.auth("employee_self"),
    )
    assert unknown.status_code in (404, 422) and unknown.headers["content-type"] == PROBLEM


async def test_my_scorecard_explains_the_events_that_counted(stack: Stack) -> None:
    c = stack.client
    card = await c.get(f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}/scorecards/A1", headers=stack.auth("employee_self"))
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["state"] == "FINAL" and body["person"] == "people/A1"
    cases = next(line for line in body["lines"] if line["measure"] == "cross-cases")
    assert cases["value"] == 1.5  # one case shared with S1, one alone
    assert {x["behaviourEvent"] for x in cases["contributions"]} == {"behaviourEvents/a1-1", "behaviourEvents/a1-2"}
    assert body["payout"]["currencyCode"] == "EUR"
    current = await c.get(
        f"/api/v1/schemes/{SCHEME}/periods/{stack.current_period()}/scorecards/A1", headers=stack.auth("employee_self")
    )
    assert current.json()["state"] == "OPEN" and current.json()["lines"][0]["contributions"]
    colleague = await c.get(
        f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}/scorecards/A1", headers=stack.auth("employee_other")
    )
    assert colleague.status_code == 404
    listed = (
        await c.get(f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}/scorecards", headers=stack.auth("line_manager"))
    ).json()
    assert {x["person"] for x in listed["scorecards"]} == TEAM  # everyone eligible, only the manager's line
    schemes = (await c.get("/api/v1/schemes", headers=stack.auth("employee_self"))).json()["schemes"]
    assert schemes[0]["name"] == f"schemes/{SCHEME}" and schemes[0]["recentPeriods"][0] == stack.current_period()


async def test_team_shows_role_fit_and_scorecards_next_to_roles(stack: Stack) -> None:
    held = assignments_pb2.Assignment(person="people/A2", role="roles/service-agent", org_unit="orgUnits/SALES-N")
    await stack.roles.assignments.CreateAssignment(
        assignments_pb2.CreateAssignmentRequest(assignment=held), metadata=stack.roles.admin, timeout=10
    )

    async def a2() -> dict:
        team = (await stack.client.get("/api/v1/me/team", headers=stack.auth("line_manager"))).json()
        return next(m for m in team["members"] if m["person"]["name"] == "people/A2")

    member = await eventually(a2, lambda m: bool(m["roleFit"]), 15, "A2's role fit on the team")
    assert member["assignments"][0]["role"] == "roles/service-agent"
    assert member["roleFit"] == [
        {
            "role": "roles/service-agent",
            "score": round(2 / 3, 6),
            "fits": False,
            "mandatoryGaps": ["skills/customer-empathy"],
        }
    ]
    team = (await stack.client.get("/api/v1/me/team", headers=stack.auth("line_manager"))).json()
    a1 = next(m for m in team["members"] if m["person"]["name"] == "people/A1")
    assert a1["scorecards"][0]["state"] == "OPEN" and a1["scorecards"][0]["attainment"] > 0
    assert team["unavailable"] == []


async def test_a_manager_adjusts_and_approves_the_teams_awards(stack: Stack) -> None:
    c = stack.client
    listed = await c.get(AWARDS, params={"state": "PROPOSED"}, headers=stack.auth("line_manager"))
    assert listed.status_code == 200, listed.text
    assert {a["person"] for a in listed.json()["awards"]} == TEAM  # not S1: another line of business
    got = await c.get(f"{AWARDS}/A2", headers=stack.auth("line_manager"))
    etag = got.headers["etag"]
    no_reason = await c.post(
        f"{AWARDS}/A2/adjust", json={"amount": "300.00", "reason": ""}, headers=stack.auth("line_manager")
    )
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"].endswith("reason")
    adjusted = await c.post(
        f"{AWARDS}/A2/adjust",
        json={"amount": "300.00", "reason": "covered the queue during the outage"},
        headers={**stack.auth("line_manager"), "If-Match": etag},
    )
    assert adjusted.status_code == 200, adjusted.text
    award = adjusted.json()
    assert award["amount"] == {"value": "300", "currencyCode": "EUR"} or award["amount"]["value"] in ("300", "300.00")
    assert award["adjustments"][-1]["adjustedBy"] == "people/VP-S"  # acting identity
    stale = await c.post(f"{AWARDS}/A2/approve", headers={**stack.auth("line_manager"), "If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    approved = await c.post(
        f"{AWARDS}/A2/approve", headers={**stack.auth("line_manager"), "If-Match": adjusted.headers["etag"]}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "APPROVED"
    assert approved.json()["approvedBy"] == "people/VP-S"
    again = await c.post(f"{AWARDS}/A2/approve", headers=stack.auth("line_manager"))
    assert again.status_code == 409
    # Nobody decides their own award; another line's manager cannot reach this one.
    own = await c.post(f"{AWARDS}/A1/approve", headers=stack.auth("employee_self"))
    assert own.status_code == 403
    other = await c.post(f"{AWARDS}/A1/approve", headers=stack.auth("other_manager"))
    assert other.status_code == 404 and other.json()["detail"] == "No such resource, or it is not visible to you."
    period = (await c.get(f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}", headers=stack.auth("line_manager"))).json()
    assert period["state"] == "CLOSED" and period["awardCount"] >= len(TEAM) + 1


async def test_team_survives_skills_and_incentives_being_down(stack: Stack) -> None:
    app = create_app(
        stack.settings.model_copy(update={"skills_target": "127.0.0.1:1", "incentives_target": "127.0.0.1:1"})
    )
    async with asgi_client(app) as client:
        team = await client.get("/api/v1/me/team", headers=stack.auth("line_manager"))
        assert team.status_code == 200, team.text
        assert team.json()["unavailable"] == ["skills", "incentives"]
        assert all(m["roleFit"] is None and m["scorecards"] is None for m in team.json()["members"])
        down = await client.get("/api/v1/roles/service-agent/candidates", headers=stack.auth("line_manager"))
        assert down.status_code == 503 and int(down.headers["retry-after"]) > 0
    for service in (app.state.gateway.roles, app.state.gateway.skills, app.state.gateway.incentives):
        await service.close()


async def test_skill_level_changes_and_award_decisions_are_announced_live(stack: Stack) -> None:
    app = create_app(stack.settings.model_copy(update={"live_updates": True}))
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        await app.state.gateway.live.connected.wait()
        async with client.stream("GET", "/api/v1/events", headers=stack.auth("line_manager")) as events:
            lines = events.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            assessed = await stack.client.post(
                "/api/v1/people/A2/assessments",
                json={"skill": "skills/customer-empathy", "level": 4},
                headers=stack.auth("line_manager"),
            )
            assert assessed.status_code == 201, assessed.text

            async def kinds_until(kind: str) -> None:
                async for line in lines:
                    if line == f"event: {kind}":
                        return

            await asyncio.wait_for(kinds_until("skills"), 15)
            approved = await stack.client.post(f"{AWARDS}/VP-S/approve", headers=stack.auth("admin"))
            assert approved.status_code == 200, approved.text
            await asyncio.wait_for(kinds_until("award"), 15)


async def test_a_period_before_the_scheme_is_a_documented_conflict(stack: Stack) -> None:
    path = f"/api/v1/schemes/{SCHEME}/periods/2024-12/scorecards"
    before = await stack.client.get(path, headers=stack.auth("line_manager"))
    assert before.status_code == 409 and before.headers["content-type"] == PROBLEM, before.text
    assert before.json()["reason"] == "NO_VERSION_IN_FORCE"
    documented = (await stack.client.get("/openapi.json")).json()["paths"]
    assert "409" in documented["/api/v1/schemes/{scheme_id}/periods/{period_id}/scorecards"]["get"]["responses"]
    unknown = await stack.client.get("/api/v1/schemes/nope/periods/2025-01/awards", headers=stack.auth("admin"))
    assert unknown.status_code == 404
