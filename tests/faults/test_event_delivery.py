"""Nothing lost, nothing twice: the outbox across broker failures."""

import asyncio
from collections import Counter

from engage.roles.v1 import directory_pb2
from sqlmodel import col, select

from services.platform.outbox import OutboxRow
from tests.support.company import company_rows, stream
from tests.support.events import published
from tests.support.waiting import eventually


def new_person(i: int) -> directory_pb2.CreatePersonRequest:
    return directory_pb2.CreatePersonRequest(
        person_id=f"P{i:05d}",
        person=directory_pb2.Person(display_name=f"Person {i}", org_unit="orgUnits/SVC-1", management_level=2),
    )


async def test_killing_nats_while_changes_are_made_loses_no_event_and_duplicates_none(roles, scenario):
    scenario.load, scenario.faults = "600 CreatePerson by 4 writers", "NATS kill -9 after 100, restart after 400"
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    await roles.settle()
    committed: list[str] = []

    async def writer(start: int, count: int) -> None:
        for i in range(start, start + count):
            person = await roles.directory.CreatePerson(new_person(i), metadata=roles.admin, timeout=10)
            committed.append(person.name)

    writers = [asyncio.create_task(writer(k * 1000, 150)) for k in range(4)]

    async def count() -> int:
        return len(committed)

    await eventually(count, lambda n: n >= 100, 30, "100 committed changes")
    roles.nats.kill()  # kill -9 in the middle of the load
    # The service keeps accepting changes while the broker is down.
    await eventually(count, lambda n: n >= 400, 30, "400 committed changes")
    roles.nats.start()
    await asyncio.gather(*writers)
    await roles.settle(timeout=60)

    events = await published(roles.nats.url)
    created = [e for e in events if e.type == "engage.roles.v1.person.created" and e.subject.startswith("people/P")]
    scenario.count(committed, [e.subject for e in created])
    assert len(committed) == 600
    assert Counter(e.subject for e in created) == Counter(committed)  # each committed change exactly once
    assert len({e.id for e in events}) == len(events)


async def test_a_republish_after_the_ack_is_dropped_by_jetstream(roles, scenario):
    scenario.load, scenario.faults = "directory import (14 events)", "relay republishes acknowledged rows"
    """The relay crashed after the broker acknowledged but before it marked the rows."""
    await roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.admin, timeout=30)
    await roles.settle()
    async with roles.app.db.read() as session:
        rows = (await session.exec(select(OutboxRow).order_by(col(OutboxRow.seq)))).all()
    assert len(rows) == 14
    # Publish the same rows again, as a relay that never marked them would.
    done = await roles.app.relay._publish(rows)
    assert len(done) == 14
    events = await published(roles.nats.url)
    scenario.count([r.event_id for r in rows], [e.id for e in events])
    assert len(events) == 14 and len({e.id for e in events}) == 14
