"""Network faults between the gateway and each service (a TCP proxy in front of each of them).

Whatever the network to roles, skills or incentives does (latency beyond the
deadline, a partition that swallows bytes, connections reset) the gateway
answers within its deadline with 503 and Retry-After, never hangs; a change
whose answer was lost is retried (with its Idempotency-Key, or its If-Match
for awards) and happens once; and once the network is back every call works
again without a restart. A fault on one service leaves the others answering.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from engage.incentives.v1 import awards_pb2
from engage.roles.v1 import assignments_pb2
from engage.skills.v1 import assessments_pb2

from gateway.app import create_app
from tests.conftest import RolesClient, fresh_database_url, start_roles
from tests.gateway.conftest import CLOSED, SCHEME, asgi_client, gateway_settings, seed_incentives, seed_skills
from tests.integration.incentives.conftest import IncentivesClient, start_incentives
from tests.integration.skills.conftest import SkillsClient, start_skills, stop_skills
from tests.support.company import load_company
from tests.support.events import published
from tests.support.nats_server import NatsServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

DEADLINE = 1.0
SLACK = 1.5  # the gateway's own work and the event loop on two shared cores
AWARD = f"/api/v1/schemes/{SCHEME}/periods/{CLOSED}/awards/A1"


@dataclass
class Through:
    roles: RolesClient
    skills: SkillsClient
    incentives: IncentivesClient
    proxies: dict[str, TcpProxy]  # service -> the proxy the gateway reaches it through
    http: httpx.AsyncClient
    headers: dict[str, str]
    etags: dict[str, str] = field(default_factory=dict)  # award adjustment key -> etag read before it

    async def timed(
        self, method: str, url: str, *, json: object = None, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.http.request(method, url, json=json, headers={**self.headers, **(headers or {})})
        return response, time.monotonic() - started


@pytest.fixture(scope="module")
async def through(tmp_path_factory: pytest.TempPathFactory, workdir: Path, mint) -> AsyncIterator[Through]:
    """The three services (SQLite) with the gateway test company, each behind its own proxy."""
    nats_server = NatsServer(tmp_path_factory.mktemp("gw-network-nats"))
    nats_server.start()
    # Skills and incentives first, so they follow the roles events from the company's first import.
    skills = await start_skills((await fresh_database_url("sqlite", workdir))[0], nats_server, mint)
    incentives = await start_incentives((await fresh_database_url("sqlite", workdir))[0], nats_server, mint)
    roles = await start_roles((await fresh_database_url("sqlite", workdir))[0], nats_server, mint)
    await load_company(roles)
    await asyncio.gather(seed_skills(skills), seed_incentives(incentives))
    ports = {"roles": roles.app.port, "skills": skills.app.port, "incentives": incentives.app.port}
    proxies = {name: TcpProxy("127.0.0.1", port) for name, port in ports.items()}
    for proxy in proxies.values():
        await proxy.start()
    settings = gateway_settings(
        workdir,
        mint,
        proxies["roles"].port,
        nats_server.url,
        skills_target=proxies["skills"].address,
        incentives_target=proxies["incentives"].address,
        grpc_deadline_seconds=DEADLINE,
        retry_after_seconds=1,
    )
    app = create_app(settings)
    http = asgi_client(app)
    try:
        token = mint.token("hr", roles=["hr_admin"])
        yield Through(roles, skills, incentives, proxies, http, {"Authorization": f"Bearer {token}"})
    finally:
        await http.aclose()
        gw = app.state.gateway
        for client in (gw.roles, gw.skills, gw.incentives):
            await client.close()
        for proxy in proxies.values():
            await proxy.stop()
        await roles.channel.close(None)
        await roles.app.stop()
        await stop_skills(skills)
        await incentives.channel.close(None)
        await incentives.app.stop()
        nats_server.stop()


@pytest.fixture(autouse=True)
def healed(through: Through) -> object:
    """Each test starts and ends with the network whole."""
    for proxy in through.proxies.values():
        proxy.set("pass")
    yield
    for proxy in through.proxies.values():
        proxy.set("pass")


@dataclass(frozen=True)
class Change:
    """A change through the gateway that must happen once however often its request is retried."""

    send: Callable[[Through, str], Awaitable[httpx.Response]]  # (system, key) -> response
    done: Callable[[Through, str], Awaitable[int]]  # how many times the change with this key was made
    ok: frozenset[int]  # statuses of a retry that found the change made
    prepare: Callable[[Through, str], Awaitable[None]] | None = None  # what the client reads before the fault


def assignment_body(key: str) -> dict[str, str]:
    year = 2200 + uuid.UUID(key).int % 7000  # a year of its own: assignments of one role may not overlap
    return {
        "person": "people/A1",
        "role": "roles/service-agent",
        "orgUnit": "orgUnits/SALES-N",
        "validFrom": f"{year}-01-01T00:00:00Z",
        "validTo": f"{year}-12-01T00:00:00Z",
        "reason": key,
    }


async def assign(t: Through, key: str) -> httpx.Response:
    response, _ = await t.timed(
        "POST", "/api/v1/assignments", json=assignment_body(key), headers={"Idempotency-Key": key}
    )
    return response


async def assignments_made(t: Through, key: str) -> int:
    return sum(a.reason == key for a in await _assignments_of_a1(t.roles))


async def assess(t: Through, key: str) -> httpx.Response:
    body = {"skill": "skills/customer-empathy", "level": 3, "note": key}
    response, _ = await t.timed("POST", "/api/v1/people/A1/assessments", json=body, headers={"Idempotency-Key": key})
    return response


async def assessments_made(t: Through, key: str) -> int:
    page = await t.skills.assessments.ListAssessments(
        assessments_pb2.ListAssessmentsRequest(parent="people/A1", page_size=1000), metadata=t.skills.admin, timeout=5
    )
    return sum(a.note == key for a in page.assessments)


async def read_award(t: Through, key: str) -> None:
    read, _ = await t.timed("GET", AWARD)
    t.etags[key] = read.headers["ETag"]


async def adjust(t: Through, key: str) -> httpx.Response:
    """Adjusts A1's award with the etag read before the fault: a retry after a lost answer is 412."""
    body = {"amount": f"{100 + len(t.etags)}.00", "reason": key}
    response, _ = await t.timed("POST", f"{AWARD}/adjust", json=body, headers={"If-Match": t.etags[key]})
    return response


