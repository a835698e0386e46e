"""`python -m services.incentives.migrate`: bring the database to the latest
schema and seed the behaviour catalogue (idempotent)."""

from __future__ import annotations

from pathlib import Path

from services.incentives.app.catalogue import seed_catalogue
from services.incentives.settings import IncentivesSettings
from services.platform.db import Database
from services.platform.migrations import run_cli, upgrade

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


async def migrate(db: Database) -> None:
    await upgrade(db, MIGRATIONS)
    await seed_catalogue(db)


if __name__ == "__main__":
    run_cli(IncentivesSettings().resolved_database_url(), migrate)
