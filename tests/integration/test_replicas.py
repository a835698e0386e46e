"""Two replicas of the roles service on one PostgreSQL database and one NATS,
as Kubernetes runs them: both take writes at the same time, both relay the
outbox, and every committed change reaches the JetStream stream exactly once.

Each replica is a ServiceApp with its own Database (its own connection pool),
gRPC server, NATS connection and outbox relay; they share only PostgreSQL and
NATS. The relays claim outbox rows with FOR UPDATE SKIP LOCKED, so no row is
published by both; should a relay crash between the broker's acknowledgement
and marking its rows, the other's republish is dropped by JetStream's
de-duplication (Nats-Msg-Id = event id), shown at the end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from engage.roles.v1 import directory_pb2
from sqlmodel import col, select

from services.platform.outbox import OutboxRow
from tests.conftest import RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.support.events import published
from tests.support.nats_server import NatsServer
from tests.support.tokens import TokenMint

pytestmark = pytest.mark.postgres

PEOPLE = 300
CONCURRENCY = 8  # calls in flight per replica


@pytest.fixture
async def replicas(workdir: Path, mint: TokenMint, nats_server: NatsServer) -> AsyncIterator[list[RolesClient]]:
    url, name = await fresh_database_url("postgresql", workdir)
    assert name is not None
    started: list[RolesClient] = []
    try:
        # Each start runs the migrations, as each pod's init container does:
        # the second run finds the schema current.
        for _ in range(2):
            started.append(await start_roles(url, nats_server, mint))
        yield started
    finally:
        for client in started:
            await client.channel.close(None)
            await client.app.stop()
        await _drop_pg_database(name)


def count_publishes(client: RolesClient) -> list[int]:
    """Counts the outbox rows this replica's relay got acknowledged."""
    counter = [0]
    publish = client.app.relay._publish

    async def counting(rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        done = await publish(rows)
        counter[0] += len(done)
        return done

    client.app.relay._publish = counting  # type: ignore[method-assign]
    return counter


def new_person(i: int) -> directory_pb2.CreatePersonRequest:
    return directory_pb2.CreatePersonRequest(
        person_id=f"R{i:05d}",
        person=directory_pb2.Person(display_name=f"Person {i}", org_unit="orgUnits/OPS", management_level=2),
    )


async def test_two_replicas_publish_every_committed_change_exactly_once(replicas: list[RolesClient]) -> None:
    first, second = replicas
    counts = [count_publishes(r) for r in replicas]
    await first.directory.CreateOrgUnit(
        directory_pb2.CreateOrgUnitRequest(
            org_unit_id="OPS",
            org_unit=directory_pb2.OrgUnit(display_name="Operations", kind=directory_pb2.ORG_UNIT_KIND_COMPANY),
        ),
        metadata=first.admin,
        timeout=10,
    )

    committed: list[str] = []

    async def writer(client: RolesClient, numbers: range) -> None:
        for i in numbers:
            person = await client.directory.CreatePerson(new_person(i), metadata=client.admin, timeout=15)
            committed.append(person.name)

    # Even people through the first replica, odd through the second, each
    # with several calls in flight.
    await asyncio.gather(
        *(
            writer(client, range(k * 2 + parity, PEOPLE, 2 * CONCURRENCY))
            for parity, client in enumerate(replicas)
            for k in range(CONCURRENCY)
        )
    )
    assert len(committed) == PEOPLE == len(set(committed))
    await asyncio.gather(first.settle(timeout=60), second.settle(timeout=60))

    events = await published(first.nats.url)
    people = [e for e in events if e.type == "engage.roles.v1.person.created"]
    assert Counter(e.subject for e in people) == Counter(committed)  # every committed change, once
    assert [e.subject for e in events if e.type == "engage.roles.v1.org_unit.created"] == ["orgUnits/OPS"]
    assert len({e.id for e in events}) == len(events)  # no duplicate by ce-id
    assert len({(e.subject, e.sequence) for e in events}) == len(events)  # nor by ce-subject and revision

    async with first.app.db.read() as session:
        rows = (await session.exec(select(OutboxRow).order_by(col(OutboxRow.seq)))).all()
    assert len(rows) == len(events) == PEOPLE + 1
    assert all(r.published_at is not None for r in rows)
    # Both relays worked, and between them each row was published once: the
    # row locks kept them apart before JetStream's de-duplication had to.
    assert counts[0][0] > 0 and counts[1][0] > 0, counts
    assert counts[0][0] + counts[1][0] == len(rows), counts

    # A relay that died after the broker's acknowledgement, before marking its
    # rows, leaves them to be published again, here by the other replica:
    # JetStream drops every one as a duplicate.
    again = await second.app.relay._publish(rows)
    assert len(again) == len(rows)
    assert len(await published(first.nats.url)) == len(events)
