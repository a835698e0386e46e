"""Fixtures of the skills tests: the skills service alone, or with the roles
service on the same NATS (each on a fresh database of the same backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from engage.skills.v1 import assessments_pb2_grpc, catalogue_pb2_grpc, fit_pb2_grpc
from sqlmodel import select

from services.platform.db import Database
from services.skills.main import SkillsApp, build
from services.skills.migrate import migrate
from services.skills.settings import SkillsSettings
from services.skills.store.tables import ProjectedPersonRow
from tests.conftest import BACKENDS, RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.support.nats_server import NatsServer
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint
from tests.support.waiting import eventually


@dataclass
class SkillsClient:
    """A running skills service and stubs to call it as anyone."""

    app: SkillsApp
    nats: NatsServer
    mint: TokenMint
    channel: grpc.aio.Channel
    admin: tuple[tuple[str, str], ...]

    @property
    def catalogue(self) -> catalogue_pb2_grpc.CatalogueServiceStub:
        return catalogue_pb2_grpc.CatalogueServiceStub(self.channel)

    @property
    def assessments(self) -> assessments_pb2_grpc.AssessmentServiceStub:
        return assessments_pb2_grpc.AssessmentServiceStub(self.channel)

    @property
    def fit(self) -> fit_pb2_grpc.RoleFitServiceStub:
        return fit_pb2_grpc.RoleFitServiceStub(self.channel)

    def as_person(self, person_id: str, *roles: str) -> tuple[tuple[str, str], ...]:
        return self.mint.metadata(f"user-{person_id}", person=person_id, roles=list(roles))

    def as_roles(self, *roles: str) -> tuple[tuple[str, str], ...]:
        return self.mint.metadata("-".join(roles) or "service", roles=list(roles))

    async def settle(self, timeout: float = 15.0) -> None:
        """Waits until the outbox has published everything committed so far."""
        await eventually(self.app.relay.backlog, lambda n: n == 0, timeout, "an empty skills outbox")

    async def known_people(self) -> set[str]:
        async with self.app.db.read() as s:
            return set((await s.exec(select(ProjectedPersonRow.id))).all())

    async def wait_for_people(self, people: set[str], timeout: float = 15.0) -> None:
        await eventually(self.known_people, lambda known: people <= known, timeout, f"{sorted(people)} projected")


def skills_settings(db_url: str, nats_url: str, mint: TokenMint) -> SkillsSettings:
    return SkillsSettings(
        database_url=db_url,
        nats_url=nats_url,
        grpc_port=0,
        metrics_port=0,
        auth_mode="jwt",
        auth_jwks_file=str(mint.jwks_file),
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        drain_seconds=0.0,
        grace_seconds=2.0,
        outbox_poll_seconds=0.1,
        log_format="console",
        expiry_sweep_seconds=0.2,
    )


async def start_skills(db_url: str, nats: NatsServer, mint: TokenMint) -> SkillsClient:
    db = Database(db_url)
    await migrate(db)
    app = build(skills_settings(db_url, nats.url, mint), db)
    port = await app.start()
    await app.link.ready.wait()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return SkillsClient(app, nats, mint, channel, mint.metadata("hr-admin", roles=["hr_admin"]))


async def stop_skills(client: SkillsClient) -> None:
    await client.channel.close(None)
    await client.app.stop()


@pytest.fixture(params=BACKENDS)
async def skills(
    request: pytest.FixtureRequest, workdir: Path, mint: TokenMint, nats_server: NatsServer
) -> AsyncIterator[SkillsClient]:
    url, pg_name = await fresh_database_url(request.param, workdir)
    client = await start_skills(url, nats_server, mint)
    try:
        yield client
    finally:
        await stop_skills(client)
        if pg_name:
            await _drop_pg_database(pg_name)


@dataclass
class Stack:
    roles: RolesClient
    skills: SkillsClient


@pytest.fixture(params=BACKENDS)
async def stack(
    request: pytest.FixtureRequest, workdir: Path, mint: TokenMint, nats_server: NatsServer
) -> AsyncIterator[Stack]:
    """The roles and the skills service on one NATS, each with its own database."""
    roles_url, roles_pg = await fresh_database_url(request.param, workdir)
    skills_url, skills_pg = await fresh_database_url(request.param, workdir)
    roles = await start_roles(roles_url, nats_server, mint)
    skills = await start_skills(skills_url, nats_server, mint)
    try:
        yield Stack(roles, skills)
    finally:
        await stop_skills(skills)
        await roles.channel.close(None)
        await roles.app.stop()
        for name in (roles_pg, skills_pg):
            if name:
                await _drop_pg_database(name)
