"""Relays outbox rows to JetStream, in commit order, at least once.

Each event is published with `Nats-Msg-Id` = event id, so a republish after
a crash between the broker's acknowledgement and marking the row is dropped
by JetStream as a duplicate. On PostgreSQL several replicas relay side by
side: each claims a batch with `FOR UPDATE SKIP LOCKED` for the time of the
publish. A broker or database outage only delays events: rows stay in the
outbox until acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform import metrics
from services.platform.db import Database, utcnow
from services.platform.jetstream import NatsLink
from services.platform.log import get_logger
from services.platform.outbox import OutboxRow

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        link: NatsLink,
        service: str,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        retention_hours: float = 24.0,
    ):
        self.db = db
        self.link = link
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = timedelta(hours=retention_hours)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        db.after_commit.append(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Stops the loop, then publishes what is left for up to `flush_seconds`.

        Whatever is still unpublished after that waits in the outbox for the
        next start (or another replica): delayed, never lost.
        """
        self._stopping = True
        self.wake()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.link.ready.is_set():
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_seconds):
                while await self.publish_batch() > 0:
                    pass

    async def _run(self) -> None:
        backoff = 0.1
        cycles = 0
        while not self._stopping:
            if not self.link.ready.is_set():
                await self._sleep(self.poll_seconds)
                continue
            try:
                published = await self.publish_batch()
                backoff = 0.1
            except Exception as exc:  # NATS or the database is down: retry later
                metrics.OUTBOX_FAILURES.labels(self.service).inc()
                log.warning("outbox.publish_failed", error=str(exc) or type(exc).__name__, retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            cycles += 1
            if cycles % 1000 == 0:
                await self._purge()
            if published < self.batch_size:
                await self._sleep(self.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def publish_batch(self) -> int:
        """Publishes the oldest unpublished rows; returns how many were acknowledged."""
        query = (
            select(OutboxRow)
            .where(col(OutboxRow.published_at).is_(None))
            .order_by(col(OutboxRow.seq))
            .limit(self.batch_size)
        )
        if self.db.is_postgres:
            async with self.db.write() as uow:
                rows = (await uow.session.exec(query.with_for_update(skip_locked=True))).all()
                done = await self._publish(rows)
                await self._mark(uow.session, done)
        else:
            # SQLite has one relay per database file; publishing outside the
            # write lock keeps writers flowing.
            async with self.db.read() as session:
                rows = (await session.exec(query)).all()
            done = await self._publish(rows)
            if done:
                async with self.db.write() as uow:
                    await self._mark(uow.session, done)
        if len(done) < len(rows):
            raise ConnectionError(f"{len(rows) - len(done)} of {len(rows)} events not acknowledged")
        return len(done)

    async def _publish(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """Publishes rows concurrently; returns the acknowledged prefix, so
        order is kept: rows after a failure are retried, in order."""
        js = self.link.js
        if not rows or js is None:
            return []
        acks = await asyncio.gather(
            *(js.publish(r.type, r.data, timeout=5, headers=r.to_event().headers()) for r in rows),
            return_exceptions=True,
        )
        done: list[OutboxRow] = []
        now = utcnow()
        for row, ack in zip(rows, acks, strict=True):
            if isinstance(ack, BaseException):
                break
            done.append(row)
            if ack.duplicate:
                metrics.OUTBOX_DUPLICATES.labels(self.service).inc()
            metrics.OUTBOX_LAG.labels(self.service).observe((now - row.event_time).total_seconds())
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(done))
        return done

    async def _mark(self, session: AsyncSession, rows: Sequence[OutboxRow]) -> None:
        if rows:
            await session.execute(
                sa.update(OutboxRow).where(col(OutboxRow.seq).in_([r.seq for r in rows])).values(published_at=utcnow())
            )

    async def backlog(self) -> int:
        async with self.db.read() as session:
            count = (
                await session.exec(
                    select(sa.func.count()).select_from(OutboxRow).where(col(OutboxRow.published_at).is_(None))
                )
            ).one()
        metrics.OUTBOX_BACKLOG.labels(self.service).set(count)
        return int(count)

    async def _purge(self) -> None:
        """Deletes published rows past the retention period, always keeping the
        newest row: SQLite numbers new rows after the highest one left, and
        readers follow the outbox by those numbers."""
        cutoff = utcnow() - self.retention
        async with self.db.write() as uow:
            newest = sa.select(sa.func.max(OutboxRow.seq)).scalar_subquery()
            await uow.session.execute(
                sa.delete(OutboxRow).where(
                    col(OutboxRow.published_at).is_not(None),
                    col(OutboxRow.published_at) < cutoff,
                    col(OutboxRow.seq) < newest,
                )
            )
