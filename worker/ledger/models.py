"""The ledger's tables. It is the source of truth: a job exists once its row is committed.

No secret is stored in clear: payloads never hold one, ListSecrets are encrypted.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def table(model: type[Base]) -> Table:
    """The model's table: statements on it are plain Core (an insert of many rows is one
    executemany, without the ORM's bulk machinery)."""
    found = model.__table__
    assert isinstance(found, Table)
    return found


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    CANCELLED = "cancelled"


# Statuses a worker may claim from; statuses nothing moves out of by itself.
CLAIMABLE = (JobStatus.QUEUED, JobStatus.RETRYING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class AttemptOutcome(enum.StrEnum):
    CALLING = "calling"  # committed before the request leaves; still open = fate unknown
    SUCCEEDED = "succeeded"
    TRANSIENT = "transient"  # failed, retried later
    # No answer, or one that proves nothing, to an idempotent call: retried later, though
    # MailUp may have acted on it.
    UNKNOWN = "unknown"
    PERMANENT = "permanent"  # failed, never retried
    IN_DOUBT = "in_doubt"  # the request may have been processed
    PAUSED = "paused"  # the account's channel cannot send until someone acts; not counted
    ABANDONED = "abandoned"  # the worker died mid-call (set by the sweeper)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(String(40))
    account: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    # 0 is the most urgent, 9 the least (the order Celery's Redis transport uses).
    priority: Mapped[int] = mapped_column(Integer, default=5)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the job may run next (now for new jobs, later for retries and throttled jobs).
    run_after: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When its message was last handed to the broker (None: never, or due for publishing).
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    publish_count: Mapped[int] = mapped_column(Integer, default=0)
    # While running: the claiming worker and how long its claim lasts.
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error_code: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When retention removed its personal data (payload, bodies, recipients).
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(None, "status", "run_after"),
        Index(None, "kind", "created_at"),
        # The audits: jobs per day and status (read from the index alone), failures by code.
        Index(None, "created_at", "status", "kind"),
        Index(None, "status", "created_at", "kind", "last_error_code"),
        # Retention: the finished jobs not purged yet, oldest first.
        Index(None, "purged_at", "finished_at"),
    )


