"""The consumer of CRM behaviour events, batched for throughput.

The platform consumer applies a batch in one transaction with a savepoint
and several queries per message. Behaviour events come by the thousand a
second, so this one settles a whole fetched batch with one query per kind of
lookup and bulk inserts (events, credits) in one transaction, then
acknowledges. Idempotency is by event id: the behaviour event row itself
(a redelivered event is a DUPLICATE of the row its first delivery wrote, so
no inbox row is needed beside it). Whatever does not fit the fast
path (a message that is not a CloudEvent or not a well-formed behaviour, a
rejected one, or a batch whose transaction failed) goes through the
platform's per-message path, with its bounded redeliveries and dead letters.
"""

from __future__ import annotations

from nats.aio.msg import Msg

from services.incentives.app.changes import committed
from services.incentives.app.ingestion import REJECTED, credit_clock, crm_body, crm_observation, record_many
from services.incentives.messages import Observed
from services.platform.cloudevents import CloudEvent
from services.platform.consumer import EventConsumer
from services.platform.log import get_logger

log = get_logger(__name__)


class CrmBehaviourConsumer(EventConsumer):
    @classmethod
    def around(cls, plain: EventConsumer) -> CrmBehaviourConsumer:
        """The batched form of a consumer configured as the platform's."""
        return cls(
            plain.db,
            plain.link,
            name=plain.name,
            stream=plain.stream,
            subjects=plain.subjects,
            handler=plain.handler,
            max_deliver=plain.max_deliver,
            batch_size=plain.batch_size,
            ack_wait_seconds=plain.ack_wait,
            prefetch=True,
        )

    async def apply(self, messages: list[Msg]) -> None:
        good: list[tuple[Msg, CloudEvent, Observed]] = []
        slow: list[Msg] = []
        for msg in messages:
            try:
                event = CloudEvent.from_message(msg.headers, msg.data)
                good.append((msg, event, crm_observation(event, crm_body(event))))
            except Exception:  # malformed: the platform's path counts deliveries and dead-letters
                slow.append(msg)
        if good:
            try:
                slow.extend(await self._apply_batch(good))
            except Exception as exc:
                log.warning("consumer.batch_failed", consumer=self.name, error=str(exc) or type(exc).__name__)
                slow = messages
        if slow:
            await super().apply(slow)

    async def _apply_batch(self, batch: list[tuple[Msg, CloudEvent, Observed]]) -> list[Msg]:
        """Applies the batch; returns the messages left for the per-message path."""
        async with self.db.write() as uow:
            s = uow.session
            outcomes = await record_many(s, [o for _, _, o in batch], await credit_clock(s))
        committed(self.db)
        rejected = {o.id for o in outcomes if o.kind == REJECTED}
        left = [msg for msg, event, _ in batch if event.id in rejected]
        for msg, event, _ in batch:
            if event.id not in rejected:
                await msg.ack()
        self.applied += len(batch) - len(left)
        return left
