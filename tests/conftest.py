"""Fixtures: a real NATS JetStream and real SQLite and PostgreSQL databases.

PostgreSQL is at ENGAGE_TEST_POSTGRES (default 127.0.0.1:5432, database
`test`); each test module gets a fresh database of its own, dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from engage.roles.v1 import assignments_pb2_grpc, decisions_pb2_grpc, directory_pb2_grpc, roles_pb2_grpc

from services.platform.db import Database
from services.platform.grpc_server import ServiceApp
from services.roles.main import build
from services.roles.migrate import migrate
from services.roles.settings import RolesSettings
from tests.support.nats_server import NatsServer
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint
from tests.support.waiting import eventually

POSTGRES = os.environ.get("ENGAGE_TEST_POSTGRES", "postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engage")


@pytest.fixture(scope="session")
def mint(workdir: Path) -> TokenMint:
    return TokenMint(workdir)


async def _create_pg_database() -> str:
    name = f"engage_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(f"postgresql://{POSTGRES}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(f"postgresql://{POSTGRES}")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_database_url(backend: str, workdir: Path) -> tuple[str, str | None]:
    """A URL of an empty database; the second item is a PostgreSQL name to drop."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", None
    name = await _create_pg_database()
    server = POSTGRES.rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{server}/{name}", name


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@dataclass
class RolesClient:
    """A running roles service and stubs to call it as anyone."""

    app: ServiceApp
    nats: NatsServer
    mint: TokenMint
    channel: grpc.aio.Channel
    admin: tuple[tuple[str, str], ...]

    @property
    def directory(self) -> directory_pb2_grpc.DirectoryServiceStub:
        return directory_pb2_grpc.DirectoryServiceStub(self.channel)

    @property
    def roles(self) -> roles_pb2_grpc.RoleServiceStub:
        return roles_pb2_grpc.RoleServiceStub(self.channel)

    @property
    def assignments(self) -> assignments_pb2_grpc.AssignmentServiceStub:
        return assignments_pb2_grpc.AssignmentServiceStub(self.channel)

    @property
    def decisions(self) -> decisions_pb2_grpc.DecisionServiceStub:
        return decisions_pb2_grpc.DecisionServiceStub(self.channel)

    async def settle(self, timeout: float = 15.0) -> None:
        """Waits until the outbox has published everything committed so far."""
        await eventually(self.app.relay.backlog, lambda n: n == 0, timeout, "an empty outbox")

    def as_person(self, person_id: str) -> tuple[tuple[str, str], ...]:
        return self.mint.metadata(f"user-{person_id}", person=person_id)


def roles_settings(db_url: str, nats_url: str, mint: TokenMint, **overrides: object) -> RolesSettings:
    values: dict[str, object] = {
        "database_url": db_url,
        "nats_url": nats_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "auth_mode": "jwt",
        "auth_jwks_file": str(mint.jwks_file),
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        "drain_seconds": 0.0,
        "grace_seconds": 2.0,
        "outbox_poll_seconds": 0.2,
        "log_format": "console",
    }
    values.update(overrides)
    return RolesSettings(**values)  # type: ignore[arg-type]


async def start_roles(db_url: str, nats: NatsServer, mint: TokenMint, **overrides: object) -> RolesClient:
    db = Database(db_url)
    await migrate(db)
    app = build(roles_settings(db_url, nats.url, mint, **overrides), db)
    port = await app.start()
    await app.link.ready.wait()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return RolesClient(app, nats, mint, channel, mint.metadata("hr-admin", roles=["hr_admin"]))


@pytest.fixture(params=BACKENDS)
async def roles(
    request: pytest.FixtureRequest, workdir: Path, mint: TokenMint, nats_server: NatsServer
) -> AsyncIterator[RolesClient]:
    url, pg_name = await fresh_database_url(request.param, workdir)
    client = await start_roles(url, nats_server, mint)
    try:
        yield client
    finally:
        await client.channel.close(None)
        await client.app.stop()
        if pg_name:
            await _drop_pg_database(pg_name)
