"""The transactional outbox: events stored in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.platform.cloudevents import CloudEvent

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"

    seq: int | None = Field(default=None, sa_column=sa.Column(_SEQ_TYPE, primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=64, unique=True)
    type: str = Field(max_length=200)
    source: str = Field(max_length=200)
    subject: str = Field(max_length=300)
    dataschema: str = Field(max_length=200)
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    sequence: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, default=0))
    partitionkey: str = Field(default="", max_length=300)
    authid: str = Field(default="", max_length=300)
    event_time: datetime
    published_at: datetime | None = Field(default=None, index=True)

    @classmethod
    def from_event(cls, event: CloudEvent) -> OutboxRow:
        return cls(
            event_id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject,
            dataschema=event.dataschema,
            data=event.data,
            sequence=event.sequence,
            partitionkey=event.partitionkey,
            authid=event.authid,
            event_time=event.time,
        )

    @staticmethod
    def values_of(event: CloudEvent) -> dict[str, object]:
        """The row as plain column values, for bulk inserts (no ORM object per event)."""
        return {
            "event_id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "dataschema": event.dataschema,
            "data": event.data,
            "sequence": event.sequence,
            "partitionkey": event.partitionkey,
            "authid": event.authid,
            "event_time": event.time,
            "published_at": None,
        }

    def to_event(self) -> CloudEvent:
        return event_of(self)


# The table itself, for plain-row reads and writes on hot paths (no ORM object per row).
OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]


def event_of(row: Any) -> CloudEvent:
    """The event an outbox row holds: an OutboxRow, or a plain row of OUTBOX."""
    return CloudEvent(
        type=row.type,
        source=row.source,
        subject=row.subject,
        data=row.data,
        dataschema=row.dataschema,
        sequence=row.sequence,
        partitionkey=row.partitionkey,
        authid=row.authid,
        id=row.event_id,
        time=row.event_time,
    )


class RequestRecord(SQLModel, table=True):
    """Request ids of creates already done, so a retried create returns the
    first result instead of creating twice (AIP-155)."""

    __tablename__ = "request_ids"

    request_id: str = Field(primary_key=True, max_length=100)
    operation: str = Field(max_length=100)
    fingerprint: str = Field(max_length=64)
    resource_name: str = Field(max_length=300)
    created_at: datetime
