"""Replicas of a consuming service share one durable consumer: JetStream hands
each event to one of them, the shared inbox keeps it applied once.

Two `EventConsumer`s with the same durable name on one stream and one
PostgreSQL database, as two replicas of the skills service run in Kubernetes.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from engage.roles.v1 import directory_pb2
from sqlalchemy import func
from sqlmodel import Field, SQLModel, select

from services.platform.cloudevents import CloudEvent
from services.platform.consumer import DeadLetterRow, EventConsumer, InboxRow
from services.platform.db import Database, UnitOfWork
from services.platform.jetstream import NatsLink
from tests.conftest import RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.support.company import PEOPLE, company_rows, stream
from tests.support.waiting import eventually

NEW_PEOPLE = 300
EVENTS = len(PEOPLE) + NEW_PEOPLE  # one person.created each


class AppliedEvent(SQLModel, table=True):
    """One row per handler run: a duplicate application would show as a second row."""

    __tablename__ = "test_replica_applied"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(index=True)
    replica: str


def recorder(replica: str) -> Callable[[UnitOfWork, CloudEvent], Awaitable[None]]:
    async def record(uow: UnitOfWork, event: CloudEvent) -> None:
        uow.session.add(AppliedEvent(event_id=event.id, replica=replica))

    return record


@dataclass
class Replicas:
    db: Database
    name: str
    consumers: list[EventConsumer]

    async def counts(self) -> tuple[int, int, int]:
        """(handler rows, distinct events among them, inbox rows of the consumer)."""
        async with self.db.read() as s:
            rows = (await s.exec(select(func.count()).select_from(AppliedEvent))).one()
            distinct = (await s.exec(select(func.count(func.distinct(AppliedEvent.event_id))))).one()
            inbox = (
                await s.exec(select(func.count()).select_from(InboxRow).where(InboxRow.consumer == self.name))
            ).one()
        return int(rows), int(distinct), int(inbox)


@pytest.fixture
async def roles(workdir, mint, nats_server) -> AsyncIterator[RolesClient]:
    """The producer of real events (its own database; the consumers share another)."""
    client = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    yield client
    await client.channel.close(None)
    await client.app.stop()


@pytest.fixture
async def replicas(workdir, roles: RolesClient) -> AsyncIterator[Replicas]:
    url, pg_name = await fresh_database_url("postgresql", workdir)
    db = Database(url)
    async with db.engine.begin() as conn:
        tables = [InboxRow.__table__, DeadLetterRow.__table__, AppliedEvent.__table__]
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=tables))
    name = f"skills-{uuid.uuid4().hex[:8]}"
    links: list[NatsLink] = []
    consumers: list[EventConsumer] = []
    for replica in ("a", "b"):
        # Each replica has its own NATS connection, as a pod would.
        link = NatsLink(roles.nats.url, f"replica-{replica}", {"ENGAGE": ["engage.>"]})
        link.start()
        await link.ready.wait()
        links.append(link)
        consumers.append(
            EventConsumer(
                db,
                link,
                name=name,  # the same durable consumer
                stream="ENGAGE",
                subjects=["engage.roles.v1.person.>"],
                handler=recorder(replica),
                batch_size=20,
            )
        )
    for consumer in consumers:
        consumer.start()
    try:
        yield Replicas(db, name, consumers)
    finally:
        for consumer in consumers:
            await consumer.stop()
        for link in links:
            await link.close()
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)


def person(i: int) -> directory_pb2.CreatePersonRequest:
    return directory_pb2.CreatePersonRequest(
        person_id=f"R{i:04d}",
        request_id=f"req-R{i:04d}",
        person=directory_pb2.Person(display_name=f"Replica test {i}", org_unit="orgUnits/SVC-1", management_level=2),
    )


async def test_two_replicas_share_a_durable_consumer_and_apply_each_event_once(roles, replicas):
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    for start in range(0, NEW_PEOPLE, 50):
        await asyncio.gather(
            *(
                roles.directory.CreatePerson(person(i), metadata=roles.admin, timeout=30)
                for i in range(start, start + 50)
            )
        )
    await roles.settle()

    rows, distinct, inbox = await eventually(
        replicas.counts, lambda c: c[2] >= EVENTS, timeout=20, what=f"{EVENTS} events applied"
    )
    # Let any redelivery that would cause a duplicate arrive before counting.
    await asyncio.sleep(0.5)
    rows, distinct, inbox = await replicas.counts()
    assert (rows, distinct, inbox) == (EVENTS, EVENTS, EVENTS)

    first, second = replicas.consumers
    assert first.applied > 0 and second.applied > 0, (first.applied, second.applied)
    assert first.applied + second.applied == EVENTS
    async with replicas.db.read() as s:
        by_replica = dict(
            (await s.exec(select(AppliedEvent.replica, func.count()).group_by(AppliedEvent.replica))).all()
        )
    assert by_replica == {"a": first.applied, "b": second.applied}
