"""`python -m services.roles.migrate`: bring the database to the latest schema."""

from __future__ import annotations

from pathlib import Path

from services.platform.db import Database
from services.platform.migrations import run_cli, upgrade
from services.roles.settings import RolesSettings

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


async def migrate(db: Database) -> None:
    await upgrade(db, MIGRATIONS)


if __name__ == "__main__":
    run_cli(RolesSettings().resolved_database_url(), migrate)
