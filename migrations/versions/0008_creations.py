"""creations: one record of every call that makes something at MailUp, replacing the
campaign sends' own (their known sendings become keys ``sending:N``)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 20:05:00.000000
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    creations = op.create_table(
        "creations",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verify_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("looks", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("made", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_creations_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_creations")),
    )
    with op.batch_alter_table("creations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_creations_account_made"), ["account", "made"], unique=False
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT c.job_id, c.account, c.known_sendings, c.taken_at, j.outcome "
            "FROM campaign_sends c JOIN jobs j ON j.id = c.job_id"
        )
    ).all()
    values = []
    for row in rows:
        known = _json(row.known_sendings) or []
        outcome = _json(row.outcome) or {}
        made = outcome.get("sending_id")
        values.append(
            {
                "job_id": row.job_id,
                "account": row.account,
                "before": [f"sending:{n}" for n in known],
                "left_at": _datetime(row.taken_at),
                "verify_until": None,
                "looks": 0,
                "answer": None,
                "made": None if made is None else f"sending:{made}",
            }
        )
    if values:
        op.bulk_insert(creations, values)
    op.drop_table("campaign_sends")


def _datetime(value: Any) -> datetime:
    """A timestamp as SQLite (text) or PostgreSQL (a datetime) hands it back."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    """A JSON column as SQLite (text) or PostgreSQL (parsed) hands it back."""
    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    op.create_table(
        "campaign_sends",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("known_sendings", sa.JSON(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_campaign_sends_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_campaign_sends")),
    )
    op.drop_table("creations")
