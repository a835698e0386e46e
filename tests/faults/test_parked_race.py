"""CRM behaviour events that arrive before, or at the same time as, the people they credit.

Events for an unknown person are parked and replayed when the person appears
(the incentives projection of the roles events). Two consumers write side
by side here: the CRM consumer parks, the projection replays. Whatever the
interleaving, once everyone is known every event must be credited, exactly
once, without anyone calling ReplayParkedEvents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from sqlmodel import select

from services.incentives.store.tables import BehaviourEventRow, CreditRow
from tests.conftest import BACKENDS, RolesClient, _drop_pg_database, fresh_database_url, start_roles
from tests.integration.incentives.conftest import IncentivesClient, observed, start_incentives, ts
from tests.support import crm
from tests.support.company import PEOPLE, company_rows, stream
from tests.support.waiting import eventually

EVENTS = 300


# The race this guards: on PostgreSQL a CRM batch that parks an event for a
# person the projection is inserting could commit after the projection's
# replay ran, leaving the event parked for good (fixed by the lock in
# `replay_for_person`).
@pytest.fixture(params=BACKENDS)
async def pair(request, workdir: Path, mint, nats_server) -> AsyncIterator[tuple[RolesClient, IncentivesClient]]:
    roles = await start_roles(f"sqlite+aiosqlite:///{workdir / uuid.uuid4().hex}.db", nats_server, mint)
    url, pg_name = await fresh_database_url(request.param, workdir)
    incentives = await start_incentives(url, nats_server, mint)
    try:
        yield roles, incentives
    finally:
        await incentives.channel.close(None)
        await incentives.app.stop()
        await roles.channel.close(None)
        await roles.app.stop()
        if pg_name:
            await _drop_pg_database(pg_name)


async def publish_events(url: str) -> None:
    nc = await nats.connect(url)
    try:
        for i in range(EVENTS):
            person = PEOPLE[i % len(PEOPLE)][0]
            body = observed("case-solved-cross-department", [person], ts(2025, 1, 1 + i % 28)).SerializeToString()
            await crm.publish(nc.jetstream(), f"race-{i}", body)
    finally:
        await nc.close()


async def test_events_racing_the_people_they_credit_are_all_credited_once_everyone_is_known(pair, scenario):
    roles, inc = pair
    scenario.load = f"{EVENTS} CRM events for {len(PEOPLE)} people, published while the directory is imported"
    scenario.faults = "two consumers (park, replay) interleaved"
    await asyncio.gather(
        publish_events(roles.nats.url),
        roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30),
    )
    await roles.settle()
    await inc.wait_projected(len(PEOPLE))

    async def recorded() -> int:
        async with inc.app.db.read() as s:
            return len((await s.exec(select(BehaviourEventRow.id))).all())

    await eventually(recorded, lambda n: n == EVENTS, 30, "every event recorded")

    async def credits() -> Counter[str]:
        async with inc.app.db.read() as s:
            return Counter((await s.exec(select(CreditRow.event_id))).all())

    try:
        got = await eventually(credits, lambda c: len(c) == EVENTS, 10, "every event credited")
    finally:
        got = await credits()
        async with inc.app.db.read() as s:
            parked = Counter((await s.exec(select(BehaviourEventRow.park_reason))).all())
        scenario.faults += f"; left parked: {sum(n for r, n in parked.items() if r)}"
        scenario.count([f"race-{i}" for i in range(EVENTS)], got.elements())
    assert set(got.values()) == {1}
