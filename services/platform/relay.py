"""Relays outbox rows to JetStream, in commit order, at least once.

Each event is published with `Nats-Msg-Id` = event id, so a republish after
a crash between the broker's acknowledgement and marking the row is dropped
by JetStream as a duplicate. On PostgreSQL several replicas relay side by
side: each claims a batch with `FOR UPDATE SKIP LOCKED` for the time of the
publish. On SQLite (one relay per database file) rows are marked in the
background while the next batch goes out, so marking never holds up
publishing. A broker or database outage only delays events: rows stay in the
outbox until acknowledged. `published_at` is the time JetStream acknowledged
the row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform import metrics
from services.platform.db import Database, utcnow
from services.platform.jetstream import NatsLink
from services.platform.log import get_logger
from services.platform.outbox import OUTBOX, OutboxRow, event_of

log = get_logger(__name__)

MARK_DELAY_SECONDS = 0.1
BACKLOG_COUNT_LIMIT = 100_000


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
        # SQLite: the last row published by this process, and acknowledged
        # rows not yet marked (seqs, acknowledgement time).
        self._published_up_to = 0
        self._unmarked: list[tuple[list[int], datetime]] = []
        self._marks_due = asyncio.Event()
        self._marker: asyncio.Task[None] | None = None
        db.after_commit.append(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        if not self.db.is_postgres:
            self._marker = asyncio.create_task(self._mark_in_background(), name="outbox-marker")

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Stops the loop, then publishes what is left for up to `flush_seconds`.

        Whatever is still unpublished after that waits in the outbox for the
        next start (or another replica): delayed, never lost.
        """
        self._stopping = True
        self.wake()
        for task in (self._task, self._marker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_seconds):
                while self.link.ready.is_set() and await self.publish_batch() > 0:
                    pass
                await self.mark_published()

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
        # Plain rows, not ORM objects: the relay reads every event once.
        query = sa.select(OUTBOX).where(OUTBOX.c.published_at.is_(None)).order_by(OUTBOX.c.seq).limit(self.batch_size)
        rows: Sequence[Any]
        if self.db.is_postgres:
            async with self.db.write() as uow:
                conn = await uow.session.connection()
                rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
                done = await self._publish(rows)
                acked_at = utcnow()
                await self._mark(uow.session, _seqs(done), acked_at)
        else:
            # Publishing outside the write lock keeps writers flowing; the
            # rows published but not yet marked are past `_published_up_to`.
            async with self.db.read() as session:
                conn = await session.connection()
                rows = (await conn.execute(query.where(OUTBOX.c.seq > self._published_up_to))).all()
            done = await self._publish(rows)
            acked_at = utcnow()
            if done:
                self._published_up_to = done[-1].seq or 0
                self._unmarked.append((_seqs(done), acked_at))
                self._marks_due.set()
        if len(done) < len(rows):
            raise ConnectionError(f"{len(rows) - len(done)} of {len(rows)} events not acknowledged")
        return len(done)

    async def _publish(self, rows: Sequence[Any]) -> list[Any]:
        """Publishes rows concurrently; returns the acknowledged prefix, so
        order is kept: rows after a failure are retried, in order."""
        js = self.link.js
        if not rows or js is None:
            return []
        acks = await asyncio.gather(
            *(js.publish(r.type, r.data, timeout=5, headers=event_of(r).headers()) for r in rows),
            return_exceptions=True,
        )
        done: list[Any] = []
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

    async def _mark(self, session: AsyncSession, seqs: list[int], acked_at: datetime) -> None:
        if seqs:
            conn = await session.connection()
            await conn.execute(OUTBOX.update().where(OUTBOX.c.seq.in_(seqs)).values(published_at=acked_at))

    async def _mark_in_background(self) -> None:
        backoff = 0.1
        while True:
            await self._marks_due.wait()
            # Marks wait a moment to share one write: they only record what
            # JetStream already holds (a crash before them republishes, and
            # JetStream drops the copies).
            await asyncio.sleep(MARK_DELAY_SECONDS)
            self._marks_due.clear()
            try:
                await self.mark_published()
                backoff = 0.1
            except Exception as exc:  # the database is down: the marks wait, the rows stay published
                log.warning("outbox.mark_failed", error=str(exc) or type(exc).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._marks_due.set()

    async def mark_published(self) -> None:
        """Marks the rows published since the last call (SQLite), in one transaction."""
        pending, self._unmarked = self._unmarked, []
        if not pending:
            return
        try:
            async with self.db.write() as uow:
                for seqs, acked_at in pending:
                    for start in range(0, len(seqs), 500):  # drivers cap a statement's parameters
                        await self._mark(uow.session, seqs[start : start + 500], acked_at)
        except BaseException:
            self._unmarked[:0] = pending
            raise

    async def backlog(self) -> int:
        """Events waiting, counted up to BACKLOG_COUNT_LIMIT: the readiness loop
        asks every second, and a count of millions after a big import would
        cost more than the gauge is worth."""
        waiting = sa.select(OUTBOX.c.seq).where(OUTBOX.c.published_at.is_(None)).limit(BACKLOG_COUNT_LIMIT).subquery()
        async with self.db.read() as session:
            conn = await session.connection()
            count = int((await conn.execute(sa.select(sa.func.count()).select_from(waiting))).scalar_one())
        metrics.OUTBOX_BACKLOG.labels(self.service).set(count)
        return count

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


def _seqs(rows: Sequence[Any]) -> list[int]:
    return [r.seq or 0 for r in rows]
