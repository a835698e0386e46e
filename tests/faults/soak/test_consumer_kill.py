"""kill -9 of the incentives process, three times, while it consumes CRM behaviour events.

The in-process scenario (tests/faults/test_consumer_faults.py) cuts the consumer
exactly between commit and ack; this one kills the real process wherever it
happens to be, and JetStream redelivers what was never acknowledged after the
consumer's ack wait (30 s), which is why it runs with `make soak` rather than
`make test`. Every event is recorded once, none is dead-lettered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from sqlmodel import select

from services.incentives.store.tables import BehaviourEventRow
from services.platform.consumer import DeadLetterRow
from services.platform.db import Database
from tests.integration.incentives.conftest import observed, ts
from tests.support import crm
from tests.support.processes import IncentivesProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.soak

EVENTS = 3000
KILLS = 3


async def recorded(db: Database) -> int:
    async with db.read() as s:
        return len((await s.exec(select(BehaviourEventRow.id))).all())


@pytest.mark.timeout(900)  # three redeliveries wait out the 30 s ack wait each, on a loaded machine
async def test_kill_9_of_the_incentives_process_while_it_consumes_loses_and_doubles_nothing(
    tmp_path: Path, mint, nats_server, scenario
):
    scenario.load = f"{EVENTS} CRM events on NATS"
    url = f"sqlite+aiosqlite:///{tmp_path / 'incentives.db'}"
    service = IncentivesProcess(url, nats_server.url, mint, tmp_path)
    db = Database(url)
    try:
        service.migrate()
        service.start()
        publisher = asyncio.create_task(publish(nats_server.url))
        seen = []
        for _ in range(KILLS):
            floor = await recorded(db)
            await eventually(lambda f=floor: _more(db, f), lambda more: more, 60, "progress before the kill")
            service.kill()
            seen.append(await recorded(db))
            await asyncio.to_thread(service.start)
        await publisher
        scenario.faults = f"kill -9 x{KILLS} with {', '.join(map(str, seen))} of {EVENTS} recorded, restarts"
        await eventually(lambda: recorded(db), lambda n: n == EVENTS, 120, "every event recorded")
        async with db.read() as s:
            rows = list((await s.exec(select(BehaviourEventRow.id))).all())
            dead = list((await s.exec(select(DeadLetterRow))).all())
    finally:
        service.stop()
        await db.dispose()
    expected = [f"kill-{i}" for i in range(EVENTS)]
    scenario.count(expected, rows)
    # Each event recorded once: its behaviour event row is the consumer's de-duplication record (the
    # consumer keeps no inbox row for CRM events); A1 is unknown here (no roles), so each waits parked.
    assert sorted(rows) == sorted(expected)
    assert dead == []
    assert seen[-1] < EVENTS, "the last kill came after the work was done"


async def publish(url: str) -> None:
    """A CRM system publishing steadily (100 events every half second) while the consumer is killed."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for i in range(EVENTS):
            body = observed("case-solved-cross-department", ["A1"], ts(2025, 1, 1 + i % 28))
            await crm.publish(js, f"kill-{i}", body.SerializeToString())
            if i % 100 == 99:
                await asyncio.sleep(0.5)  # the publisher's pace, not a wait for a condition
    finally:
        await nc.close()


async def _more(db: Database, floor: int) -> bool:
    return await recorded(db) >= floor + 200
