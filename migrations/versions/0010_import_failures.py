"""import failures: an import that stopped at a line it could not read says where and why

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_line", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("failed_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # A failed import then looks like one cut short (never queued_at), which it was.
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("failed_reason")
        batch_op.drop_column("failed_line")
        batch_op.drop_column("failed_at")
