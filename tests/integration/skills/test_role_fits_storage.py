"""The role fits kept on write, against a real database: a database projected
before they existed gets them from the migration, and they agree with the
fit rule of services/skills/domain/fit.py."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.platform.db import Database
from services.skills.domain.fit import Requirement, role_fit
from services.skills.migrate import migrate
from services.skills.store.tables import (
    ProjectedPersonRow,
    ProjectedRequirementRow,
    ProjectedRoleRow,
    RoleFitRow,
    SkillLevelRow,
)
from tests.conftest import BACKENDS, _drop_pg_database, fresh_database_url

REQUIREMENTS = [Requirement("teaming", 3, 2.0, True), Requirement("crm-case-management", 4, 1.0, False)]
LEVELS = {"P1": {"teaming": 3, "crm-case-management": 2}, "P2": {"teaming": 5}, "P3": {}}


def table(model: type) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


async def project_without_fits(db: Database) -> None:
    """The projection and levels as an older version left them: no role fits."""
    now = datetime.now(UTC)
    async with db.write() as uow:
        s = uow.session
        await s.execute(
            sa.insert(table(ProjectedPersonRow)),
            [{"id": p, "org_unit_id": "U", "manager_id": None, "status": "ACTIVE", "sequence": 1} for p in LEVELS],
        )
        await s.execute(
            sa.insert(table(ProjectedRoleRow)),
            [{"id": "champion", "version": 2, "state": "ACTIVE", "deleted": False, "sequence": 1}],
        )
        await s.execute(
            sa.insert(table(ProjectedRequirementRow)),
            [
                {"role_id": "champion", "version": version, "skill_id": r.skill, "position": i,
                 "min_level": r.min_level, "weight": r.weight, "mandatory": r.mandatory}
                for version in (1, 2)
                for i, r in enumerate(REQUIREMENTS)
            ],
        )  # fmt: skip
        await s.execute(
            sa.insert(table(SkillLevelRow)),
            [
                {"person_id": p, "skill_id": k, "level": lv, "claimed_level": 0, "source": "MANAGER", "basis": [],
                 "explanation": "", "revision": 1, "update_time": now}
                for p, levels in LEVELS.items()
                for k, lv in levels.items()
            ],
        )  # fmt: skip
        await s.execute(sa.delete(table(RoleFitRow)))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_migration_fills_in_role_fits_that_follow_the_fit_rule(backend: str, workdir: Path):
    url, pg_name = await fresh_database_url(backend, workdir)
    db = Database(url)
    try:
        await migrate(db)
        await project_without_fits(db)
        await migrate(db)  # as on the upgrade to the version that keeps role fits
        async with db.read() as s:
            fits = table(RoleFitRow)
            rows = (await s.execute(sa.select(fits).order_by(fits.c.person_id))).all()
        assert [(r.role_id, r.person_id, r.version) for r in rows] == [("champion", p, 2) for p in sorted(LEVELS)]
        for r in rows:
            expected = role_fit(REQUIREMENTS, LEVELS[r.person_id])
            assert (r.misfit == 0, round(r.score, 6), r.surplus) == (expected.fits, expected.score, expected.surplus)
        # P2 fits (the mandatory teaming is met) with 2 of 3 weight, P1 fits with less, P3 does not.
        assert [(r.person_id, r.misfit) for r in rows] == [("P1", 0), ("P2", 0), ("P3", 1)]
    finally:
        await db.dispose()
        if pg_name:
            await _drop_pg_database(pg_name)
