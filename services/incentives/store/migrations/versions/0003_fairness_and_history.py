"""fairness and history: peer recognition, org unit at event time, dead letter decisions

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

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime  # type: ignore[attr-defined]


def upgrade() -> None:
    with op.batch_alter_table("behaviour_types") as b:
        b.add_column(sa.Column("peer_recognition", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("recognition_budget", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("behaviour_events") as b:
        b.add_column(sa.Column("recipient", _TEXT(length=63), nullable=True))
    with op.batch_alter_table("behaviour_credits") as b:
        b.add_column(sa.Column("org_unit_id", _TEXT(length=63), nullable=False, server_default=""))
        b.add_column(sa.Column("line_of_business_id", _TEXT(length=63), nullable=False, server_default=""))
        b.add_column(sa.Column("recipient_id", _TEXT(length=63), nullable=True))
        b.create_index("ix_behaviour_credits_unit_time", ["org_unit_id", "occurred_at"])
        b.create_index("ix_behaviour_credits_recipient_time", ["recipient_id", "occurred_at"])
    op.create_table(
        "incentives_person_units",
        sa.Column("person_id", _TEXT(length=63), nullable=False),
        sa.Column("valid_from", _TIME(), nullable=False),
        sa.Column("org_unit_id", _TEXT(length=63), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "valid_from"),
    )
    # Until now only the current unit was known: it holds from the beginning.
    op.execute(
        "INSERT INTO incentives_person_units (person_id, valid_from, org_unit_id) "
        "SELECT id, '1900-01-01 00:00:00', org_unit_id FROM incentives_people"
    )
    _backfill_credit_units()
    op.create_table(
        "dead_letter_decisions",
        sa.Column("dead_letter_id", sa.Integer(), nullable=False),
        sa.Column("state", _TEXT(length=20), nullable=False),
        sa.Column("reason", _TEXT(length=2000), nullable=False),
        sa.Column("decided_by", _TEXT(length=300), nullable=False),
        sa.Column("decide_time", _TIME(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dead_letter_id"),
    )


def _backfill_credit_units() -> None:
    """Credits recorded before this revision get the person's unit as known
    now (the history starts here) and that unit's line of business."""
    op.execute(
        "UPDATE behaviour_credits SET org_unit_id = COALESCE((SELECT p.org_unit_id FROM incentives_people p "
        "WHERE p.id = behaviour_credits.person_id), '') WHERE org_unit_id = ''"
    )
    bind = op.get_bind()
    units = {r[0]: (r[1], r[2]) for r in bind.execute(sa.text("SELECT id, parent_id, kind FROM incentives_org_units"))}
    for unit in units:
        current, lob = unit, ""
        for _ in range(100):
            if current not in units:
                break
            parent, kind = units[current]
            if kind == "LINE_OF_BUSINESS":
                lob = current
                break
            current = parent
        if lob:
            bind.execute(
                sa.text("UPDATE behaviour_credits SET line_of_business_id = :lob WHERE org_unit_id = :unit"),
                {"lob": lob, "unit": unit},
            )


def downgrade() -> None:
    op.drop_table("dead_letter_decisions")
    op.drop_table("incentives_person_units")
    with op.batch_alter_table("behaviour_credits") as b:
        b.drop_index("ix_behaviour_credits_recipient_time")
        b.drop_index("ix_behaviour_credits_unit_time")
        b.drop_column("recipient_id")
        b.drop_column("line_of_business_id")
        b.drop_column("org_unit_id")
    with op.batch_alter_table("behaviour_events") as b:
        b.drop_column("recipient")
    with op.batch_alter_table("behaviour_types") as b:
        b.drop_column("recognition_budget")
        b.drop_column("peer_recognition")
