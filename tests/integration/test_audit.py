"""The audit trail every service serves: who changed what and when, append-only."""

import grpc
import pytest
import sqlalchemy as sa
from engage.audit.v1 import audit_pb2, audit_pb2_grpc
from engage.roles.v1 import assignments_pb2, events_pb2
from google.protobuf import descriptor_pool

from services.platform import audit_api
from tests.support.company import assign, load_company
from tests.support.grpc_errors import call_error


def audit(client) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(client.channel)


async def records(client, **filters) -> list[audit_pb2.AuditRecord]:
    """Every record matching the filters, page by page (small pages on purpose)."""
    found: list[audit_pb2.AuditRecord] = []
    token = ""
    while True:
        request = audit_pb2.ListAuditRecordsRequest(page_size=7, page_token=token, **filters)
        page = await audit(client).ListAuditRecords(request, metadata=client.admin, timeout=5)
        found.extend(page.audit_records)
        token = page.next_page_token
        if not token:
            return found


def test_every_audit_rpc_declares_a_permission():
    service = descriptor_pool.Default().FindServiceByName(audit_api.SERVICE_NAME)
    assert {f"/{service.full_name}/{m.name}" for m in service.methods} == set(audit_api.PERMISSIONS)


async def test_each_change_leaves_a_record_of_who_what_and_when(roles):
    await load_company(roles)
    created = await assign(roles, "S1", "service-agent", "SVC-1", metadata=roles.as_person("TL-S"))
    ended = await roles.assignments.EndAssignment(
        assignments_pb2.EndAssignmentRequest(name=created.name, reason="moved"),
        metadata=roles.as_person("TL-S"),
        timeout=5,
    )

    trail = await records(roles, subject=created.name)
    assert [r.event_type for r in trail] == [
        "engage.roles.v1.assignment.created",
        "engage.roles.v1.assignment.ended",
    ]
    assert {r.actor for r in trail} == {"people/TL-S"}
    assert trail[0].time.ToDatetime() <= trail[1].time.ToDatetime()
    assert all(r.request_id for r in trail)  # ties the record to the call in the logs
    after = events_pb2.AssignmentEvent.FromString(trail[1].data)
    assert after.assignment.state == ended.state
    assert trail[1].data_schema.endswith("AssignmentEvent")

    one = await audit(roles).GetAuditRecord(
        audit_pb2.GetAuditRecordRequest(name=trail[0].name), metadata=roles.admin, timeout=5
    )
    assert one == trail[0]

    by_actor = await records(roles, actor="people/TL-S")
    assert [r.name for r in by_actor] == [r.name for r in trail]
    imports = await records(roles, event_type="engage.roles.v1.person.")
    assert imports and all(r.event_type.startswith("engage.roles.v1.person.") for r in imports)
    assert all(r.actor == "hr-admin" for r in imports)  # the import's token subject


async def test_a_refused_change_leaves_no_record(roles):
    await load_company(roles)
    before = await records(roles)
    # A manager of another line of business: refused, nothing written, nothing audited.
    await call_error(
        assign(roles, "S1", "service-agent", "SVC-1", metadata=roles.as_person("TL-N")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert await records(roles) == before


async def test_only_hr_may_read_the_trail_and_nobody_can_change_it(roles):
    await load_company(roles)
    err = await call_error(
        audit(roles).ListAuditRecords(audit_pb2.ListAuditRecordsRequest(), metadata=roles.as_person("S1"), timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    service = descriptor_pool.Default().FindServiceByName(audit_api.SERVICE_NAME)
    assert {m.name for m in service.methods} == {"ListAuditRecords", "GetAuditRecord"}  # no write method

    # Even with the database in hand, the rows refuse to change.
    engine = roles.app.db.engine
    for statement in ("UPDATE audit_records SET actor = 'someone-else'", "DELETE FROM audit_records"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text(statement))
    assert {r.actor for r in await records(roles, event_type="engage.roles.v1.role.")} == {"hr-admin"}


async def test_bad_audit_requests_name_the_field(roles):
    err = await call_error(
        audit(roles).GetAuditRecord(audit_pb2.GetAuditRecordRequest(name="auditRecords/x"), metadata=roles.admin),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["name"]
    err = await call_error(
        audit(roles).ListAuditRecords(audit_pb2.ListAuditRecordsRequest(page_token="nonsense"), metadata=roles.admin),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["page_token"]
    inverted = audit_pb2.ListAuditRecordsRequest()
    inverted.start_time.FromSeconds(2_000_000_000)
    inverted.end_time.FromSeconds(1_000_000_000)
    err = await call_error(
        audit(roles).ListAuditRecords(inverted, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert err.fields == ["end_time"]
    out_of_range = audit_pb2.ListAuditRecordsRequest()
    out_of_range.start_time.seconds = -(10**15)
    err = await call_error(
        audit(roles).ListAuditRecords(out_of_range, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert err.fields == ["start_time"]
    await call_error(
        audit(roles).GetAuditRecord(audit_pb2.GetAuditRecordRequest(name="auditRecords/999999"), metadata=roles.admin),
        grpc.StatusCode.NOT_FOUND,
    )
