"""Fixtures for the incentives service: a real roles service feeding it over
JetStream, real NATS, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import nats
import pytest
from engage.incentives.v1 import (
    awards_pb2_grpc,
    behaviours_pb2,
    behaviours_pb2_grpc,
    schemes_pb2,
    schemes_pb2_grpc,
    scorecards_pb2_grpc,
)
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import select

from services.incentives.main import IncentivesApp, build
from services.incentives.migrate import migrate
from services.incentives.settings import IncentivesSettings
from services.incentives.store.tables import ProjectedAssignmentRow, ProjectedPersonRow
from services.platform.cloudevents import CloudEvent
from services.platform.consumer import DeadLetterRow
from services.platform.db import Database
from tests.conftest import BACKENDS, RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.support.company import PEOPLE, load_company
from tests.support.nats_server import NatsServer
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint
from tests.support.waiting import eventually


def incentives_settings(db_url: str, nats_url: str, mint: TokenMint, **overrides: object) -> IncentivesSettings:
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
        "consumer_max_deliver": 2,
    }
    values.update(overrides)
    return IncentivesSettings(**values)  # type: ignore[arg-type]


@dataclass
class IncentivesClient:
    """A running incentives service and stubs to call it as anyone."""

    app: IncentivesApp
    nats: NatsServer
    mint: TokenMint
    channel: grpc.aio.Channel
    admin: tuple[tuple[str, str], ...]
    crm: tuple[tuple[str, str], ...]

    @property
    def behaviours(self) -> behaviours_pb2_grpc.BehaviourServiceStub:
        return behaviours_pb2_grpc.BehaviourServiceStub(self.channel)

    @property
    def schemes(self) -> schemes_pb2_grpc.SchemeServiceStub:
        return schemes_pb2_grpc.SchemeServiceStub(self.channel)

    @property
    def scorecards(self) -> scorecards_pb2_grpc.ScorecardServiceStub:
        return scorecards_pb2_grpc.ScorecardServiceStub(self.channel)

    @property
    def awards(self) -> awards_pb2_grpc.AwardServiceStub:
        return awards_pb2_grpc.AwardServiceStub(self.channel)

    def as_person(self, person_id: str) -> tuple[tuple[str, str], ...]:
        return self.mint.metadata(f"user-{person_id}", person=person_id)

    async def settle(self, timeout: float = 15.0) -> None:
        await eventually(self.app.relay.backlog, lambda n: n == 0, timeout, "an empty outbox")

    async def projected(self) -> tuple[set[str], int]:
        async with self.app.db.read() as s:
            people = set((await s.exec(select(ProjectedPersonRow.id))).all())
            assignments = len((await s.exec(select(ProjectedAssignmentRow.id))).all())
        return people, assignments

    async def wait_projected(self, people: int, assignments: int = 0) -> None:
        await eventually(
            self.projected,
            lambda p: len(p[0]) >= people and p[1] >= assignments,
            what=f"{people} people and {assignments} assignments projected",
        )

    async def dead_letters(self) -> list[DeadLetterRow]:
        async with self.app.db.read() as s:
            return list((await s.exec(select(DeadLetterRow))).all())

    async def record(self, *events: behaviours_pb2.ObservedEvent) -> behaviours_pb2.RecordBehaviourEventsResponse:
        request = behaviours_pb2.RecordBehaviourEventsRequest(events=list(events))
        return await self.behaviours.RecordBehaviourEvents(request, metadata=self.crm, timeout=10)

    async def publish_crm(self, event_id: str, body: bytes, behaviour: str = "case", msg_id: str = "") -> None:
        """Publishes a CloudEvent as a CRM system would, on the CRM stream."""
        event = CloudEvent(
            type="crm.behaviours.v1.behaviour.observed",
            source="/crm/service-cloud",
            subject=f"cases/{event_id}",
            data=body,
            dataschema="proto:engage.incentives.v1.BehaviourObserved",
            id=event_id,
        )
        headers = event.headers()
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        nc = await nats.connect(self.nats.url)
        try:
            await nc.jetstream().publish(f"crm.behaviours.v1.{behaviour}", body, headers=headers, timeout=5)
        finally:
            await nc.close()


async def start_incentives(db_url: str, nats: NatsServer, mint: TokenMint, **overrides: object) -> IncentivesClient:
    db = Database(db_url)
    await migrate(db)
    app = build(incentives_settings(db_url, nats.url, mint, **overrides), db)
    port = await app.start()
    await app.link.ready.wait()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return IncentivesClient(
        app,
        nats,
        mint,
        channel,
        mint.metadata("hr-admin", roles=["hr_admin"]),
        mint.metadata("crm-connector", roles=["crm_system"]),
    )


@dataclass
class World:
    """The roles service with the small company loaded, and the incentives service fed by its events."""

    roles: RolesClient
    inc: IncentivesClient


@pytest.fixture
async def roles_producer(workdir: Path, mint: TokenMint, nats_server: NatsServer) -> AsyncIterator[RolesClient]:
    """The roles service as the producer: one backend is enough; incentives runs on both."""
    client = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    yield client
    await client.channel.close(None)
    await client.app.stop()


@pytest.fixture(params=BACKENDS)
async def incentives(
    request: pytest.FixtureRequest, workdir: Path, mint: TokenMint, nats_server: NatsServer
) -> AsyncIterator[IncentivesClient]:
    url, pg_name = await fresh_database_url(request.param, workdir)
    client = await start_incentives(url, nats_server, mint)
    try:
        yield client
    finally:
        await client.channel.close(None)
        await client.app.stop()
        if pg_name:
            await _drop_pg_database(pg_name)


@pytest.fixture
async def world(roles_producer: RolesClient, incentives: IncentivesClient) -> World:
    await load_company(roles_producer)
    await incentives.wait_projected(len(PEOPLE))
    return World(roles_producer, incentives)


# ---- building requests ---------------------------------------------------------------


def ts(*args: int) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime(*args, tzinfo=UTC))  # type: ignore[misc]
    return t


def observed(
    behaviour: str,
    people: list[str] | dict[str, float],
    at: Timestamp,
    value: float = 0.0,
    **fields: str,
) -> behaviours_pb2.BehaviourObserved:
    shares = people if isinstance(people, dict) else dict.fromkeys(people, 0.0)
    return behaviours_pb2.BehaviourObserved(
        behaviour_type=f"behaviourTypes/{behaviour}",
        credits=[behaviours_pb2.Credit(person=f"people/{p}", share=s) for p, s in shares.items()],
        occurred_at=at,
        value=value,
        source_system="test-crm",
        **fields,
    )


def event(event_id: str, *args: object, **kwargs: str) -> behaviours_pb2.ObservedEvent:
    return behaviours_pb2.ObservedEvent(id=event_id, observation=observed(*args, **kwargs))  # type: ignore[arg-type]


def collaboration_scheme(**changes: object) -> schemes_pb2.Scheme:
    """Monthly in Amsterdam: cross-department cases (60%) and CSAT (40%), paid in EUR with an accelerator."""
    scheme = schemes_pb2.Scheme(
        display_name="Collaboration bonus",
        description="Rewards solving customer cases across departments, with happy customers.",
        calendar=schemes_pb2.Calendar(period_kind=schemes_pb2.PERIOD_KIND_MONTH, time_zone="Europe/Amsterdam"),
        measures=[
            schemes_pb2.Measure(
                id="cross-cases",
                display_name="Cases solved with another department",
                behaviour_types=["behaviourTypes/case-solved-cross-department"],
                aggregation=schemes_pb2.AGGREGATION_COUNT,
                weight=60,
                target=2,
                cap=2,
            ),
            schemes_pb2.Measure(
                id="csat",
                display_name="Customer satisfaction",
                behaviour_types=["behaviourTypes/customer-satisfaction-score"],
                aggregation=schemes_pb2.AGGREGATION_AVERAGE,
                weight=40,
                target=4,
                cap=1.25,
            ),
        ],
        credit_split=schemes_pb2.CREDIT_SPLIT_SHARED,
        payout=schemes_pb2.PayoutCurve(
            currency_code="EUR",
            target_payout=1000,
            threshold=0.25,
            tiers=[schemes_pb2.Tier(from_attainment=0, rate=1), schemes_pb2.Tier(from_attainment=1, rate=2)],
            cap_attainment=2,
        ),
        budget=10000,
    )
    for key, value in changes.items():
        if isinstance(value, Message):
            getattr(scheme, key).CopyFrom(value)
        else:
            setattr(scheme, key, value)
    return scheme


async def create_and_publish(
    inc: IncentivesClient, scheme: schemes_pb2.Scheme, scheme_id: str = "collab", effective_from: str = "2025-01-01"
) -> schemes_pb2.Scheme:
    await inc.schemes.CreateScheme(
        schemes_pb2.CreateSchemeRequest(scheme_id=scheme_id, scheme=scheme), metadata=inc.admin, timeout=10
    )
    return await inc.schemes.PublishScheme(
        schemes_pb2.PublishSchemeRequest(name=f"schemes/{scheme_id}", effective_from=effective_from),
        metadata=inc.admin,
        timeout=10,
    )
