"""Durable JetStream consumers that apply each event exactly once in effect.

A consumer fetches a batch, applies each event in its own savepoint of one
database transaction together with an inbox row keyed by the event id, commits,
and only then acknowledges. A redelivery (after a crash between commit and
ack, or a broker restart) finds the inbox row and is skipped: de-duplication
is by event id, never by the delivery counter. A message that is not a
CloudEvent, or whose handler keeps failing, goes to the dead-letter table
after `max_deliver` attempts and is acknowledged, so it never stalls the rest.
Several replicas share one durable consumer: JetStream hands each message to
one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import nats.errors
import sqlalchemy as sa
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.cloudevents import CloudEvent
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.jetstream import NatsLink
from services.platform.log import get_logger

log = get_logger(__name__)

Handler = Callable[[UnitOfWork, CloudEvent], Awaitable[None]]


class Unprocessable(Exception):
    """Raised by a handler for an event that can never apply (a body that does
    not parse, a required field missing): it is dead-lettered at once instead
    of being retried."""


# Failures no retry can mend.
PERMANENT = (Unprocessable, DecodeError)


class InboxRow(SQLModel, table=True):
    """Events a consumer has applied (the de-duplication record)."""

    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=200)
    received_at: datetime


class DeadLetterRow(SQLModel, table=True):
    """A message that could not be applied: kept with its reason, never dropped."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    consumer: str = Field(max_length=100, index=True)
    subject: str = Field(max_length=300)
    stream_sequence: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    event_id: str = Field(default="", max_length=64)
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    error: str = Field(max_length=2000)
    deliveries: int
    created_at: datetime


class EventConsumer:
    def __init__(
        self,
        db: Database,
        link: NatsLink,
        *,
        name: str,
        stream: str,
        subjects: list[str],
        handler: Handler,
        max_deliver: int = 5,
        batch_size: int = 200,
        ack_wait_seconds: float = 30.0,
        prefetch: bool = False,
    ):
        self.db = db
        self.link = link
        self.name = name
        self.stream = stream
        self.subjects = subjects
        self.handler = handler
        self.max_deliver = max_deliver
        self.batch_size = batch_size
        self.ack_wait = ack_wait_seconds
        # Fetch the next batch while this one is applied (NATS and the database
        # work at once; batches still apply in order). What was fetched ahead
        # when a batch fails comes back after the ack wait.
        self.prefetch = prefetch
        self.applied = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def ensure(self, js: JetStreamContext) -> None:
        config = ConsumerConfig(
            durable_name=self.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # One more than ours: we dead-letter at max_deliver ourselves and ack.
            max_deliver=self.max_deliver + 1,
            filter_subjects=self.subjects,
            max_ack_pending=self.batch_size * 4,
        )
        await js.add_consumer(self.stream, config)

    async def _run(self) -> None:
        while not self._stopping:
            await self.link.ready.wait()
            js = self.link.js
            assert js is not None
            sub = None
            ahead: asyncio.Task[list[Msg]] | None = None
            try:
                await self.ensure(js)
                sub = await js.pull_subscribe_bind(durable=self.name, stream=self.stream)
                if self.prefetch:
                    ahead = asyncio.create_task(_fetch(sub, self.batch_size))
                while not self._stopping:
                    if ahead is not None:
                        messages = await ahead
                        ahead = asyncio.create_task(_fetch(sub, self.batch_size))
                    else:
                        messages = await _fetch(sub, self.batch_size)
                    if not messages:
                        continue
                    try:
                        await self.apply(messages)
                    except Exception:
                        # The transaction failed as a whole (database down):
                        # hand the batch back for a prompt redelivery.
                        for msg in messages:
                            with contextlib.suppress(Exception):
                                await msg.nak(delay=1.0)
                        raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database trouble: retry
                log.warning("consumer.error", consumer=self.name, error=str(exc) or type(exc).__name__)
                await asyncio.sleep(0.5)
            finally:
                if ahead is not None:
                    ahead.cancel()
                    with contextlib.suppress(BaseException):
                        await ahead
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    async def apply(self, messages: list[Msg]) -> None:
        """Applies a batch in one transaction, one savepoint per message."""
        done: list[Msg] = []
        retry: list[Msg] = []
        dead: list[tuple[Msg, str]] = []
        async with self.db.write() as uow:
            for msg in messages:
                try:
                    event = CloudEvent.from_message(msg.headers, msg.data)
                except ValueError as exc:  # malformed: it will never apply
                    dead.append((msg, f"not a CloudEvent: {exc}"))
                    continue
                try:
                    async with uow.session.begin_nested():
                        if await self._seen(uow.session, event.id):
                            done.append(msg)
                            continue
                        uow.session.add(
                            InboxRow(consumer=self.name, event_id=event.id, type=event.type, received_at=utcnow())
                        )
                        await self.handler(uow, event)
                    done.append(msg)
                except Exception as exc:
                    if isinstance(exc, PERMANENT) or msg.metadata.num_delivered >= self.max_deliver:
                        dead.append((msg, f"{type(exc).__name__}: {exc}"))
                    else:
                        log.warning("consumer.retry", consumer=self.name, event_id=event.id, error=str(exc))
                        retry.append(msg)
            for msg, reason in dead:
                uow.session.add(_dead_letter(self.name, msg, reason))
        # Acknowledge only after the commit: a crash before this line means a
        # redelivery, which the inbox turns into a no-op.
        for msg in done:
            await msg.ack()
        for msg, reason in dead:
            log.error("consumer.dead_letter", consumer=self.name, subject=msg.subject, reason=reason)
            await msg.ack()
        for msg in retry:
            await msg.nak(delay=min(2.0**msg.metadata.num_delivered, 30.0))
        self.applied += len(done)

    async def _seen(self, session: AsyncSession, event_id: str) -> bool:
        found = await session.exec(
            select(InboxRow.event_id).where(InboxRow.consumer == self.name, InboxRow.event_id == event_id)
        )
        return found.first() is not None

    async def rebuild(self, reset: Callable[[UnitOfWork], Awaitable[None]]) -> None:
        """Forgets everything applied and reads the stream again from its start.

        `reset` empties the projection in the same transaction as the inbox.
        """
        js = self.link.js
        assert js is not None
        await self.stop()
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(self.stream, self.name)
        async with self.db.write() as uow:
            await uow.session.execute(sa.delete(InboxRow).where(col(InboxRow.consumer) == self.name))
            await reset(uow)
        self._stopping = False
        self.start()


def _dead_letter(consumer: str, msg: Msg, reason: str) -> DeadLetterRow:
    headers = dict(msg.headers or {})
    return DeadLetterRow(
        consumer=consumer,
        subject=msg.subject,
        stream_sequence=msg.metadata.sequence.stream,
        event_id=headers.get("ce-id", headers.get("Nats-Msg-Id", "")),
        headers=headers,
        data=msg.data or b"",
        error=reason[:2000],
        deliveries=msg.metadata.num_delivered,
        created_at=utcnow(),
    )


async def _fetch(sub: JetStreamContext.PullSubscription, size: int) -> list[Msg]:
    try:
        return await sub.fetch(size, timeout=1.0)
    except (nats.errors.TimeoutError, TimeoutError):
        return []
