"""Async database access: SQLite by default, PostgreSQL by URL.

`Database.write()` opens a unit of work: one transaction that commits the
change together with its outbox events, or rolls everything back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform import sqlite_driver
from services.platform.audit import AUDIT_COLUMNS, AuditRecord, audit_plain, current_request_id
from services.platform.cloudevents import CloudEvent
from services.platform.errors import Unavailable
from services.platform.log import get_logger
from services.platform.outbox import OUTBOX, OUTBOX_COLUMNS, DriverInsert, OutboxRow
from services.platform.settings import ServiceSettings

log = get_logger(__name__)
AUDIT: sa.Table = AuditRecord.__table__  # type: ignore[attr-defined]


def utcnow() -> datetime:
    """Aware UTC, as SQLModel's datetime columns require."""
    return datetime.now(UTC)


class UnitOfWork:
    """A transaction in progress; `emit` adds an event to the same transaction.

    Emitted events are inserted (outbox and audit rows) as the unit's last
    statements, in emit order, as plain rows: an ORM object per event cost
    more than the rest of a small write.
    """

    def __init__(self, session: AsyncSession):
        self.session = session
        self.events: list[CloudEvent] = []
        self._unwritten: list[tuple[CloudEvent, str]] = []  # events not yet inserted, with their request id

    def emit(self, event: CloudEvent) -> None:
        self.events.append(event)
        # The request id now: the audit row takes the one of the call in progress.
        self._unwritten.append((event, current_request_id()))

    async def emit_many(self, events: list[CloudEvent]) -> None:
        """`emit` for imports: written at once, in multi-row INSERTs."""
        request_id = current_request_id()  # once: an import emits millions
        self.events.extend(events)
        self._unwritten.extend((e, request_id) for e in events)
        await self.write_events()

    async def write_events(self) -> None:
        """Inserts the events emitted so far (`Database.write` calls it before committing)."""
        unwritten, self._unwritten = self._unwritten, []
        if not unwritten:
            return
        conn = await self.session.connection()
        await _OUTBOX_INSERT.run(conn, [OutboxRow.plain(e) for e, _ in unwritten])
        await _AUDIT_INSERT.run(conn, [audit_plain(e, request_id) for e, request_id in unwritten])


_OUTBOX_INSERT = DriverInsert(OUTBOX, OUTBOX_COLUMNS)
_AUDIT_INSERT = DriverInsert(AUDIT, AUDIT_COLUMNS)


