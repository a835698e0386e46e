"""`python -m services.roles.migrate`: bring the database to the latest schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.platform.db import Database
from services.platform.migrations import upgrade
from services.roles.settings import RolesSettings

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


async def migrate(db: Database) -> None:
    await upgrade(db, MIGRATIONS)


async def _main() -> None:
    db = Database(RolesSettings().resolved_database_url())
    try:
        await migrate(db)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(_main())
