"""Loading rows by key with the right error when they are missing."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.errors import NotFound, invalid
from services.platform.resources import recall_request

RowT = TypeVar("RowT", bound=SQLModel)


async def get_or_404(session: AsyncSession, row_type: type[RowT], key: Any, name: str, *, lock: bool = False) -> RowT:
    row = await session.get(row_type, key, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"{name} does not exist")
    return row


async def get_reference(session: AsyncSession, row_type: type[RowT], key: Any, name: str, field: str) -> RowT:
    """A row named by a request field: a missing one is the request's fault."""
    row = await session.get(row_type, key)
    if row is None:
        raise invalid(field, f"{name} does not exist")
    return row


async def recall_created(
    session: AsyncSession, request_id: str, operation: str, request: Message, row_type: type[RowT]
) -> RowT | None:
    """The row a previous create with this request id made (AIP-155), or None."""
    earlier = await recall_request(session, request_id, operation, request)
    if not earlier:
        return None
    return await get_or_404(session, row_type, earlier.split("/", 1)[1], earlier)
