"""SQLite writers share commits (one fsync for many units of work) without
sharing failures, and nobody hears "done" before their change is durable."""

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from services.platform.db import Database


class Refused(Exception):
    """A domain rule said no."""


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
    async with database.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await conn.execute(
            sa.text(
                "CREATE TABLE note (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await conn.execute(sa.text("INSERT INTO parent (id) VALUES (1)"))
    yield database
    await database.dispose()


async def note_ids(db: Database) -> set[int]:
    async with db.read() as session:
        return {row[0] for row in (await session.execute(sa.text("SELECT id FROM note"))).all()}


async def write_note(db: Database, note_id: int, parent_id: int = 1, refuse: bool = False) -> None:
    async with db.write() as uow:
        await uow.session.execute(
            sa.text("INSERT INTO note (id, parent_id) VALUES (:id, :parent)"), {"id": note_id, "parent": parent_id}
        )
        if refuse:
            raise Refused(note_id)


async def test_concurrent_writers_share_commits_and_keep_their_own_failures(db):
    commits = 0

    def count(_conn):
        nonlocal commits
        commits += 1

    event.listen(db.engine.sync_engine, "commit", count)
    writers = [write_note(db, n, refuse=(n % 10 == 0)) for n in range(1, 101)]
    results = await asyncio.gather(*writers, return_exceptions=True)

    refused = {n for n, r in zip(range(1, 101), results, strict=True) if isinstance(r, Refused)}
    assert refused == set(range(10, 101, 10))
    assert all(r is None for n, r in zip(range(1, 101), results, strict=True) if n not in refused)
    assert await note_ids(db) == set(range(1, 101)) - refused  # each failure undid only itself
    assert commits < 50, f"{commits} commits for 100 writers: they did not share"


async def test_a_commit_that_fails_fails_every_writer_it_carried(db):
    # The bad row passes its own statement (the foreign key is checked at
    # COMMIT), so the group commit itself fails: both writers must hear it.
    results = await asyncio.gather(
        write_note(db, 1), write_note(db, 2, parent_id=999), write_note(db, 3), return_exceptions=True
    )
    assert all(isinstance(r, sa.exc.IntegrityError) for r in results), results
    assert await note_ids(db) == set()
    await write_note(db, 4)  # the next group starts clean
    assert await note_ids(db) == {4}


async def test_a_failed_writer_does_not_keep_the_file_locked(db, tmp_path):
    with pytest.raises(Refused):
        await write_note(db, 1, refuse=True)
    # Another process's connection (another Database on the file) writes at once.
    other = Database(db.url)
    try:
        await asyncio.wait_for(write_note(other, 2), timeout=5)
    finally:
        await other.dispose()
    assert await note_ids(db) == {2}


async def test_after_a_database_error_the_next_writers_start_clean(db):
    class Wrapped(Exception):
        pass

    async def broken() -> None:
        async with db.write() as uow:
            try:
                await uow.session.execute(sa.text("INSERT INTO missing_table VALUES (1)"))
            except sa.exc.OperationalError as exc:
                raise Wrapped("the use case turned it into its own error") from exc

    with pytest.raises(Wrapped):
        await broken()
    await asyncio.gather(*(write_note(db, n) for n in range(1, 6)))
    assert await note_ids(db) == set(range(1, 6))
