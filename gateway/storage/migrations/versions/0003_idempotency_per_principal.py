"""idempotency keys per principal, with a lease

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

records = sa.table(
    "idempotency_keys", sa.column("key"), sa.column("created_at"), sa.column("updated_at")
)


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # A record from before has held its lease since it was created.
    op.execute(records.update().values(updated_at=records.c.created_at))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "updated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            "request_hash", new_column_name="fingerprint", existing_type=sa.String(length=64)
        )
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["principal", "key"])
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    # A key alone names one record again: a key that several principals hold cannot say
    # whose it is, so none of its records is kept.
    shared = sa.select(records.c.key).group_by(records.c.key).having(sa.func.count() > 1)
    op.execute(records.delete().where(records.c.key.in_(shared)))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["key"])
        batch_op.alter_column(
            "fingerprint", new_column_name="request_hash", existing_type=sa.String(length=64)
        )
        batch_op.drop_column("updated_at")
