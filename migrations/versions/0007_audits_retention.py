"""audits and retention: recipients' keyed hashes, resolutions of in_doubt jobs, purge marks,
nullable personal columns, and the indexes the audits read

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:34:35.267473
"""

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "job_recipients",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_recipients_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_recipients")),
    )
    with op.batch_alter_table("job_recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_recipients_recipient_hash"), ["recipient_hash"], unique=False
        )

    op.create_table(
        "job_resolutions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_resolutions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_resolutions")),
    )
    with op.batch_alter_table("job_resolutions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_resolutions_job_id"), ["job_id"], unique=False)

    with op.batch_alter_table("email_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=32), nullable=True))
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_email_recipients_email_hash"), ["email_hash"], unique=False
        )

    with op.batch_alter_table("sending_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=32), nullable=True))
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_sending_recipients_email_hash"), ["email_hash"], unique=False
        )

    with op.batch_alter_table("sms_deliveries", schema=None) as batch_op:
        batch_op.alter_column("recipient", existing_type=sa.String(length=32), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_sms_deliveries_sent_at_account_campaign_code_list_id_cost"),
            ["sent_at", "account", "campaign_code", "list_id", "cost"],
            unique=False,
        )

    with op.batch_alter_table("job_parts", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)

    with op.batch_alter_table("import_chunks", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)

    with op.batch_alter_table("import_rejects", schema=None) as batch_op:
        batch_op.alter_column("row", existing_type=sa.Text(), nullable=True)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_jobs_created_at_status_kind"),
            ["created_at", "status", "kind"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_jobs_status_created_at_kind_last_error_code"),
            ["status", "created_at", "kind", "last_error_code"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_jobs_purged_at_finished_at"), ["purged_at", "finished_at"], unique=False
        )

    _hash_existing_recipients()


def _hash_existing_recipients() -> None:
    """The keyed hashes of the recipients the ledger already holds: every SMS, every
    campaign send to one address that got to its call, every email and skipped address."""
    bind = op.get_bind()
    hasher: list[Callable[[str], str]] = []

    def hashed(recipient: str) -> str:
        if not hasher:  # the key is read only when there is something to hash
            from worker.ledger.crypto import recipient_hasher
            from worker.settings import get_settings

            hasher.append(recipient_hasher(get_settings()))
        return hasher[0](recipient)

    for table in ("email_recipients", "sending_recipients"):
        update = sa.text(f"UPDATE {table} SET email_hash = :hash WHERE id = :id")
        for rows in _batches(
            f"SELECT id, email FROM {table} WHERE email_hash IS NULL AND id > :after ORDER BY id", 0
        ):
            bind.execute(update, [{"id": row.id, "hash": hashed(row.email)} for row in rows])

    insert = sa.text("INSERT INTO job_recipients (job_id, recipient_hash) VALUES (:job_id, :hash)")
    for rows in _batches(
        "SELECT id, payload FROM jobs WHERE id > :after AND (kind = 'send_sms' OR (kind = "
        "'campaign_send' AND id IN (SELECT job_id FROM campaign_sends))) ORDER BY id",
        "",
    ):
        values = []
        for row in rows:
            payload = json.loads(row.payload) if isinstance(row.payload, str) else row.payload
            recipient = payload.get("recipient") or payload.get("to")
            if recipient:
                values.append({"job_id": row.id, "hash": hashed(recipient)})
        if values:
            bind.execute(insert, values)


def _batches(query: str, start: object) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` (ordered by id, from ids after ``:after``), a batch at a time."""
    after = start
    while rows := op.get_bind().execute(sa.text(f"{query} LIMIT {BATCH}"), {"after": after}).all():
        yield rows
        after = rows[-1].id


def downgrade() -> None:
    # Purged rows have no value for the columns that were required: empty ones.
    op.execute("UPDATE email_recipients SET email = '' WHERE email IS NULL")
    op.execute("UPDATE sending_recipients SET email = '' WHERE email IS NULL")
    op.execute("UPDATE sms_deliveries SET recipient = '' WHERE recipient IS NULL")
    op.execute("UPDATE import_rejects SET row = '' WHERE row IS NULL")
    for table in ("job_parts", "import_chunks"):
        op.get_bind().execute(
            sa.text(f"UPDATE {table} SET body = :empty WHERE body IS NULL"), {"empty": b""}
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_purged_at_finished_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_status_created_at_kind_last_error_code"))
        batch_op.drop_index(batch_op.f("ix_jobs_created_at_status_kind"))
        batch_op.drop_column("purged_at")

    with op.batch_alter_table("import_rejects", schema=None) as batch_op:
        batch_op.alter_column("row", existing_type=sa.Text(), nullable=False)

    with op.batch_alter_table("import_chunks", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)

    with op.batch_alter_table("job_parts", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)

    with op.batch_alter_table("sms_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_sms_deliveries_sent_at_account_campaign_code_list_id_cost")
        )
        batch_op.alter_column("recipient", existing_type=sa.String(length=32), nullable=False)

    with op.batch_alter_table("sending_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sending_recipients_email_hash"))
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_column("email_hash")

    with op.batch_alter_table("email_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_recipients_email_hash"))
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_column("email_hash")

    with op.batch_alter_table("job_resolutions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_resolutions_job_id"))
    op.drop_table("job_resolutions")

    with op.batch_alter_table("job_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_recipients_recipient_hash"))
    op.drop_table("job_recipients")
