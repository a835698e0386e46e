"""DeadLetterService: messages the consumers gave up on."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from engage.incentives.v1 import dead_letters_pb2, dead_letters_pb2_grpc

from services.incentives import messages
from services.incentives.api.behaviours import required_text
from services.incentives.app import dead_letters as uc
from services.platform.consumer import Handler
from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.protobuf import enum_in
from services.platform.resources import page_of, parse_name


def _letter_id(name: str, field: str = "name") -> int:
    raw = parse_name(name, "deadLetters", field)
    if not raw.isdigit():
        raise invalid(field, f"must be deadLetters/{{number}}, got {name!r}")
    return int(raw)


def _out(letter: uc.Letter) -> dead_letters_pb2.DeadLetter:
    return messages.dead_letter_out(letter.row, letter.decision)


class DeadLetterServicer(dead_letters_pb2_grpc.DeadLetterServiceServicer):
    def __init__(self, db: Database, handlers: Mapping[str, Handler]):
        self.db = db
        self.handlers = handlers

    async def ListDeadLetters(
        self, request: dead_letters_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.ListDeadLettersResponse:
        state = (
            enum_in(uc.LetterState, dead_letters_pb2.DeadLetter.State, request.state, "STATE_", "state")
            if request.state
            else None
        )
        page = page_of(request.page_size, request.page_token, consumer=request.consumer, state=state)
        letters = await uc.list_letters(self.db, request.consumer, state, page.size, page.after)
        return dead_letters_pb2.ListDeadLettersResponse(
            dead_letters=[_out(x) for x in letters],
            next_page_token=page.next_token(letters[-1].row.id if letters else None, len(letters)),
        )

    async def GetDeadLetter(
        self, request: dead_letters_pb2.GetDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.DeadLetter:
        return _out(await uc.get_letter(self.db, _letter_id(request.name)))

    async def ReplayDeadLetter(
        self, request: dead_letters_pb2.ReplayDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.DeadLetter:
        return _out(await uc.replay_letter(self.db, self.handlers, _letter_id(request.name), request.etag))

    async def DiscardDeadLetter(
        self, request: dead_letters_pb2.DiscardDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.DeadLetter:
        letter_id = _letter_id(request.name)
        reason = required_text(request.reason, "reason", 2000)
        return _out(await uc.discard_letter(self.db, letter_id, reason, request.etag))
