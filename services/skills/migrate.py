"""`python -m services.skills.migrate`: bring the database to the latest
schema and apply the catalogue seed (once; its events go out through the
outbox when the service runs)."""

from __future__ import annotations

from pathlib import Path

from services.platform.db import Database
from services.platform.migrations import run_cli, upgrade
from services.skills.app import role_fits
from services.skills.app.seeding import apply_seed
from services.skills.settings import SkillsSettings

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


async def migrate(db: Database, *, seed: bool = True) -> None:
    await upgrade(db, MIGRATIONS)
    if seed:
        await apply_seed(db)
    async with db.write() as uow:
        # A database projected before role fits were kept: fill them in once.
        if await role_fits.is_empty(uow.session):
            await role_fits.rebuild(uow.session)


if __name__ == "__main__":
    run_cli(SkillsSettings().resolved_database_url(), migrate)
