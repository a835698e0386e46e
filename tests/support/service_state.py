"""What a running service holds, read from outside: its outbox backlog and every item a List method returns."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from services.platform.db import Database
from services.platform.outbox import OutboxRow

Metadata = tuple[tuple[str, str], ...]


async def backlog(db: Database, up_to: int | None = None) -> int:
    """Outbox rows not yet published (read straight from the service's database);
    with `up_to`, only those written up to that outbox sequence number."""
    query = select(sa.func.count()).select_from(OutboxRow).where(col(OutboxRow.published_at).is_(None))
    if up_to is not None:
        query = query.where(col(OutboxRow.seq) <= up_to)
    async with db.read() as s:
        return int((await s.exec(query)).one())


async def last_outbox_seq(db: Database) -> int:
    async with db.read() as s:
        return int((await s.exec(select(sa.func.coalesce(sa.func.max(OutboxRow.seq), 0)))).one())


async def all_names(method: Any, request: Any, field: str, metadata: Metadata) -> list[str]:
    """The names of every item a List method returns, page by page (`field`: the response's list)."""
    names: list[str] = []
    token = ""
    while True:
        page = await method(request(page_size=1000, page_token=token), metadata=metadata, timeout=30)
        names += [item.name for item in getattr(page, field)]
        token = page.next_page_token
        if not token:
            return names
