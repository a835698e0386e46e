"""The skills and incentives consumers under faults: crashes between commit and
ack (repeatedly), transient failures that reorder deliveries, a NATS kill -9,
and a poison message, while the roles service changes people and a CRM
system publishes behaviour events.

Every event is applied exactly once, the poison ends in the dead-letter
store after its bounded deliveries while the rest flow on, and no projected
person is left on an older version than the roles service holds.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from engage.roles.v1 import directory_pb2, events_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from sqlmodel import select

from services.incentives import main as incentives_main
from services.incentives.migrate import migrate as migrate_incentives
from services.incentives.store.tables import BehaviourEventRow, CreditRow
from services.incentives.store.tables import ProjectedPersonRow as IncentivesPerson
from services.platform.cloudevents import CloudEvent
from services.platform.consumer import DeadLetterRow, EventConsumer
from services.platform.db import Database
from services.skills import main as skills_main
from services.skills.migrate import migrate as migrate_skills
from services.skills.store.tables import ProjectedPersonRow as SkillsPerson
from tests.conftest import BACKENDS, RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.integration.incentives.conftest import incentives_settings, observed, ts
from tests.integration.skills.conftest import skills_settings
from tests.support import crm
from tests.support.company import company_rows, stream
from tests.support.consumer_faults import ConsumerFaults
from tests.support.events import subject_matches
from tests.support.nats_server import NatsServer, stream_messages
from tests.support.waiting import eventually

MOVERS = ["A1", "A2", "S1", "S2"]
UNITS = ["SVC-1", "SALES-N", "SERVICE", "SALES", "ACME", "SVC-1"]  # six moves each
CRM_EVENTS = 200
MAX_DELIVER = 3
ACK_WAIT = 2.0  # seconds before JetStream redelivers what a crashed consumer never acknowledged


@dataclass
class Consumers:
    roles: RolesClient
    skills: skills_main.SkillsApp
    incentives: incentives_main.IncentivesApp
    faults: dict[str, ConsumerFaults]


@pytest.fixture(params=BACKENDS)
async def consumers(request, workdir: Path, mint, nats_server: NatsServer) -> AsyncIterator[Consumers]:
    """Roles (the producer, SQLite) and skills and incentives in-process, their consumers wrapped in faults."""
    roles = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    skills_url, skills_pg = await fresh_database_url(request.param, workdir)
    incentives_url, incentives_pg = await fresh_database_url(request.param, workdir)
    skills_db, incentives_db = Database(skills_url), Database(incentives_url)
    await migrate_skills(skills_db)
    await migrate_incentives(incentives_db)
    skills = skills_main.build(skills_settings(skills_url, nats_server.url, mint), skills_db)
    incentives = incentives_main.build(
        incentives_settings(incentives_url, nats_server.url, mint, consumer_max_deliver=MAX_DELIVER), incentives_db
    )
    moves = itertools.count()

    def reorder(event: CloudEvent) -> bool:  # every third move of a person fails once
        return event.type == "engage.roles.v1.person.updated" and next(moves) % 3 == 0

    consumer_list: list[EventConsumer] = [skills.projection, *incentives.consumers]
    faults = {}
    for c in consumer_list:
        c.ack_wait = ACK_WAIT
        faults[c.name] = ConsumerFaults(c, crash_every=2, max_crashes=3, fail_first_delivery=reorder)
    await skills.start()
    await incentives.start()
    try:
        yield Consumers(roles, skills, incentives, faults)
    finally:
        await incentives.stop()
        await skills.stop()
        await roles.channel.close(None)
        await roles.app.stop()
        for name in (skills_pg, incentives_pg):
            if name:
                await _drop_pg_database(name)


async def move_person(roles: RolesClient, person_id: str) -> None:
    """Six moves one after the other (each with the etag just read); people move side by side."""
    person = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name=f"people/{person_id}"), metadata=roles.admin, timeout=5
    )
    for unit in UNITS:
        person.org_unit = f"orgUnits/{unit}"
        person = await roles.directory.UpdatePerson(
            directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["org_unit"])),
            metadata=roles.admin,
            timeout=10,
        )


async def publish_crm(url: str, start: int, count: int) -> None:
    nc = await nats.connect(url)
    try:
        for i in range(start, start + count):
            body = observed("case-solved-cross-department", [MOVERS[i % 4]], ts(2025, 1, 1 + i % 28))
            await crm.publish(nc.jetstream(), f"crm-{i}", body.SerializeToString())
    finally:
        await nc.close()


async def publish_poison(url: str) -> None:
    """A body that is not a BehaviourObserved: it can never apply."""
    nc = await nats.connect(url)
    try:
        await crm.publish(nc.jetstream(), "crm-poison", b"\x00not protobuf")
    finally:
        await nc.close()


async def expected_ids(url: str, stream_name: str, filters: list[str]) -> list[str]:
    return [
        (m.headers or {})["ce-id"]
        for m in await stream_messages(url, stream_name)
        if subject_matches(m.subject, filters) and "ce-id" in (m.headers or {})
    ]


async def test_consumers_apply_every_event_once_through_crashes_reordering_and_a_nats_kill(
    consumers: Consumers, nats_server: NatsServer, scenario
):
    c = consumers
    scenario.load = f"directory import, {len(MOVERS) * len(UNITS)} moves, {CRM_EVENTS} CRM events + 1 poison"
    await c.roles.directory.ImportDirectory(stream(company_rows()), metadata=c.roles.admin, timeout=30)
    await c.roles.settle()
    # The CRM events credit people the incentives service must know first (else they are parked).
    await eventually(
        lambda: _people(c.incentives.db), lambda known: set(MOVERS) <= known, 30, "the movers known to incentives"
    )
    await publish_poison(nats_server.url)
    movers = [asyncio.create_task(move_person(c.roles, p)) for p in MOVERS]
    await publish_crm(nats_server.url, 0, CRM_EVENTS // 2)
    nats_server.kill()  # kill -9 the broker with moves in flight and deliveries pending
    await asyncio.gather(*movers)  # the roles service commits on; its outbox holds the events
    nats_server.start()
    await publish_crm(nats_server.url, CRM_EVENTS // 2, CRM_EVENTS // 2)
    await c.roles.settle(timeout=60)

    roles_filter = skills_main.projection.SUBJECTS
    incentives_roles = next(x for x in c.incentives.consumers if x.name == incentives_main.ROLES_CONSUMER)
    want = {
        c.skills.projection.name: await expected_ids(nats_server.url, "ENGAGE", roles_filter),
        incentives_roles.name: await expected_ids(nats_server.url, "ENGAGE", incentives_roles.subjects),
        incentives_main.CRM_CONSUMER: [f"crm-{i}" for i in range(CRM_EVENTS)],
    }

    async def applied() -> dict[str, Counter[str]]:
        """Per consumer, how often each event was applied: the projections count their
        handler's committed runs; the CRM events (applied in bulk, not by the handler)
        count by their effect, one credit each (one person per event)."""
        got = {name: f.applied for name, f in c.faults.items() if name != incentives_main.CRM_CONSUMER}
        async with c.incentives.db.read() as s:
            got[incentives_main.CRM_CONSUMER] = Counter((await s.exec(select(CreditRow.event_id))).all())
        return got

    async def missing() -> dict[str, int]:
        got = await applied()
        return {name: len(set(ids) - set(got[name])) for name, ids in want.items()}

    await eventually(missing, lambda left: not any(left.values()), 90, "every event applied")
    counts = await applied()
    dead = await eventually(
        lambda: _dead_letters(c.incentives.db), lambda d: len(d) >= 1, 30, "the poison dead-lettered"
    )
    crashes = sum(f.crashes for f in c.faults.values())
    reordered = sum(f.transient_failures for f in c.faults.values())
    scenario.faults = f"{crashes} crashes between commit and ack, {reordered} first deliveries failed, NATS kill -9"
    for name, ids in want.items():
        scenario.count(ids, counts[name].elements())
    assert crashes >= 3 and reordered >= 3, "the faults were not injected"
    for name, ids in want.items():
        got = counts[name]
        assert set(got) == set(ids), name  # nothing lost, nothing the stream does not hold
        assert max(got.values()) == 1, (name, [k for k, n in got.items() if n > 1])  # nothing applied twice
    # The poison: dead-lettered after its bounded deliveries; the rest flowed on.
    assert [(d.event_id, d.deliveries) for d in dead] == [("crm-poison", MAX_DELIVER)]
    assert await _dead_letters(c.skills.db) == []
    async with c.incentives.db.read() as s:
        assert len((await s.exec(select(BehaviourEventRow.id))).all()) == CRM_EVENTS
    # Per-person order: every projection holds the roles service's latest version.
    latest = await _latest_people(c.roles)
    for db, table in ((c.skills.db, SkillsPerson), (c.incentives.db, IncentivesPerson)):
        async with db.read() as s:
            rows = {r.id: (r.sequence, r.org_unit_id) for r in (await s.exec(select(table))).all()}
        assert {p: rows[p] for p in MOVERS} == {p: latest[p] for p in MOVERS}, table.__tablename__


async def _people(db: Database) -> set[str]:
    async with db.read() as s:
        return set((await s.exec(select(IncentivesPerson.id))).all())


async def _dead_letters(db: Database) -> list[DeadLetterRow]:
    async with db.read() as s:
        return list((await s.exec(select(DeadLetterRow))).all())


async def _latest_people(roles: RolesClient) -> dict[str, tuple[int, str]]:
    """Each mover's last event sequence and org unit as the roles service published them."""
    latest: dict[str, tuple[int, str]] = {}
    for m in await stream_messages(roles.nats.url, "ENGAGE", "engage.roles.v1.person.>"):
        event = CloudEvent.from_message(m.headers, m.data or b"")
        pid = event.subject.removeprefix("people/")
        if pid in MOVERS and event.sequence >= latest.get(pid, (0, ""))[0]:
            unit = events_pb2.PersonEvent.FromString(event.data).person.org_unit
            latest[pid] = (event.sequence, unit.removeprefix("orgUnits/"))
    return latest
