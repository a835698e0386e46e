"""Async database access: SQLite by default, PostgreSQL by URL.

`Database.write()` opens a unit of work: one transaction that commits the
change together with its outbox events, or rolls everything back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.audit import AuditRecord, audit_values
from services.platform.cloudevents import CloudEvent
from services.platform.outbox import OutboxRow


def utcnow() -> datetime:
    """Aware UTC, as SQLModel's datetime columns require."""
    return datetime.now(UTC)


class UnitOfWork:
    """A transaction in progress; `emit` adds an event to the same transaction."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self.events: list[CloudEvent] = []

    def emit(self, event: CloudEvent) -> None:
        self.events.append(event)
        self.session.add(OutboxRow.from_event(event))
        self.session.add(AuditRecord(**audit_values(event)))

    async def emit_many(self, events: list[CloudEvent]) -> None:
        """Bulk form of `emit` for imports: one multi-row INSERT per chunk."""
        self.events.extend(events)
        rows = [OutboxRow.from_event(e).model_dump(exclude={"seq"}) for e in events]
        audits = [audit_values(e) for e in events]
        for start in range(0, len(rows), 5000):
            await self.session.execute(sa.insert(OutboxRow), rows[start : start + 5000])
            await self.session.execute(sa.insert(AuditRecord), audits[start : start + 5000])


class Database:
    def __init__(self, url: str, *, pool_size: int = 10):
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = parsed.get_backend_name() == "postgresql"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=5,
                connect_args={"timeout": 5, "command_timeout": 30},
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(engage_read=True), class_=AsyncSession, expire_on_commit=False
        )
        # SQLite has one writer at a time; queueing writers here keeps them
        # from busy-waiting on the file lock.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.after_commit: list[Callable[[], None]] = []

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            async with self._sessions() as session:
                uow = UnitOfWork(session)
                async with session.begin():
                    yield uow
            if uow.events:
                for hook in self.after_commit:
                    hook()
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            # A read connection: on SQLite a plain one would take the write lock.
            async with self.engine.execution_options(engage_read=True).connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, FULL sync so a commit survives power loss,
    and BEGIN IMMEDIATE for writers so a transaction never fails half way on
    a lock upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("engage_read", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
