"""SQLAlchemy's aiosqlite adapter, one thread hop per statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and
SQLAlchemy's adapter makes a separate call for creating the cursor,
executing, fetching and closing: four hops between the event loop and that
thread for one SELECT. Each hop costs a thread wake-up on both sides, and on
SQLite that costs more than the statement itself. This cursor does the four
steps in one function on the connection's thread and keeps what SQLAlchemy
reads afterwards (rows, description, rowcount, lastrowid).

The engine uses it through `create_async_engine(..., module=dbapi())`: the
`sqlite+aiosqlite://` URLs stay as they are. It leans on aiosqlite's
`Connection._execute` (run a function on the connection's thread), as
SQLAlchemy's own adapter leans on its internals; aiosqlite is pinned and
tests/integration/test_sqlite_driver.py checks the behaviour it relies on.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class _Outcome:
    """What a statement left behind, read on the connection's thread."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any] | None):
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.rows = rows


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Outcome(cursor, rows)
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one call on the connection's thread."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: Any):
        # No driver cursor: each statement makes and closes its own on the
        # connection's thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._outcome: _Outcome | None = None

    @property
    def description(self) -> Any:
        return self._outcome.description if self._outcome else None

    @property
    def rowcount(self) -> int:
        return self._outcome.rowcount if self._outcome else -1

    @property
    def lastrowid(self) -> int:
        return self._outcome.lastrowid if self._outcome else 0  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are always fetched whole

    async def _async_soft_close(self) -> None:
        pass  # the driver cursor is already closed

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._one_hop(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._one_hop(operation, seq_of_parameters, many=True)

    async def _one_hop(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome = await connection._execute(_run, connection._conn, operation, parameters, many)
        self._outcome = outcome
        self._rows = collections.deque(outcome.rows or ())

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor  # server-side cursors keep SQLAlchemy's own class


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDBAPI:
    """The module object to pass as `create_async_engine(..., module=...)`."""
    return OneHopDBAPI(aiosqlite, sqlite3)
