"""Dead letters: messages a consumer gave up on, listed, replayed once the
cause is mended, or discarded with a reason. The platform keeps the message;
the decision is ours, in a row of its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives.events.outgoing import dead_letter_event
from services.incentives.store.tables import DeadLetterDecisionRow
from services.platform.auth import current_identity
from services.platform.cloudevents import CloudEvent
from services.platform.consumer import DeadLetterRow, Handler, InboxRow
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import FailedPrecondition
from services.platform.lookups import get_or_404
from services.platform.resources import check_etag


class LetterState(StrEnum):
    PENDING = "PENDING"
    REPLAYED = "REPLAYED"
    DISCARDED = "DISCARDED"


@dataclass(frozen=True)
class Letter:
    row: DeadLetterRow
    decision: DeadLetterDecisionRow | None

    @property
    def name(self) -> str:
        return f"deadLetters/{self.row.id}"

    @property
    def state(self) -> LetterState:
        return LetterState(self.decision.state) if self.decision else LetterState.PENDING

    @property
    def revision(self) -> int:
        return self.decision.revision if self.decision else 1


async def _letter(s: AsyncSession, letter_id: int, *, lock: bool = False) -> Letter:
    row = await get_or_404(s, DeadLetterRow, letter_id, f"deadLetters/{letter_id}", lock=lock)
    return Letter(row, await s.get(DeadLetterDecisionRow, letter_id))


async def get_letter(db: Database, letter_id: int) -> Letter:
    async with db.read() as s:
        return await _letter(s, letter_id)


async def list_letters(
    db: Database, consumer: str, state: LetterState | None, size: int, before: int | None
) -> list[Letter]:
    """Newest first; `before` is the id of the last letter of the previous page."""
    async with db.read() as s:
        query = (
            select(DeadLetterRow, DeadLetterDecisionRow)
            .join(
                DeadLetterDecisionRow,
                col(DeadLetterDecisionRow.dead_letter_id) == col(DeadLetterRow.id),
                isouter=True,
            )
            .order_by(col(DeadLetterRow.id).desc())
            .limit(size)
        )
        if consumer:
            query = query.where(DeadLetterRow.consumer == consumer)
        if state == LetterState.PENDING:
            query = query.where(col(DeadLetterDecisionRow.state).is_(None))
        elif state is not None:
            query = query.where(DeadLetterDecisionRow.state == state.value)
        if before is not None:
            query = query.where(col(DeadLetterRow.id) < before)
        return [Letter(row, decision) for row, decision in (await s.exec(query)).all()]


async def _pending(uow: UnitOfWork, letter_id: int, etag: str) -> Letter:
    letter = await _letter(uow.session, letter_id, lock=True)
    check_etag(etag, letter.name, letter.revision)
    if letter.decision is not None:
        raise FailedPrecondition(
            f"{letter.name} was {letter.state.lower()} by {letter.decision.decided_by} already", "DEAD_LETTER_DECIDED"
        )
    return letter


def _decide(uow: UnitOfWork, letter: Letter, state: LetterState, reason: str) -> Letter:
    decision = DeadLetterDecisionRow(
        dead_letter_id=letter.row.id or 0,
        state=state.value,
        reason=reason,
        decided_by=current_identity().actor,
        decide_time=utcnow(),
    )
    uow.session.add(decision)
    decided = Letter(letter.row, decision)
    verb = "replayed" if state == LetterState.REPLAYED else "discarded"
    uow.emit(dead_letter_event(verb, letter.row, decision))
    return decided


async def replay_letter(db: Database, handlers: Mapping[str, Handler], letter_id: int, etag: str) -> Letter:
    """Applies the message again through its consumer's handler, at most once
    (the consumer's inbox remembers it); a failure changes nothing."""
    async with db.write() as uow:
        letter = await _pending(uow, letter_id, etag)
        handler = handlers.get(letter.row.consumer)
        if handler is None:
            raise FailedPrecondition(f"no consumer {letter.row.consumer!r} runs here", "STILL_UNPROCESSABLE")
        try:
            event = CloudEvent.from_message(letter.row.headers, letter.row.data)
            s = uow.session
            seen = await s.get(InboxRow, (letter.row.consumer, event.id))
            if seen is None:
                s.add(InboxRow(consumer=letter.row.consumer, event_id=event.id, type=event.type, received_at=utcnow()))
                async with s.begin_nested():
                    await handler(uow, event)
        except Exception as exc:
            raise FailedPrecondition(
                f"{letter.name} still cannot be applied: {type(exc).__name__}: {exc}"[:1000], "STILL_UNPROCESSABLE"
            ) from exc
        return _decide(uow, letter, LetterState.REPLAYED, "")


async def discard_letter(db: Database, letter_id: int, reason: str, etag: str) -> Letter:
    async with db.write() as uow:
        return _decide(uow, await _pending(uow, letter_id, etag), LetterState.DISCARDED, reason)
