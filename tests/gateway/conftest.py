"""Gateway fixtures: the real roles, skills and incentives services (SQLite) with the test company,
its skills and an incentive scheme with a closed period, a real NATS, and the gateway in-process
(httpx over ASGI) or on a real port (uvicorn, for the browser)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from engage.incentives.v1 import awards_pb2
from engage.roles.v1 import assignments_pb2
from engage.skills.v1 import assessments_pb2
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import RolesClient, fresh_database_url, start_roles
from tests.integration.incentives.conftest import (
    IncentivesClient,
    collaboration_scheme,
    create_and_publish,
    event,
    start_incentives,
    ts,
)
from tests.integration.skills.conftest import SkillsClient, start_skills, stop_skills
from tests.support.company import PEOPLE, load_company
from tests.support.nats_server import NatsServer
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint

# Who is who in tests/support/company.py, and the kinds of user the authorisation tests use.
USERS: dict[str, dict[str, Any]] = {
    "admin": {"roles": ["hr_admin"]},
    "line_manager": {"person": "VP-S"},  # heads SALES > SALES-N, where A1 works
    "other_manager": {"person": "VP-C"},  # heads SERVICE: another line of business
    "employee_self": {"person": "A1"},
    "employee_other": {"person": "A2"},  # A1's colleague in SALES-N
}
DEMO_USERS = [
    {"key": "hr", "label": "HR administrator", "roles": ["hr_admin"]},
    {"key": "VP-S", "label": "VP Sales", "person": "VP-S"},
    {"key": "TL-N", "label": "Team lead north", "person": "TL-N"},
    {"key": "VP-C", "label": "VP Service", "person": "VP-C"},
    {"key": "A1", "label": "Agent one", "person": "A1"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The seeded skills (effective levels; service-agent requires customer-empathy 3, mandatory)
# and the incentive scheme with January 2025 closed (awards proposed for A1, A2 and S1).
LEVELS = {"A1": 4, "A2": 2, "S1": 3, "TL-N": 1}
SCHEME = "collab"
CLOSED = "2025-01"


@dataclass
class Stack:
    roles: RolesClient
    skills: SkillsClient
    incentives: IncentivesClient
    mint: TokenMint
    settings: GatewaySettings
    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    starts: dict[str, str] = field(default_factory=dict)  # assignment id -> validFrom (ISO)
    _period: Iterator[int] = field(default_factory=lambda: itertools.count(2040))

    def auth(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def period(self) -> tuple[datetime, datetime]:
        """A future year of its own, so assignments of the same role never overlap."""
        year = next(self._period)
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year, 12, 1, tzinfo=UTC)

    async def assignment(self, person: str = "A1", unit: str = "SALES-N", role: str = "service-agent") -> str:
        """A fresh scheduled assignment made by an HR admin through gRPC; returns its id."""
        start, end = self.period()
        a = assignments_pb2.Assignment(person=f"people/{person}", role=f"roles/{role}", org_unit=f"orgUnits/{unit}")
        a.valid_from.FromDatetime(start)
        a.valid_to.FromDatetime(end)
        created = await self.roles.assignments.CreateAssignment(
            assignments_pb2.CreateAssignmentRequest(assignment=a), metadata=self.roles.admin, timeout=10
        )
        assignment_id = str(created.name.split("/", 1)[1])
        self.starts[assignment_id] = start.isoformat()
        return assignment_id

    def current_period(self) -> str:
        """The collab scheme's current month (Amsterdam)."""
        from zoneinfo import ZoneInfo

        return datetime.now(UTC).astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%Y-%m")

    def end_body(self, assignment_id: str) -> dict[str, str]:
        """Ends a scheduled assignment where it starts (ending before its start is invalid)."""
        return {"reason": "test", "endTime": self.starts.get(assignment_id, "")} if assignment_id in self.starts else {}


