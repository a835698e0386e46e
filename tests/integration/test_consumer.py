"""The platform's durable consumer: each event applied once, poison parked, order kept, rebuildable."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
import pytest
from engage.roles.v1 import directory_pb2, events_pb2
from sqlmodel import Field, SQLModel, select

from services.platform.cloudevents import CloudEvent
from services.platform.consumer import DeadLetterRow, EventConsumer, InboxRow
from services.platform.db import Database, UnitOfWork
from services.platform.jetstream import NatsLink
from tests.conftest import BACKENDS, RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.support.company import company_rows, stream
from tests.support.waiting import eventually


class ProjectedPerson(SQLModel, table=True):
    """A projection as a consuming service would keep it."""

    __tablename__ = "test_projected_people"

    person_id: str = Field(primary_key=True)
    org_unit: str
    sequence: int
    applied: int = 0  # how many events changed this row


FAIL_FOR: set[str] = set()


async def project_person(uow: UnitOfWork, event: CloudEvent) -> None:
    if event.subject in FAIL_FOR:
        raise RuntimeError("this handler cannot take it")
    body = events_pb2.PersonEvent.FromString(event.data)
    row = await uow.session.get(ProjectedPerson, event.subject)
    if row is None:
        row = ProjectedPerson(person_id=event.subject, org_unit=body.person.org_unit, sequence=event.sequence)
    elif event.sequence <= row.sequence:
        return  # older than what we have: keep the newer state
    row.org_unit, row.sequence = body.person.org_unit, event.sequence
    row.applied += 1
    uow.session.add(row)


@dataclass
class Projection:
    db: Database
    link: NatsLink
    consumer: EventConsumer

    async def rows(self) -> dict[str, ProjectedPerson]:
        async with self.db.read() as s:
            return {r.person_id: r for r in (await s.exec(select(ProjectedPerson))).all()}

    async def dead(self) -> list[DeadLetterRow]:
        async with self.db.read() as s:
            return list((await s.exec(select(DeadLetterRow))).all())


@pytest.fixture
async def roles(workdir, mint, nats_server) -> AsyncIterator[RolesClient]:
    """The producer: one backend is enough here; the consumer runs on both."""
    client = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    yield client
    await client.channel.close(None)
    await client.app.stop()


@pytest.fixture(params=BACKENDS)
async def projection(request, workdir, roles: RolesClient) -> AsyncIterator[Projection]:
    url, pg_name = await fresh_database_url(request.param, workdir)
    db = Database(url)
    async with db.engine.begin() as conn:
        tables = [InboxRow.__table__, DeadLetterRow.__table__, ProjectedPerson.__table__]
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=tables))
    link = NatsLink(roles.nats.url, "test-consumer", {"ENGAGE": ["engage.>"]})
    link.start()
    await link.ready.wait()
    consumer = EventConsumer(
        db,
        link,
        name=f"test-{uuid.uuid4().hex[:8]}",
        stream="ENGAGE",
        subjects=["engage.roles.v1.person.>"],
        handler=project_person,
        max_deliver=2,
    )
    consumer.start()
    FAIL_FOR.clear()
    try:
        yield Projection(db, link, consumer)
    finally:
        await consumer.stop()
        await link.close()
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)


async def test_each_event_is_applied_once_even_when_it_arrives_twice(roles, projection):
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    await roles.settle()
    rows = await eventually(projection.rows, lambda r: len(r) == 9, what="9 people projected")
    # The same event again under another message id (a duplicate the broker cannot catch).
    nc = await nats.connect(roles.nats.url)
    js = nc.jetstream()
    original = await js.get_last_msg("ENGAGE", "engage.roles.v1.person.created")
    headers = dict(original.headers or {})
    headers["Nats-Msg-Id"] = str(uuid.uuid4())
    await js.publish(original.subject, original.data or b"", headers=headers)
    await nc.close()
    await eventually(lambda: _stream_acked(projection), lambda n: n >= 10, what="the duplicate consumed")
    rows = await projection.rows()
    assert all(r.applied == 1 for r in rows.values())


async def _stream_acked(p: Projection) -> int:
    assert p.link.js is not None
    info = await p.link.js.consumer_info("ENGAGE", p.consumer.name)
    return info.ack_floor.stream_seq if info.ack_floor else 0


async def test_a_poison_message_is_parked_and_the_rest_flow_on(roles, projection):
    nc = await nats.connect(roles.nats.url)
    js = nc.jetstream()
    await js.publish("engage.roles.v1.person.created", b"\x00garbage", headers={"Nats-Msg-Id": "poison-1"})
    await nc.close()
    FAIL_FOR.add("people/A1")  # a handler that keeps failing on one event
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    await roles.settle()
    rows = await eventually(projection.rows, lambda r: len(r) == 8, what="everyone but A1 projected")
    assert "people/A1" not in rows
    dead = await eventually(projection.dead, lambda d: len(d) == 2, timeout=30, what="two dead letters")
    reasons = sorted(d.error for d in dead)
    assert any("not a CloudEvent" in r for r in reasons) and any("cannot take it" in r for r in reasons)
    assert {d.subject for d in dead} == {"engage.roles.v1.person.created"}


async def test_older_versions_never_overwrite_newer_ones_and_rebuild_replays_the_stream(roles, projection):
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    a1 = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/A1"), metadata=roles.admin, timeout=5
    )
    from google.protobuf.field_mask_pb2 import FieldMask

    for unit in ("SVC-1", "SALES-N", "ACME"):
        a1.org_unit = f"orgUnits/{unit}"
        a1 = await roles.directory.UpdatePerson(
            directory_pb2.UpdatePersonRequest(person=a1, update_mask=FieldMask(paths=["org_unit"])),
            metadata=roles.admin,
            timeout=5,
        )
    await roles.settle()
    rows = await eventually(projection.rows, lambda r: r.get("people/A1") and r["people/A1"].sequence == 4)
    assert rows["people/A1"].org_unit == "orgUnits/ACME"

    async def reset(uow: UnitOfWork) -> None:
        from sqlalchemy import delete

        await uow.session.execute(delete(ProjectedPerson))

    await projection.consumer.rebuild(reset)
    rebuilt = await eventually(
        projection.rows, lambda r: len(r) == 9 and r["people/A1"].sequence == 4, what="the rebuilt projection"
    )
    assert rebuilt["people/A1"].org_unit == "orgUnits/ACME"
