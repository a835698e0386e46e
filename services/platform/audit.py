"""The audit trail: who changed what, and when, kept for good.

Every change a service makes publishes events through the outbox; the unit of
work writes an audit record beside each outbox row, in the same transaction,
so the trail holds exactly the committed changes. Outbox rows are purged once
published; audit records never are. No API writes them, and the migration
adds triggers so the database itself refuses to update or delete them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import op
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from services.platform.cloudevents import CloudEvent

_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_REFUSE = "audit records are append-only"


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_records"

    seq: int | None = Field(default=None, sa_column=sa.Column(_SEQ_TYPE, primary_key=True, autoincrement=True))
    actor: str = Field(max_length=300, index=True)
    event_type: str = Field(max_length=200)
    subject: str = Field(max_length=300, index=True)
    recorded_at: datetime
    event_id: str = Field(max_length=64)
    request_id: str = Field(default="", max_length=100)
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    data_schema: str = Field(max_length=200)


def current_request_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


AUDIT_COLUMNS = ("actor", "event_type", "subject", "recorded_at", "event_id", "request_id", "data", "data_schema")


def audit_plain(event: CloudEvent, request_id: str) -> tuple[Any, ...]:
    """The audit row of an event as values in AUDIT_COLUMNS order (for bulk inserts)."""
    return (
        event.authid,
        event.type,
        event.subject,
        event.time,
        event.id,
        request_id[:100],
        event.data,
        event.dataschema,
    )


def create_audit_table() -> None:
    """Alembic operations of the revision that adds the trail to a service."""
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
        sa.Column("actor", AutoString(length=300), nullable=False),
        sa.Column("event_type", AutoString(length=200), nullable=False),
        sa.Column("subject", AutoString(length=300), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("event_id", AutoString(length=64), nullable=False),
        sa.Column("request_id", AutoString(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("data_schema", AutoString(length=200), nullable=False),
    )
    op.create_index("ix_audit_records_actor", "audit_records", ["actor"])
    op.create_index("ix_audit_records_subject", "audit_records", ["subject"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_records_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION audit_records_refuse()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_records_no_{verb.lower()} BEFORE {verb} ON audit_records "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
            )


def drop_audit_table() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION audit_records_refuse()")
    op.drop_table("audit_records")