class Attempt(Base):
    """One MailUp call made for a job, committed as "calling" before the request leaves."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16), default=AttemptOutcome.CALLING)
    http_status: Mapped[int | None] = mapped_column(Integer)
    mailup_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class SmsDelivery(Base):
    """What MailUp answered for a sent SMS: the row operators audit."""

    __tablename__ = "sms_deliveries"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    list_id: Mapped[int] = mapped_column(Integer)
    # None once purged (its keyed hash stays in job_recipients).
    recipient: Mapped[str | None] = mapped_column(String(32), index=True)
    campaign_code: Mapped[str | None] = mapped_column(String(200))
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    # MailUp's code 301: sent and charged, DeliveryId 0, no delivery report to fetch.
    statistics_unavailable: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Credits per campaign, day or list, read from the index alone.
    __table_args__ = (Index(None, "sent_at", "account", "campaign_code", "list_id", "cost"),)


class JobRecipient(Base):
    """The keyed hash of the one recipient of a job whose recipient is only in its payload
    (an SMS, a campaign to one address): it answers "what was sent to x" after a purge."""

    __tablename__ = "job_recipients"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    recipient_hash: Mapped[str] = mapped_column(String(32), index=True)


class ListCredential(Base):
    """A list's ListGuid and its ListSecret (Fernet-encrypted; None when MailUp has none)."""

    __tablename__ = "list_credentials"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_guid: Mapped[str | None] = mapped_column(String(36))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class RateLimit(Base):
    """Shared send-rate state when no Redis is configured (GCRA: one timestamp per key)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The theoretical arrival time of the next send, in epoch seconds.
    tat: Mapped[float] = mapped_column(Float)


class EmailRecipient(Base):
    """Who an email job is addressed to: "what did we send to x@y, when, with what result"."""

    __tablename__ = "email_recipients"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(3))  # to, cc, bcc
    # Email and name are None once purged; the keyed hash stays.
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email_hash: Mapped[str | None] = mapped_column(String(32), index=True)


class JobPart(Base):
    """An attachment or embedded image: bytes stay in the ledger, out of payloads and broker."""

    __tablename__ = "job_parts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)  # attachment, embedded
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_id: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once purged


class ChannelPause(Base):
    """An account's channel (or a narrower scope of it, e.g. ``sms:list:3``) that cannot
    send until ``until``, or, without a date, until a probe or an operator says it can."""

    __tablename__ = "channel_pauses"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    # The MailUp condition that paused it (e.g. no_credits).
    condition: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When the channel may next be probed (one send let through, or ListUserInfo asked),
    # and the job let through as the probe.
    probe_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    probe_job_id: Mapped[str | None] = mapped_column(String(36))


class LedgerMeta(Base):
    """Facts about the installation itself (e.g. the broker epoch the sweeper last saw)."""

    __tablename__ = "ledger_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WorkerBeat(Base):
    """The last sign of life of a worker process (``Job.worker`` names it): beat's sweeper
    hands the claims of one that stopped beating to others."""

    __tablename__ = "worker_beats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerCounter(Base):
    """A count that only grows, kept for every process (e.g. publish failures, counted by
    the producers and read by the metrics process)."""

    __tablename__ = "ledger_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SmtpUserStatus(Base):
    """What ListUserInfo last said of an SMTP+ user."""

    __tablename__ = "smtp_user_status"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    is_enabled: Mapped[bool | None] = mapped_column(Boolean)
    admin_block: Mapped[bool | None] = mapped_column(Boolean)
    block_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OAuthToken(Base):
    """The console OAuth2 token an account's workers share when no Redis is configured."""

    __tablename__ = "oauth_tokens"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Fernet-encrypted JSON of access token, refresh token and expiry.
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class TrustedSender(Base):
    """The ledger's mirror of an account's trusted senders (StatusCode 0 / 1 / 2)."""

    __tablename__ = "trusted_senders"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # IdTrustedSender
    email: Mapped[str] = mapped_column(String(320), index=True)
    status_code: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(200))  # StatusDescription
    authorized_at: Mapped[str | None] = mapped_column(String(40))  # AuthorizationDate
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TrustedSenderChange(Base):
    """Every change of a trusted sender's status that the ledger saw, and when."""

    __tablename__ = "trusted_sender_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(320))
    old_status_code: Mapped[int | None] = mapped_column(Integer)
    new_status_code: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SmtpUserAccount(Base):
    """An SMTP+ user created or reset through mailup-jobs; its password Fernet-encrypted."""

    __tablename__ = "smtp_users"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer)
    password_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class MailingList(Base):
    """The ledger's mirror of an account's lists, refreshed by every read and job."""

    __tablename__ = "lists"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    guid: Mapped[str] = mapped_column(String(36))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    # When the ledger first saw it (or created it), and last saw it on MailUp.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ListGroup(Base):
    """The ledger's mirror of the lists' groups."""

    __tablename__ = "groups"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    deletable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "account", "list_id"),)


class RecipientImport(Base):
    """One import of recipients (a CSV file, or rows from Python), split into chunk jobs."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account: Mapped[str] = mapped_column(String(64))
    list_id: Mapped[int] = mapped_column(Integer)
    group_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(500))
    confirm_email: Mapped[bool] = mapped_column(Boolean, default=False)
    optout: Mapped[bool] = mapped_column(Boolean, default=False)
    chunk_size: Mapped[int] = mapped_column(Integer)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When every row was read and every chunk queued (None: still being read, or cut short).
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When it stopped at a line it could not read, and why: the rows before that line are
    # counted above and queued, nothing from it on.
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_line: Mapped[int | None] = mapped_column(Integer)
    failed_reason: Mapped[str | None] = mapped_column(Text)


class ImportChunk(Base):
    """A chunk of an import: its rows, its job, MailUp's import id and counters."""

    __tablename__ = "import_chunks"

    import_id: Mapped[str] = mapped_column(
        ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    # The rows as MailUp's recipients, JSON (None once purged).
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    mailup_import_id: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # MailUp's 404s for it in a row; after a few it is taken as unknown there, and not
    # asked about again (the reason says why).
    misses: Mapped[int] = mapped_column(Integer, server_default="0")
    unknown_reason: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[int | None] = mapped_column(Integer)
    valid: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[int | None] = mapped_column(Integer)
    imported: Mapped[int | None] = mapped_column(Integer)
    not_valid: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index(None, "mailup_import_id", "completed_at"),)


