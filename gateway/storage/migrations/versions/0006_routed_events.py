"""routed events: when the routing of each inbox event started its runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_events") as table:
        table.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
    # What came before routing existed started nothing then, and starts nothing now.
    op.execute("UPDATE inbound_events SET routed_at = received_at")
    op.create_index(
        "ix_inbound_events_unrouted",
        "inbound_events",
        ["id"],
        postgresql_where=sa.text("routed_at IS NULL"),
        sqlite_where=sa.text("routed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_events_unrouted", table_name="inbound_events")
    with op.batch_alter_table("inbound_events") as table:
        table.drop_column("routed_at")
