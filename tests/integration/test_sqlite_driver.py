"""The one-hop SQLite cursor (services/platform/sqlite_driver.py) behaves as SQLAlchemy's own.

Every SQLite test runs on it; these pin what it must keep from the driver:
rows, row counts, generated keys, bulk inserts, errors, and one call to the
connection's thread per statement (the reason it exists).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import Database
from services.platform.sqlite_driver import OneHopCursor

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "items",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield db.engine
    await db.dispose()


async def test_the_database_uses_the_one_hop_cursor(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)  # type: ignore[union-attr]


async def test_rows_counts_and_keys_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(ITEMS.insert().values(name="a"))
        assert first.inserted_primary_key == (1,)
        await conn.execute(ITEMS.insert(), [{"name": "b"}, {"name": "c"}, {"name": "d"}])
        renamed = await conn.execute(sa.update(ITEMS).where(ITEMS.c.id > 2).values(name=ITEMS.c.name + "!"))
        assert renamed.rowcount == 2
        rows = (await conn.execute(sa.select(ITEMS.c.id, ITEMS.c.name).order_by(ITEMS.c.id))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c!"), (4, "d!")]
        assert list((await conn.execute(sa.select(ITEMS.c.name).where(ITEMS.c.id == 99))).all()) == []


async def test_a_constraint_error_is_an_integrity_error_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(ITEMS.insert().values(name="same"))
        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(ITEMS.insert().values(name="same"))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(ITEMS))).scalar_one() == 1


async def test_a_statement_costs_one_call_on_the_connection_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.select(1))  # connect and begin first
        calls = 0
        real = aiosqlite.Connection._execute

        async def counting(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            return await real(self, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        rows = (await conn.execute(sa.select(ITEMS.c.id).where(ITEMS.c.id > 0))).all()
        await conn.execute(ITEMS.insert().values(name="x"))
        assert rows == []
        assert calls == 2  # SQLAlchemy's own adapter: 4 for the SELECT, 3 for the INSERT