def gateway_settings(
    workdir: Path, mint: TokenMint, roles_port: int, nats_url: str, **overrides: Any
) -> GatewaySettings:
    key_file = workdir / "gateway-dev-key.pem"
    if not key_file.exists():
        key_file.write_bytes(
            mint.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    values: dict[str, Any] = {
        "roles_target": f"127.0.0.1:{roles_port}",
        # Nothing listens on port 1: a gateway built without the fixture's services finds them down.
        "skills_target": "127.0.0.1:1",
        "incentives_target": "127.0.0.1:1",
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_file": str(mint.jwks_file),
        # The development issuer signs with the test key, so the roles service trusts its tokens too.
        "dev_issuer": True,
        "dev_issuer_key_file": str(key_file),
        "dev_issuer_jwks_file": str(workdir / "gateway-dev-jwks.json"),
        "dev_issuer_kid": mint.kid,
        "demo_users": json.dumps(DEMO_USERS),
        "rate_per_second": 10_000.0,
        "rate_burst": 10_000,
        "nats_url": nats_url,
        "live_updates": False,
        "directory_cache_seconds": 0.5,
        "grpc_deadline_seconds": 5.0,
        "log_format": "console",
    }
    values.update(overrides)
    return GatewaySettings(**values)


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=30)


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("gw-nats"))
    server.start()
    yield server
    server.stop()


async def seed_skills(skills: SkillsClient) -> None:
    await skills.wait_for_people({p[0] for p in PEOPLE})
    for person, level in LEVELS.items():
        assessment = assessments_pb2.Assessment(
            skill="skills/customer-empathy", level=level, source=assessments_pb2.ASSESSMENT_SOURCE_MANAGER
        )
        await skills.assessments.CreateAssessment(
            assessments_pb2.CreateAssessmentRequest(parent=f"people/{person}", assessment=assessment),
            metadata=skills.admin,
            timeout=10,
        )


async def seed_incentives(inc: IncentivesClient) -> None:
    await inc.wait_projected(len(PEOPLE))
    await create_and_publish(inc, collaboration_scheme(), SCHEME, "2025-01-01")
    recently = ts(2025, 1, 1)
    recently.FromDatetime(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5))
    await inc.record(
        event("a1-1", "case-solved-cross-department", ["A1", "S1"], ts(2025, 1, 6)),
        event("a1-2", "case-solved-cross-department", ["A1"], ts(2025, 1, 9)),
        event("a1-csat", "customer-satisfaction-score", ["A1"], ts(2025, 1, 9), value=5),
        event("a2-1", "case-solved-cross-department", ["A2"], ts(2025, 1, 12)),
        event("s1-1", "case-solved-cross-department", ["S1"], ts(2025, 1, 14)),
        event("a1-now", "case-solved-cross-department", ["A1"], recently),
    )
    await inc.awards.ClosePeriod(
        awards_pb2.ClosePeriodRequest(name=f"schemes/{SCHEME}/periods/{CLOSED}"), metadata=inc.admin, timeout=20
    )


@pytest.fixture(scope="module")
async def stack(workdir: Path, mint: TokenMint, module_nats: NatsServer) -> AsyncIterator[Stack]:
    # Skills and incentives start first so they follow the roles events from the company's first import.
    skills = await start_skills((await fresh_database_url("sqlite", workdir))[0], module_nats, mint)
    inc = await start_incentives((await fresh_database_url("sqlite", workdir))[0], module_nats, mint)
    roles = await start_roles((await fresh_database_url("sqlite", workdir))[0], module_nats, mint)
    await load_company(roles)
    await asyncio.gather(seed_skills(skills), seed_incentives(inc))
    settings = gateway_settings(
        workdir,
        mint,
        roles.app.port,
        module_nats.url,
        skills_target=f"127.0.0.1:{skills.app.port}",
        incentives_target=f"127.0.0.1:{inc.app.port}",
    )
    app = create_app(settings)
    client = asgi_client(app)
    tokens = {kind: mint.token(f"user-{kind}", **claims) for kind, claims in USERS.items()}
    try:
        yield Stack(roles, skills, inc, mint, settings, app, client, tokens)
    finally:
        await client.aclose()
        for service in (app.state.gateway.roles, app.state.gateway.skills, app.state.gateway.incentives):
            await service.close()
        await roles.channel.close(None)
        await roles.app.stop()
        await stop_skills(skills)
        await inc.channel.close(None)
        await inc.app.stop()


@contextlib.asynccontextmanager
async def served(app: FastAPI, lifespan: str = "on") -> AsyncIterator[str]:
    """The app on a real port (with its lifespan: live events on, unless `lifespan="off"`), yielding its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1, lifespan=lifespan
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