class GroupCommit:
    """SQLite writers take turns on one connection and share a commit.

    A SQLite commit waits for the disk (`synchronous=FULL`: an fsync each),
    and only one writer may work at a time, so one commit per unit of work
    caps writes at the disk's fsync rate. Here each unit of work runs in a
    SAVEPOINT of a transaction shared with the writers queued beside it; the
    writers that queued while a unit of work ran join the same transaction,
    and one COMMIT (one fsync) makes them all durable. A unit of work that
    fails rolls back its savepoint only. Nobody is told "done" before the
    shared COMMIT: if it fails, every member of the group gets the error and
    none of their changes exist.
    """

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.lock = asyncio.Lock()  # FIFO: the committer waits behind the writers queued before it
        self._group: _Group | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self._lock_failed_at = float("-inf")  # loop time a BEGIN last failed

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        async with self.lock:
            if self._group is None:
                if self._lock_failed_at >= queued_at:
                    # Another process held the file while this writer queued:
                    # fail now rather than wait out the lock once more.
                    raise Unavailable("the database is busy in another process; retry later", "DATABASE_UNAVAILABLE")
                conn = await self.engine.connect()
                try:
                    await conn.begin()  # BEGIN IMMEDIATE (see _tune_sqlite), waits up to the busy timeout
                except BaseException:
                    self._lock_failed_at = loop.time()
                    with contextlib.suppress(Exception):
                        await conn.close()
                    raise
                self._group = _Group(conn, loop.create_future())
            group = self._group
            try:
                async with AsyncSession(
                    bind=group.conn, join_transaction_mode="create_savepoint", expire_on_commit=False
                ) as session:
                    uow = UnitOfWork(session)
                    async with session.begin():  # SAVEPOINT ... RELEASE, or ROLLBACK TO it
                        yield uow
                        await uow.write_events()
            except BaseException as exc:
                if group.conn.invalidated or _driver_failure(exc):
                    await self._abort(group, exc)  # the connection itself failed: the group cannot commit
                raise
            finally:
                # Even a failed unit schedules the commit: the transaction must
                # not hold SQLite's write lock while nobody writes.
                if not group.commit_scheduled:
                    group.commit_scheduled = True
                    task = asyncio.create_task(self._commit(group), name="sqlite-group-commit")
                    self._commits.add(task)
                    task.add_done_callback(self._commits.discard)
        await asyncio.shield(group.done)

    async def settle(self) -> None:
        """Waits for the commits in flight (each closes its connection when done)."""
        while self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)

    async def _commit(self, group: _Group) -> None:
        async with self.lock:
            if self._group is not group:
                return  # aborted
            self._group = None
            try:
                await group.conn.commit()
                group.done.set_result(None)
            except Exception as exc:
                log.warning("db.group_commit_failed", error=str(exc) or type(exc).__name__)
                group.fail(exc)
                with contextlib.suppress(Exception):
                    await group.conn.rollback()
            finally:
                with contextlib.suppress(Exception):
                    await group.conn.close()

    async def _abort(self, group: _Group, exc: BaseException) -> None:
        if self._group is group:
            self._group = None
        group.fail(exc)
        with contextlib.suppress(Exception):
            await group.conn.rollback()
        with contextlib.suppress(Exception):
            await group.conn.close()


def _driver_failure(exc: BaseException) -> bool:
    """A database error other than a constraint (which stays inside its
    savepoint), raised as it is or wrapped by the code that met it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError) and not isinstance(seen, sa.exc.IntegrityError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Group:
    """Units of work sharing one transaction, and the future of its COMMIT."""

    conn: AsyncConnection
    done: asyncio.Future[None]
    commit_scheduled: bool = False

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # the members re-raise it; a group of one leaves nobody waiting


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, statement_timeout: float = 30.0):
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = parsed.get_backend_name() == "postgresql"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": statement_timeout}
            if parsed.get_driver_name() == "aiosqlite":
                kwargs["module"] = sqlite_driver.dbapi()  # one thread hop per statement
        else:
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=connect_timeout,
                connect_args={"timeout": connect_timeout, "command_timeout": statement_timeout},
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine, busy_ms=round(statement_timeout * 1000))
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(engage_read=True), class_=AsyncSession, expire_on_commit=False
        )
        # SQLite has one writer at a time: writers queue here (never
        # busy-waiting on the file lock) and share commits.
        self._groups = GroupCommit(self.engine) if self.is_sqlite else None
        self.after_commit: list[Callable[[], None]] = []

    @classmethod
    def of(cls, settings: ServiceSettings) -> Database:
        """The service's database, with its timeouts from the settings."""
        return cls(
            settings.resolved_database_url(),
            connect_timeout=settings.db_connect_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: on return it has committed, with its events."""
        if self._groups is not None:
            async with self._groups.unit() as uow:
                yield uow
            if uow.events:
                self._committed()
            return
        async with self._sessions() as session:
            uow = UnitOfWork(session)
            async with session.begin():
                yield uow
                await uow.write_events()
        if uow.events:
            self._committed()

    def _committed(self) -> None:
        for hook in self.after_commit:
            hook()

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
        if self._groups is not None:
            await self._groups.settle()  # not cancelled half way by the pool's shutdown
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine, busy_ms: int) -> None:
    """WAL for concurrent readers, FULL sync so a commit survives power loss,
    and BEGIN IMMEDIATE for writers so a transaction never fails half way on
    a lock upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("engage_read", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
