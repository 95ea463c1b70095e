"""reconciliation: runs with scope and progress, exceptions kept across runs, and the keyed
table a run merges both sides through

The runs and exceptions tables of 0001 were never written (nothing reconciled before this
revision), so they are made again rather than altered.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("reconciliation_exceptions")
    op.drop_table("reconciliation_runs")
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("period_from", sa.String(7), nullable=False),
        sa.Column("period_to", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("heartbeat_at", _AT, nullable=False),
        sa.Column("finished_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
    )
    op.create_index("ix_reconciliation_runs_started_at", "reconciliation_runs", ["started_at"])
    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("ledger", sa.String(8), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("customer_ref", sa.String(255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("entity", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_items"),
    )
    op.create_index(
        "ix_reconciliation_items_run_id_ledger_key",
        "reconciliation_items",
        ["run_id", "ledger", "key"],
    )
    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("invoice_id", sa.String(255), nullable=True),
        sa.Column("posting_ids", sa.JSON(), nullable=False),
        sa.Column("impact_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("rank", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_run_id", sa.String(64), nullable=False),
        sa.Column("last_run_id", sa.String(64), nullable=False),
        sa.Column("status_by", sa.String(255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_exceptions"),
    )
    op.create_index(
        "ix_reconciliation_exceptions_status_rank", "reconciliation_exceptions", ["status", "rank"]
    )
    op.create_index(
        "ix_reconciliation_exceptions_customer_id", "reconciliation_exceptions", ["customer_id"]
    )
    op.create_index(
        "ix_reconciliation_exceptions_entity_period",
        "reconciliation_exceptions",
        ["entity", "period"],
    )


def downgrade() -> None:
    op.drop_table("reconciliation_exceptions")
    op.drop_table("reconciliation_items")
    op.drop_table("reconciliation_runs")
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("finished_at", _AT, nullable=True),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
    )
    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("invoice_id", sa.String(255), nullable=True),
        sa.Column("posting_id", sa.String(255), nullable=True),
        sa.Column("impact_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name="fk_reconciliation_exceptions_run_id_reconciliation_runs",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_exceptions"),
    )
    op.create_index(
        "ix_reconciliation_exceptions_customer_id", "reconciliation_exceptions", ["customer_id"]
    )
    op.create_index(
        "ix_reconciliation_exceptions_status_impact_minor",
        "reconciliation_exceptions",
        ["status", "impact_minor"],
    )
