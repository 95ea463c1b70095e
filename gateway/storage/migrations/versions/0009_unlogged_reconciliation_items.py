"""unlogged reconciliation items: on PostgreSQL the records a run stages are kept out of
the write-ahead log

A run's staged records live only while it runs: the run deletes them when it ends, and
the next run sweeps what a run that died left. Logged, a million invoices staged wrote
their rows and index entries to the WAL, and every page staged waited for the WAL's
flush as it committed. Unlogged, a crash empties the table, which loses nothing that is
not thrown away anyway (the interrupted run is failed and re-run, as before).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE reconciliation_items SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE reconciliation_items SET LOGGED")
