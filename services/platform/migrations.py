"""Alembic migrations, one history per service, run over an async engine.

Safe to run twice and from two places at once: on PostgreSQL a transaction-
scoped advisory lock serialises concurrent runs (a Kubernetes Job racing a
second Job), and Alembic skips what is applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData

from services.platform.db import Database

_LOCK_ID = 7_263_101


async def upgrade(db: Database, script_location: Path) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade, script_location)


def _upgrade(connection: Connection, script_location: Path) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_env(target_metadata: MetaData) -> None:
    """Body of each service's alembic env.py: migrate the shared connection."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `python -m services.<service>.migrate`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_cli(database_url: str, migrate: Callable[[Database], Awaitable[None]]) -> None:
    """Body of each service's `python -m services.<service>.migrate`."""

    async def main() -> None:
        db = Database(database_url)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(main())
