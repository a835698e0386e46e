"""audit records: the append-only trail of every change (services/platform/audit.py)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from services.platform.audit import create_audit_table, drop_audit_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