async def adjustments_made(t: Through, key: str) -> int:
    award = await t.incentives.awards.GetAward(
        awards_pb2.GetAwardRequest(name=AWARD.removeprefix("/api/v1/")), metadata=t.incentives.admin, timeout=5
    )
    return sum(a.reason == key for a in award.adjustments)


# Per service: reads that must fail fast during the fault, and a change that must happen once.
READS = {
    "roles": ["/api/v1/roles", "/api/v1/people/A1"],
    "skills": ["/api/v1/skills", "/api/v1/people/A1/skillLevels"],
    "incentives": ["/api/v1/schemes", AWARD],
}
CHANGES = {
    "roles": Change(assign, assignments_made, frozenset({201})),
    "skills": Change(assess, assessments_made, frozenset({201})),
    "incentives": Change(adjust, adjustments_made, frozenset({200, 412}), read_award),
}
# A read of another service, which must keep answering while this one is cut off.
OTHERS = {"roles": "/api/v1/skills", "skills": "/api/v1/roles", "incentives": "/api/v1/roles"}
MODES = [("delay", 3.0), ("blackhole", 0.0), ("cut", 0.0)]
CASES = [(service, mode, delay) for service in READS for mode, delay in MODES]


@pytest.mark.parametrize(("service", "mode", "delay"), CASES, ids=[f"{s}-{m}" for s, m, _ in CASES])
async def test_the_gateway_answers_503_within_its_deadline_and_recovers(
    through: Through, service: str, mode: str, delay: float, scenario
):
    scenario.load = f"GET {', GET '.join(p.removeprefix('/api/v1') for p in READS[service])}, a change"
    change = CHANGES[service]
    for path in READS[service]:
        ok, _ = await through.timed("GET", path)
        assert ok.status_code == 200, (path, ok.text)
    key = str(uuid.uuid4())
    if change.prepare is not None:
        await change.prepare(through, key)
    through.proxies[service].set(mode, delay)
    worst = 0.0
    for path in [*READS[service], READS[service][0]]:
        response, elapsed = await through.timed("GET", path)
        worst = max(worst, elapsed)
        assert response.status_code == 503, (mode, path, response.status_code, response.text)
        assert response.headers["Retry-After"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert elapsed < DEADLINE + SLACK, (mode, path, elapsed)
    other, _ = await through.timed("GET", OTHERS[service])
    assert other.status_code == 200, "a fault on one service took another down"
    started = time.monotonic()
    failed = await change.send(through, key)
    assert failed.status_code == 503 and time.monotonic() - started < DEADLINE + SLACK
    through.proxies[service].set("pass")
    started = time.monotonic()
    await eventually(
        lambda: through.timed("GET", READS[service][0]),
        lambda r: r[0].status_code == 200,
        30,
        "the gateway to recover",
    )
    recovery = time.monotonic() - started
    # The partition held the change's bytes: they may arrive now and commit. The retry finds it made.
    retried = await change.send(through, key)
    assert retried.status_code in change.ok, retried.text
    made = await change.done(through, key)
    scenario.faults = (
        f"{service} {mode}{f' {delay:g}s' if delay else ''}: slowest 503 {worst:.2f}s, recovered in {recovery:.1f}s"
    )
    scenario.count([key], [key] * made)
    assert made == 1  # once, however the fault and the retry fell


async def test_a_create_whose_answer_is_lost_is_made_once_when_retried_with_its_key(through: Through, scenario):
    """Latency that lets the request through but makes its answer miss the deadline."""
    scenario.load = "5 POST /assignments, each retried with its Idempotency-Key"
    before = {a.name for a in await _assignments_of_a1(through.roles)}
    through.proxies["roles"].set("delay", 0.7)
    keys = [str(uuid.uuid4()) for _ in range(5)]
    lost = 0
    for key in keys:
        started = time.monotonic()
        response = await assign(through, key)
        assert time.monotonic() - started < DEADLINE + SLACK
        lost += response.status_code == 503
    through.proxies["roles"].set("pass")
    committed_before_retry = sum([await assignments_made(through, key) for key in keys])
    names = []
    for key in keys:
        response = await eventually(
            lambda key=key: assign(through, key), lambda r: r.status_code != 503, 30, "the retry to get through"
        )
        assert response.status_code == 201, response.text
        names.append(response.json()["name"])
    after = [a.name for a in await _assignments_of_a1(through.roles) if a.name not in before]
    await through.roles.settle()
    events = await published(through.roles.nats.url)
    created = [e.subject for e in events if e.type == "engage.roles.v1.assignment.created" and e.subject in names]
    scenario.faults = f"0.7s latency each way, {lost} answers lost after {committed_before_retry} commits"
    scenario.count(names, created)
    assert lost >= 1, "no answer was lost: the scenario did not test a retry"
    assert committed_before_retry >= 1, "no create got through before the retries"
    assert sorted(after) == sorted(names)  # each create once, the lost ones included
    assert sorted(created) == sorted(names)


async def _assignments_of_a1(roles: RolesClient) -> list[assignments_pb2.Assignment]:
    page = await roles.assignments.ListAssignments(
        assignments_pb2.ListAssignmentsRequest(person="people/A1", page_size=1000), metadata=roles.admin, timeout=5
    )
    return list(page.assignments)
