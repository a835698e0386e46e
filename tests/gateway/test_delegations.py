"""Delegations through the gateway: a person lends their refund decisions to a colleague, who may then decide;
the delegator revokes with the etag they read."""

from __future__ import annotations

from engage.roles.v1 import assignments_pb2

from tests.gateway.conftest import Stack

PROBLEM = "application/problem+json"


async def test_a_delegation_lets_a_colleague_decide_until_it_is_revoked(stack: Stack) -> None:
    c = stack.client
    held = assignments_pb2.Assignment(person="people/A1", role="roles/service-agent", org_unit="orgUnits/SALES-N")
    await stack.roles.assignments.CreateAssignment(
        assignments_pb2.CreateAssignmentRequest(assignment=held), metadata=stack.roles.admin, timeout=10
    )
    refund = "/api/v1/people/A2/decisions/customer-refund"
    before = (await c.get(refund, params={"amount": "150"}, headers=stack.auth("employee_other"))).json()
    assert before["outcome"] == "ESCALATE"

    _, until = stack.period()
    created = await c.post(
        "/api/v1/delegations",
        json={
            "delegate": "people/A2",
            "categories": ["decisionCategories/customer-refund"],
            "maxAmount": {"currencyCode": "EUR", "amount": "200"},
            "validTo": until.isoformat(),
            "reason": "two weeks of holiday",
        },
        headers=stack.auth("employee_self"),
    )
    assert created.status_code == 201, created.text
    d = created.json()
    assert d["delegator"] == "people/A1" and d["createdBy"] == "people/A1"  # the acting identity reached the service
    assert created.headers["location"] == f"/api/v1/{d['name']}"

    during = (await c.get(refund, params={"amount": "150"}, headers=stack.auth("employee_other"))).json()
    assert during["outcome"] == "DECIDE" and any(s["kind"] == "DELEGATION" for s in during["chain"]), during
    above = (await c.get(refund, params={"amount": "300"}, headers=stack.auth("employee_other"))).json()
    assert above["outcome"] == "ESCALATE"  # beyond the delegated limit

    for user in ("employee_self", "employee_other"):  # both ends see it; a manager of the team too
        listed = (await c.get("/api/v1/delegations", headers=stack.auth(user))).json()["delegations"]
        assert d["name"] in {x["name"] for x in listed}
    team = await c.get("/api/v1/delegations", params={"delegator": "people/A1"}, headers=stack.auth("line_manager"))
    assert d["name"] in {x["name"] for x in team.json()["delegations"]}
    other = await c.get(f"/api/v1/{d['name']}", headers=stack.auth("other_manager"))
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM

    # Only the delegator (or HR) revokes, and only with the current etag.
    by_delegate = await c.post(f"/api/v1/{d['name']}/revoke", headers=stack.auth("employee_other"))
    assert by_delegate.status_code == 403
    stale = await c.post(f"/api/v1/{d['name']}/revoke", headers={**stack.auth("employee_self"), "If-Match": '"stale"'})
    assert stale.status_code == 412
    revoked = await c.post(
        f"/api/v1/{d['name']}/revoke", headers={**stack.auth("employee_self"), "If-Match": created.headers["etag"]}
    )
    assert revoked.status_code == 200 and revoked.json()["revokeTime"], revoked.text
    after = (await c.get(refund, params={"amount": "150"}, headers=stack.auth("employee_other"))).json()
    assert after["outcome"] == "ESCALATE"


async def test_nobody_delegates_someone_elses_rights_or_to_a_stranger(stack: Stack) -> None:
    c = stack.client
    _, until = stack.period()
    body = {"categories": ["decisionCategories/customer-refund"], "validTo": until.isoformat()}
    theirs = await c.post(
        "/api/v1/delegations",
        json={**body, "delegator": "people/A2", "delegate": "people/A1"},
        headers=stack.auth("employee_self"),
    )
    assert theirs.status_code == 403
    stranger = await c.post(
        "/api/v1/delegations", json={**body, "delegate": "people/S1"}, headers=stack.auth("employee_self")
    )
    assert stranger.status_code == 404 and stranger.json()["detail"] == "No such resource, or it is not visible to you."
    unknown = await c.post(
        "/api/v1/delegations",
        json={**body, "delegate": "people/A2", "categories": ["decisionCategories/nope"]},
        headers=stack.auth("employee_self"),
    )
    assert unknown.status_code in (404, 422) and unknown.headers["content-type"] == PROBLEM
