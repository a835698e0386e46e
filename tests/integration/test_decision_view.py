"""CheckDecision answers from an in-memory view that follows the outbox: it must never miss a change."""

import uuid

import pytest
from engage.roles.v1 import decisions_pb2

from services.platform.db import Database, utcnow
from services.roles.events.outgoing import assignment_event
from services.roles.store.tables import AssignmentRow
from tests.conftest import _drop_pg_database, fresh_database_url, start_roles
from tests.support.company import assign, eur, load_company
from tests.support.waiting import eventually

DECIDE = decisions_pb2.DECISION_OUTCOME_DECIDE


async def outcome(client, person: str, amount: int = 100) -> int:
    answer = await client.decisions.CheckDecision(
        decisions_pb2.CheckDecisionRequest(
            person=f"people/{person}", category="decisionCategories/customer-refund", amount=eur(amount)
        ),
        metadata=client.admin,
        timeout=5,
    )
    return int(answer.outcome)


async def test_a_change_is_answered_at_once_by_the_replica_that_made_it(roles):
    await load_company(roles)
    await assign(roles, "S1", "service-agent", "SVC-1")
    assert await outcome(roles, "S1") == DECIDE  # no waiting: read your own writes


@pytest.fixture
async def two_replicas(workdir, mint, nats_server):
    url, name = await fresh_database_url("postgresql", workdir)
    a = await start_roles(url, nats_server, mint)
    b = await start_roles(url, nats_server, mint)
    yield a, b
    for client in (a, b):
        await client.channel.close(None)
        await client.app.stop()
    assert name
    await _drop_pg_database(name)


async def test_another_replica_sees_the_change_within_its_poll_interval(two_replicas):
    a, b = two_replicas
    await load_company(a)
    await assign(a, "S1", "service-agent", "SVC-1")
    await eventually(lambda: outcome(b, "S1"), lambda o: o == DECIDE, timeout=5, what="replica B to see S1's role")


async def test_a_transaction_that_commits_after_a_later_one_is_not_missed(two_replicas):
    """PostgreSQL hands out outbox numbers at insert; commits may land out of order."""
    a, _ = two_replicas
    await load_company(a)
    await a.settle()
    other = Database(a.app.db.url)
    try:
        async with other.write() as uow:
            now = utcnow()
            slow = AssignmentRow(
                id=uuid.uuid4().hex,
                person_id="S2",
                role_id="service-agent",
                role_version=1,
                org_unit_id="SVC-1",
                scope="ORG_UNIT_ONLY",
                valid_from=now,
                assigned_by="test",
                create_time=now,
                update_time=now,
            )
            uow.session.add(slow)
            uow.emit(assignment_event("created", slow, now))
            await uow.session.flush()  # takes its outbox number now, commits later
            await assign(a, "S1", "service-agent", "SVC-1")  # a later number, committed first
            await eventually(lambda: outcome(a, "S1"), lambda o: o == DECIDE, timeout=5, what="S1's role")
        await eventually(lambda: outcome(a, "S2"), lambda o: o == DECIDE, timeout=5, what="the late commit")
    finally:
        await other.dispose()


async def test_a_large_change_is_read_back_in_chunks(roles, monkeypatch):
    """An import changes more people than one query may name (PostgreSQL caps parameters at 32,767)."""
    from services.roles.store import decision_view
    from tests.support.company import person_row, stream

    monkeypatch.setattr(decision_view, "RELOAD_CHUNK", 4)
    await load_company(roles)
    assert await outcome(roles, "S1") != DECIDE  # the view is loaded now
    rows = [person_row(f"N{i:03d}", f"New {i}", "SVC-1", "TL-S", 3) for i in range(30)]
    result = await roles.directory.ImportDirectory(stream(rows), metadata=roles.admin, timeout=30)
    assert result.created_count == 30
    for i in range(30):
        answer = await roles.decisions.CheckDecision(
            decisions_pb2.CheckDecisionRequest(
                person=f"people/N{i:03d}", category="decisionCategories/customer-refund"
            ),
            metadata=roles.admin,
            timeout=5,
        )
        assert answer.chain[0].person == f"people/N{i:03d}"


async def get_role(client, name: str = "roles/service-agent"):
    from engage.roles.v1 import roles_pb2

    return await client.roles.GetRole(roles_pb2.GetRoleRequest(name=name), metadata=client.admin, timeout=5)


async def test_get_role_reads_its_own_writes_and_another_replicas_within_the_poll(two_replicas):
    """GetRole answers from the same view: an update is visible at once on the
    replica that made it, and on the other replica shortly after."""
    from engage.roles.v1 import roles_pb2
    from google.protobuf.field_mask_pb2 import FieldMask

    a, b = two_replicas
    await load_company(a)
    before = await get_role(a)  # the writer: replica B may still be catching up
    change = roles_pb2.Role(name=before.name, purpose="Resolve cases at first contact", etag=before.etag)
    updated = await a.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=change, update_mask=FieldMask(paths=["purpose"])),
        metadata=a.admin,
        timeout=5,
    )
    assert updated.etag != before.etag
    assert await get_role(a) == updated  # no waiting on the replica that wrote
    await eventually(lambda: get_role(b), lambda r: r == updated, timeout=5, what="replica B to serve the update")
    # A past version is still read from the database by name@version.
    first = await get_role(b, "roles/service-agent@1")
    assert first.version == 1 and first.purpose == before.purpose
