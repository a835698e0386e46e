"""Faults injected into a running platform EventConsumer, in the service's own process.

- A crash between commit and ack: on chosen batches the consumer's task dies
  at its first acknowledgement, after the database committed the batch (as
  a kill -9 at that point would leave it); it restarts a moment later and
  JetStream redelivers the batch once the ack wait has passed.
- A transient handler failure on the first delivery of chosen events: the
  event is handed back and redelivered after newer events were applied, so
  deliveries interleave out of order.

`applied` counts, per event id, the handler runs whose transaction committed:
an id counted twice is an event applied twice. (A consumer that applies a
batch without its handler, in bulk, must be counted by its effects instead.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from services.platform.cloudevents import CloudEvent
from services.platform.consumer import EventConsumer
from services.platform.db import UnitOfWork


class InjectedFailure(RuntimeError):
    pass


class ConsumerFaults:
    def __init__(
        self,
        consumer: EventConsumer,
        *,
        crash_every: int = 0,
        max_crashes: int = 0,
        fail_first_delivery: Callable[[CloudEvent], bool] = lambda _e: False,
    ):
        self.consumer = consumer
        self.applied: Counter[str] = Counter()
        self.crashes = 0
        self.transient_failures = 0
        self._crash_every = crash_every
        self._max_crashes = max_crashes
        self._fail_first = fail_first_delivery
        self._failed_once: set[str] = set()
        self._batches = 0
        self._pending: list[str] = []
        self._crashed = False
        self._real_apply = consumer.apply
        self._real_handler = consumer.handler
        consumer.apply = self._apply  # type: ignore[method-assign]
        consumer.handler = self._handle

    async def _handle(self, uow: UnitOfWork, event: CloudEvent) -> None:
        if event.id not in self._failed_once and self._fail_first(event):
            self._failed_once.add(event.id)
            self.transient_failures += 1
            raise InjectedFailure("injected transient failure on the first delivery")
        await self._real_handler(uow, event)
        self._pending.append(event.id)

    async def _apply(self, messages: list[Msg]) -> None:
        self._pending, self._crashed = [], False
        self._batches += 1
        if self._crash_every and self.crashes < self._max_crashes and self._batches % self._crash_every == 0:
            for msg in messages:
                msg.ack = self._crash  # type: ignore[method-assign]
        try:
            await self._real_apply(messages)
            self.applied.update(self._pending)
        except BaseException:
            if self._crashed:  # the batch committed before the crash
                self.applied.update(self._pending)
            raise

    async def _crash(self, *_args: Any, **_kwargs: Any) -> None:
        self._crashed = True
        self.crashes += 1
        asyncio.get_running_loop().call_later(0.2, self.consumer.start)
        # Ends the consumer's task like a dead process: no ack, no nak.
        raise asyncio.CancelledError
