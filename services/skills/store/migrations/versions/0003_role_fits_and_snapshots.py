"""role fits kept on write, daily level snapshots

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (SQLModel column types)
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString(length=63)


def upgrade() -> None:
    op.create_table(
        "role_fits",
        sa.Column("role_id", _ID, nullable=False),
        sa.Column("person_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("misfit", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("surplus", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("role_id", "person_id"),
    )
    op.create_index(
        "ix_role_fits_rank",
        "role_fits",
        ["role_id", "misfit", sa.text("score DESC"), sa.text("surplus DESC"), "person_id"],
    )
    op.create_index("ix_role_fits_person", "role_fits", ["person_id"])
    op.create_table(
        "skill_level_snapshots",
        sa.Column("person_id", _ID, nullable=False),
        sa.Column("skill_id", _ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_unit_id", _ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("claimed_level", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "skill_id", "day"),
    )
    op.create_index(
        "ix_skill_level_snapshots_skill_unit_day", "skill_level_snapshots", ["skill_id", "org_unit_id", "day"]
    )
    # Fits of roles projected before this revision are filled in by
    # `python -m services.skills.migrate` (services/skills/app/role_fits.py).


def downgrade() -> None:
    op.drop_index("ix_skill_level_snapshots_skill_unit_day", table_name="skill_level_snapshots")
    op.drop_table("skill_level_snapshots")
    op.drop_index("ix_role_fits_person", table_name="role_fits")
    op.drop_index("ix_role_fits_rank", table_name="role_fits")
    op.drop_table("role_fits")
