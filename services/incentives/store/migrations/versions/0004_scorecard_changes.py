"""scorecard changes: what the replicas' in-memory scorecards follow

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (SQLModel column types)
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sqlmodel.sql.sqltypes.UTCDateTime  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "scorecard_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("everyone", sa.Boolean(), nullable=False),
        sa.Column("change_time", _TIME(), nullable=False),
    )
    op.create_index("ix_scorecard_changes_change_time", "scorecard_changes", ["change_time"])


def downgrade() -> None:
    op.drop_index("ix_scorecard_changes_change_time", "scorecard_changes")
    op.drop_table("scorecard_changes")
