"""The transactional outbox: events stored in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
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
    def plain(event: CloudEvent) -> tuple[Any, ...]:
        """The row as values in OUTBOX_COLUMNS order, for bulk inserts (no ORM object per event)."""
        return (
            event.id,
            event.type,
            event.source,
            event.subject,
            event.dataschema,
            event.data,
            event.sequence,
            event.partitionkey,
            event.authid,
            event.time,
        )

    def to_event(self) -> CloudEvent:
        return event_of(self)


# The table itself, for plain-row reads and writes on hot paths (no ORM object per row).
OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
OUTBOX_COLUMNS = (
    "event_id", "type", "source", "subject", "dataschema", "data", "sequence", "partitionkey", "authid", "event_time"
)  # fmt: skip


class DriverInsert:
    """INSERTs of many rows of some columns of a table, given as plain tuples
    and run through the driver: SQLAlchemy's executemany builds and processes
    a parameter dict per row, which costs more than the insert itself when an
    import emits millions of events. Each value still goes through its column
    type's own bind processor, so rows are stored exactly as SQLAlchemy stores
    them; a value that is the same object as the row before's (an import's
    events share their time) is converted once. On PostgreSQL a chunk is one
    statement over arrays (`unnest`); on SQLite the driver's executemany."""

    CHUNK = 5000  # rows per statement: bounds the memory of one call

    def __init__(self, table: sa.Table, columns: Sequence[str]):
        self.table = table
        self.columns = tuple(columns)
        self._prepared: dict[str, tuple[str, list[tuple[int, Callable[[Any], Any]]]]] = {}

    def _prepare(self, dialect: sa.Dialect) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
        if dialect.name not in self._prepared:
            quote = dialect.identifier_preparer.quote
            names = ", ".join(quote(n) for n in self.columns)
            if dialect.name == "postgresql":
                types = [self.table.c[n].type.compile(dialect=dialect) for n in self.columns]
                arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
                sql = f"INSERT INTO {quote(self.table.name)} ({names}) SELECT * FROM unnest({arrays})"
            else:
                marks = ", ".join("?" for _ in self.columns)
                sql = f"INSERT INTO {quote(self.table.name)} ({names}) VALUES ({marks})"
            processors: list[tuple[int, Callable[[Any], Any]]] = []
            for i, n in enumerate(self.columns):
                process = self.table.c[n].type._cached_bind_processor(dialect)
                if process is not None:
                    processors.append((i, process))
            self._prepared[dialect.name] = (sql, processors)
        return self._prepared[dialect.name]

    async def run(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        sql, processors = self._prepare(conn.dialect)
        postgres = conn.dialect.name == "postgresql"
        for start in range(0, len(rows), self.CHUNK):
            chunk = [list(row) for row in rows[start : start + self.CHUNK]]
            for i, process in processors:
                last_in: Any = _NOTHING
                last_out: Any = None
                for values in chunk:
                    value = values[i]
                    if value is not last_in:
                        last_in, last_out = value, process(value)
                    values[i] = last_out
            if postgres:
                await conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*chunk, strict=True)))
            else:
                await conn.exec_driver_sql(sql, [tuple(values) for values in chunk])


_NOTHING = object()


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
