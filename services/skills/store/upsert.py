"""INSERT ... ON CONFLICT DO UPDATE for the two databases the service runs on
(both dialects build it the same way; only the construct differs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


async def upsert_statement(
    s: AsyncSession, table: sa.Table, key: Sequence[str], source: sa.Select[Any] | None = None
) -> Any:
    """An upsert into `table` on its `key`, updating every other column;
    from `source` if given, else from the parameters it is executed with."""
    conn = await s.connection()
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    if source is not None:
        columns = [c.name for c in table.columns]
        insert = insert.from_select(columns, source)
    return insert.on_conflict_do_update(
        index_elements=list(key),
        set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in key},
    )
