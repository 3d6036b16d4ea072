"""channel pauses with their condition and probe time; ledger facts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ledger_meta")),
    )
    with op.batch_alter_table("channel_pauses", schema=None) as batch_op:
        batch_op.alter_column(
            "channel",
            existing_type=sa.String(length=16),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("condition", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("probe_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("probe_job_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_pauses", schema=None) as batch_op:
        batch_op.drop_column("probe_job_id")
        batch_op.drop_column("probe_at")
        batch_op.drop_column("condition")
        batch_op.alter_column(
            "channel",
            existing_type=sa.String(length=64),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
    op.drop_table("ledger_meta")
