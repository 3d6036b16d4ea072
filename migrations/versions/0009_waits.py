"""waits that end: import chunks MailUp does not know (404s counted, then a reason), and
campaign schedules missed (not dispatched in time)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("misses", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("unknown_reason", sa.Text(), nullable=True))

    with op.batch_alter_table("campaign_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A missed schedule was never sent: cancelled is the nearest state the old code knows.
    op.execute(
        "UPDATE campaign_schedules SET state = 'cancelled', cancelled_at = missed_at "
        "WHERE state = 'missed'"
    )
    with op.batch_alter_table("campaign_schedules", schema=None) as batch_op:
        batch_op.drop_column("missed_at")

    with op.batch_alter_table("import_chunks", schema=None) as batch_op:
        batch_op.drop_column("unknown_reason")
        batch_op.drop_column("misses")
