"""Network faults between the gateway and the roles service (a TCP proxy in between).

Whatever the network does (latency beyond the deadline, a partition that
swallows bytes, connections reset) the gateway answers within its deadline
with 503 and Retry-After, never hangs; a create whose answer was lost is
retried with its Idempotency-Key and exists once; and once the network is
back every call works again without a restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from engage.roles.v1 import assignments_pb2

from gateway.app import create_app
from tests.conftest import RolesClient, start_roles
from tests.gateway.conftest import asgi_client, gateway_settings
from tests.support.company import load_company
from tests.support.events import published
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

DEADLINE = 1.0
SLACK = 1.5  # the gateway's own work and the event loop on two shared cores


@dataclass
class Through:
    roles: RolesClient
    proxy: TcpProxy
    http: httpx.AsyncClient
    headers: dict[str, str]

    async def timed(
        self, method: str, url: str, *, json: object = None, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.http.request(method, url, json=json, headers={**self.headers, **(headers or {})})
        return response, time.monotonic() - started


@pytest.fixture
async def through(workdir: Path, mint, nats_server) -> AsyncIterator[Through]:
    roles = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    await load_company(roles)
    proxy = TcpProxy("127.0.0.1", roles.app.port)
    await proxy.start()
    settings = gateway_settings(
        workdir, mint, proxy.port, nats_server.url, grpc_deadline_seconds=DEADLINE, retry_after_seconds=1
    )
    app = create_app(settings)
    http = asgi_client(app)
    try:
        yield Through(roles, proxy, http, {"Authorization": f"Bearer {mint.token('hr', roles=['hr_admin'])}"})
    finally:
        await http.aclose()
        await app.state.gateway.roles.close()
        await proxy.stop()
        await roles.channel.close(None)
        await roles.app.stop()


def create_body(year: int) -> dict[str, str]:
    return {
        "person": "people/A1",
        "role": "roles/service-agent",
        "orgUnit": "orgUnits/SALES-N",
        "validFrom": f"{year}-01-01T00:00:00Z",
        "validTo": f"{year}-12-01T00:00:00Z",
        "reason": "network faults",
    }


async def assignments_of_a1(roles: RolesClient) -> list[str]:
    page = await roles.assignments.ListAssignments(
        assignments_pb2.ListAssignmentsRequest(person="people/A1", page_size=1000), metadata=roles.admin, timeout=5
    )
    return [a.name for a in page.assignments]


@pytest.mark.parametrize(("mode", "delay"), [("delay", 3.0), ("blackhole", 0.0), ("cut", 0.0)])
async def test_the_gateway_answers_503_within_its_deadline_and_recovers(through: Through, mode, delay, scenario):
    scenario.load = "GET /roles, GET /people/A1, POST /assignments"
    ok, _ = await through.timed("GET", "/api/v1/roles")
    assert ok.status_code == 200
    through.proxy.set(mode, delay)
    worst = 0.0
    for method, url in [("GET", "/api/v1/roles"), ("GET", "/api/v1/people/A1"), ("GET", "/api/v1/roles")]:
        response, elapsed = await through.timed(method, url)
        worst = max(worst, elapsed)
        assert response.status_code == 503, (mode, url, response.status_code, response.text)
        assert response.headers["Retry-After"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert elapsed < DEADLINE + SLACK, (mode, url, elapsed)
    key = str(uuid.uuid4())
    failed, _ = await through.timed(
        "POST", "/api/v1/assignments", json=create_body(2200), headers={"Idempotency-Key": key}
    )
    assert failed.status_code == 503
    through.proxy.set("pass")
    started = time.monotonic()
    await eventually(
        lambda: through.timed("GET", "/api/v1/roles"), lambda r: r[0].status_code == 200, 30, "the gateway to recover"
    )
    recovery = time.monotonic() - started
    scenario.faults = f"{mode}{f' {delay:g}s' if delay else ''}: slowest 503 {worst:.2f}s, recovered in {recovery:.1f}s"
    retried, _ = await through.timed(
        "POST", "/api/v1/assignments", json=create_body(2200), headers={"Idempotency-Key": key}
    )
    assert retried.status_code == 201, retried.text
    assert (await assignments_of_a1(through.roles)).count(retried.json()["name"]) == 1


async def test_a_create_whose_answer_is_lost_is_made_once_when_retried_with_its_key(through: Through, scenario):
    """Latency that lets the request through but makes its answer miss the deadline."""
    scenario.load = "5 POST /assignments, each retried with its Idempotency-Key"
    through.proxy.set("delay", 0.7)
    keys = {2300 + i: str(uuid.uuid4()) for i in range(5)}
    lost = 0
    for year, key in keys.items():
        response, elapsed = await through.timed(
            "POST", "/api/v1/assignments", json=create_body(year), headers={"Idempotency-Key": key}
        )
        assert elapsed < DEADLINE + SLACK
        lost += response.status_code == 503
    through.proxy.set("pass")
    committed_before_retry = await assignments_of_a1(through.roles)
    names = []
    for year, key in keys.items():

        async def retry(year: int = year, key: str = key) -> tuple[httpx.Response, float]:
            return await through.timed(
                "POST", "/api/v1/assignments", json=create_body(year), headers={"Idempotency-Key": key}
            )

        response, _ = await eventually(retry, lambda r: r[0].status_code != 503, 30, "the retry to get through")
        assert response.status_code == 201, response.text
        names.append(response.json()["name"])
    after = await assignments_of_a1(through.roles)
    await through.roles.settle()
    events = await published(through.roles.nats.url)
    scenario.faults = f"0.7s latency each way, {lost} answers lost after {len(committed_before_retry)} commits"
    scenario.count(names, [e.subject for e in events if e.type == "engage.roles.v1.assignment.created"])
    assert lost >= 1, "no answer was lost: the scenario did not test a retry"
    assert len(committed_before_retry) >= 1, "no create got through before the retries"
    assert sorted(after) == sorted(names)  # each create once, the lost ones included
    assert sorted(e.subject for e in events if e.type.endswith("assignment.created")) == sorted(names)