class ImportReject(Base):
    """A row an import refused at the door: its line in the source, and why."""

    __tablename__ = "import_rejects"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    row: Mapped[str | None] = mapped_column(Text)  # None once purged


class EmailMessage(Base):
    """The ledger's mirror of the lists' email messages (campaign content lives on MailUp)."""

    __tablename__ = "messages"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index(None, "account", "list_id"),)


class Creation(Base):
    """A job's call that makes something at MailUp (a sending, a list, a group, a tag, a
    message, a recipient), kept so that a call whose answer was lost can be told apart from
    what others made: what MailUp held before it (``before``), when it left, until when its
    outcome is looked for, and what it made (``made``) once known. Keys are the kind's own
    (``sending:12``, ``group:4`` …)."""

    __tablename__ = "creations"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    before: Mapped[list[str]] = mapped_column(JSON)
    left_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set once an answer was lost: the end of the verification window.
    verify_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    looks: Mapped[int] = mapped_column(Integer, default=0)
    # What MailUp (or the network) answered the call whose outcome is unknown.
    answer: Mapped[str | None] = mapped_column(Text)
    made: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index(None, "account", "made"),)


class Sending(Base):
    """A sending of an email message, as MailUp's sending queues show it over time."""

    __tablename__ = "sendings"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    sending_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The job that made it (None: made elsewhere, seen in the queues).
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(Integer)
    list_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(Text)
    sent: Mapped[int | None] = mapped_column(Integer)
    # Immediate, Deferred, Undefined (MailUp's queues), then finished, stopped, gone (left
    # the queues, in no SendHistory, stopped by no job of ours) or deleted.
    state: Mapped[str] = mapped_column(String(16))
    state_since: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # For a deferred sending: the first date MailUp can send it; for a going one: when it
    # started (its SendHistory item's StartDate, by which the poll finds it there).
    first_available_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "state"), Index(None, "job_id"))


class SendingState(Base):
    """One state a sending was seen in, and when (its history)."""

    __tablename__ = "sending_states"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account: Mapped[str] = mapped_column(String(64))
    sending_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    first_available_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "account", "sending_id"),)


class SendingRecipient(Base):
    """A recipient MailUp did not send a campaign to: ``invalid`` or ``unprocessed``."""

    __tablename__ = "sending_recipients"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account: Mapped[str] = mapped_column(String(64))
    sending_id: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    problem: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))  # None once purged
    reason: Mapped[str] = mapped_column(Text, default="")
    email_hash: Mapped[str | None] = mapped_column(String(32), index=True)

    __table_args__ = (Index(None, "account", "sending_id"), Index(None, "email"))


class CampaignSchedule(Base):
    """A campaign send the ledger will queue at ``due_at`` (beat dispatches it once)."""

    __tablename__ = "campaign_schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account: Mapped[str] = mapped_column(String(64))
    # The campaign_send payload the job will get: message, audience, sender, reply-to.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # scheduled, dispatched, cancelled, or missed (not dispatched in time: never sent).
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "state", "due_at"),)


class JobResolution(Base):
    """An operator's word on an in_doubt job: it was sent (``sent``, with MailUp's delivery
    id if known) or it was not (``not_sent``: queued again). Every one is kept."""

    __tablename__ = "job_resolutions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    resolution: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str] = mapped_column(String(200))
    resolved_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
