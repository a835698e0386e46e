"""Many rows written through the driver, without SQLAlchemy's per-value work.

An import writes millions of rows. SQLAlchemy's executemany runs a Python
bind processor for every value (each datetime formatted, each list dumped to
JSON, each row's parameters rebuilt), which costs more than the database's
own work. Here the conversions are chosen once per table and database, rows
become plain tuples, and the driver's executemany takes them (sqlite3's, or
asyncpg's, which pipelines the rows in one round trip). Values are stored as
SQLAlchemy stores them (on SQLite: datetimes in UTC as
`YYYY-MM-DD HH:MM:SS.ffffff`, dates in ISO form, JSON as text), so every
other reader sees the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

_CHUNK = 5000  # rows per executemany: bounds the memory of one call
_NOTHING = object()


def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(value: Any) -> str:
    return json.dumps(value)


def _conversion(column: sa.Column[Any], dialect: str) -> Callable[[Any], Any] | None:
    kind = column.type.impl_instance if isinstance(column.type, sa.TypeDecorator) else column.type
    if isinstance(kind, sa.JSON):
        return _json  # both drivers take JSON as text
    if dialect == "sqlite" and isinstance(kind, sa.DateTime):
        return _sqlite_datetime
    if dialect == "sqlite" and isinstance(kind, sa.Date):
        return _sqlite_date
    return None  # asyncpg takes aware datetimes and dates as they are


async def insert_many(
    s: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str] = ()
) -> None:
    """INSERTs `rows` (dicts with the same keys), or upserts them on the
    `conflict` columns (every other column is updated)."""
    if not rows:
        return
    conn = await s.connection()
    dialect = conn.dialect
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        # One statement per chunk, its columns as arrays: executemany would
        # run the statement once per row.
        casts = [_pg_array_type(table.c[n], dialect) for n in names]
        arrays = ", ".join(f"${i}::{cast}[]" for i, cast in enumerate(casts, 1))
        picked = ", ".join(f"CAST({quote(n)} AS JSON)" if c == "TEXT" and _is_json(table.c[n]) else quote(n)
                           for n, c in zip(names, casts, strict=True))  # fmt: skip
        sql = f"INSERT INTO {quote(table.name)} ({columns}) SELECT {picked} FROM unnest({arrays}) AS u({columns})"
    else:
        sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join('?' for _ in names)})"
    if conflict:
        updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n not in conflict)
        sql += f" ON CONFLICT ({', '.join(quote(n) for n in conflict)}) DO UPDATE SET {updates}"
    getter = itemgetter(*names)
    conversions = [(i, f) for i, n in enumerate(names) if (f := _conversion(table.c[n], dialect.name)) is not None]
    for start in range(0, len(rows), _CHUNK):
        chunk = [list(getter(row)) for row in rows[start : start + _CHUNK]]
        for i, convert in conversions:
            if convert is _json:
                for values in chunk:
                    values[i] = _json(values[i])
                continue
            # Times and dates repeat (the import's own time in every row, the
            # day of many assessments): each distinct value is converted once.
            # Equal values convert alike (the result is in UTC).
            seen: dict[Any, Any] = {}
            for values in chunk:
                value = values[i]
                out = seen.get(value, _NOTHING)
                if out is _NOTHING:
                    out = seen[value] = convert(value)
                values[i] = out
        params = [tuple(values) for values in chunk]
        if dialect.name == "postgresql":
            await conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*params, strict=True)))
        else:
            await conn.exec_driver_sql(sql, params)


def _is_json(column: sa.Column[Any]) -> bool:
    kind = column.type.impl_instance if isinstance(column.type, sa.TypeDecorator) else column.type
    return isinstance(kind, sa.JSON)


def _pg_array_type(column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """The element type of the column's array parameter (JSON travels as text)."""
    return "TEXT" if _is_json(column) else column.type.compile(dialect=dialect)
