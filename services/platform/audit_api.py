"""engage.audit.v1.AuditService: every service serves its own audit trail, read only."""

from __future__ import annotations

from typing import Any

import grpc
from engage.audit.v1 import audit_pb2, audit_pb2_grpc
from sqlmodel import col, select

from services.platform.audit import AuditRecord
from services.platform.auth import AUDIT_READ
from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.lookups import get_or_404
from services.platform.protobuf import ts_in, ts_required
from services.platform.resources import page_of, parse_name

PERMISSIONS = {
    "/engage.audit.v1.AuditService/ListAuditRecords": AUDIT_READ,
    "/engage.audit.v1.AuditService/GetAuditRecord": AUDIT_READ,
}
SERVICE_NAME = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
COLLECTION = "auditRecords"


def audit_record_out(row: AuditRecord) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        name=f"{COLLECTION}/{row.seq}",
        actor=row.actor,
        event_type=row.event_type,
        subject=row.subject,
        time=ts_required(row.recorded_at),
        event_id=row.event_id,
        request_id=row.request_id,
        data=row.data,
        data_schema=row.data_schema,
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def GetAuditRecord(
        self, request: audit_pb2.GetAuditRecordRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> audit_pb2.AuditRecord:
        record_id = parse_name(request.name, COLLECTION, "name")
        if not record_id.isdigit():
            raise invalid("name", "must be auditRecords/{number}")
        async with self.db.read() as session:
            row = await get_or_404(session, AuditRecord, int(record_id), request.name)
        return audit_record_out(row)

    async def ListAuditRecords(
        self, request: audit_pb2.ListAuditRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> audit_pb2.ListAuditRecordsResponse:
        start = ts_in(request.start_time, request.HasField("start_time"), "start_time")
        end = ts_in(request.end_time, request.HasField("end_time"), "end_time")
        if start and end and end <= start:
            raise invalid("end_time", "must be after start_time")
        page = page_of(
            request.page_size,
            request.page_token,
            subject=request.subject,
            actor=request.actor,
            event_type=request.event_type,
            start=start,
            end=end,
        )
        query = select(AuditRecord).order_by(col(AuditRecord.seq)).limit(page.size)
        if page.after is not None:
            query = query.where(col(AuditRecord.seq) > int(page.after))
        if request.subject:
            query = query.where(col(AuditRecord.subject) == request.subject)
        if request.actor:
            query = query.where(col(AuditRecord.actor) == request.actor)
        if request.event_type.endswith("."):
            query = query.where(col(AuditRecord.event_type).startswith(request.event_type, autoescape=True))
        elif request.event_type:
            query = query.where(col(AuditRecord.event_type) == request.event_type)
        if start:
            query = query.where(col(AuditRecord.recorded_at) >= start)
        if end:
            query = query.where(col(AuditRecord.recorded_at) < end)
        async with self.db.read() as session:
            rows = list((await session.exec(query)).all())
        return audit_pb2.ListAuditRecordsResponse(
            audit_records=[audit_record_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].seq if rows else None, len(rows)),
        )
