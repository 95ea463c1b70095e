"""workflow engine: leases, schedules and error codes of runs and steps

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("workflow_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35+), not batch mode's copy of the table: dropping the old
    # workflow_runs would delete every step through their ON DELETE CASCADE, because the
    # foreign keys pragma cannot be turned off inside the migration's transaction.
    with op.batch_alter_table("workflow_steps", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("error_code")
    with op.batch_alter_table("workflow_runs", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("error_code")
