"""Recipient imports: rows checked at the door, staged in chunks beside their jobs, each
chunk posted to MailUp's asynchronous import (job kind ``import_chunk``), and MailUp's
progress polled by beat until every chunk has completed.

An import (``imports``) holds what was read and refused, and where and why it stopped if a
line could not be read; each chunk (``import_chunks``) its rows, its job, MailUp's import
id and, once MailUp says so, its counters. A chunk whose answer is lost stays in doubt:
MailUp's import list cannot tell which import it was.

Each poll asks about a bounded number of chunks per account (``per_tick``: a share of the
account's Console calls), those asked least recently first, so that every chunk gets its
turn however many are pending. A chunk MailUp answers 404 for ``MISSES`` times in a row is
``unknown`` there, with the reason, and not asked about again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session, defer

from worker.engine.clients import console_client
from worker.engine.kind import JobContext, JobKind, Payload, Poll, Result
from worker.jobs.fields import ListId
from worker.ledger.db import connection, transaction
from worker.ledger.models import (
    ImportChunk,
    ImportReject,
    Job,
    RecipientImport,
    table,
    utcnow,
)
from worker.ledger.store import Statement
from worker.mailup.errors import Condition, MailUpError
from worker.mailup.recipients import Audience, ImportStatus, Recipient, Recipients
from worker.settings import Settings

MAX_CHUNK = 10_000
# The columns every import knows, matched whatever their case; others map to field ids.
COLUMNS = {
    "email": "email",
    "name": "name",
    "mobilenumber": "mobile_number",
    "mobileprefix": "mobile_prefix",
}
# Good enough to refuse what MailUp would count as not valid, cheap for 100,000 rows.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[A-Za-z]{2,}$")
_DIGITS = re.compile(r"^[0-9]{5,15}$")
_PREFIX = re.compile(r"^(\+|00)?[0-9]{1,4}$")
_COUNTERS = ("updated", "valid", "created", "imported", "not_valid")
# The share of an account's Console calls over the poll's interval that a poll takes:
# posting chunks, operators' reads and the other polls need the rest.
POLL_SHARE = 0.25
# MailUp may answer 404 for an import it made a moment ago (not listed yet): once is no
# proof it does not know it.
MISSES = 3


class ImportChunkJob(Payload):
    import_id: str = Field(min_length=36, max_length=36)
    number: int = Field(ge=1)
    list_id: ListId
    group_id: int | None = Field(default=None, gt=0)
    confirm_email: bool = False
    optout: bool = False


@dataclass(frozen=True)
class Chunk:
    """What a chunk job stages beside itself: its rows as MailUp's recipients."""

    rows: int
    body: bytes


def check_row(values: Mapping[str, str], fields: Mapping[str, int]) -> dict[str, Any] | str:
    """A row as a MailUp recipient, or why it is refused. ``values`` maps lower-case column
    names to text; ``fields`` maps other (lower-case) columns to MailUp field ids."""
    # A NUL is no text a recipient holds (a binary or UTF-16 file, most likely), and
    # PostgreSQL refuses it in text.
    nul = next((column for column, value in values.items() if "\0" in value), None)
    if nul is not None:
        return f"{nul}: holds a NUL byte"
    email = (values.get("email") or "").strip()
    if not email:
        return "email: missing"
    if not _EMAIL.match(email):
        return f"email: {email!r} is not a valid address"
    recipient: dict[str, Any] = {"Email": email}
    name = (values.get("name") or "").strip()
    if name:
        recipient["Name"] = name
    mobile = "".join((values.get("mobilenumber") or "").split())
    prefix = (values.get("mobileprefix") or "").strip()
    if mobile:
        if not _DIGITS.match(mobile):
            return f"mobilenumber: {mobile!r} is not 5 to 15 digits"
        recipient["MobileNumber"] = mobile
    if prefix:
        if not _PREFIX.match(prefix):
            return f"mobileprefix: {prefix!r} is not an international prefix"
        recipient["MobilePrefix"] = prefix
    mapped = [{"Id": i, "Value": values[c].strip()} for c, i in fields.items() if values.get(c)]
    if mapped:
        recipient["Fields"] = mapped
    return recipient


def chunk(recipients: list[dict[str, Any]]) -> Chunk:
    return Chunk(len(recipients), json.dumps(recipients, separators=(",", ":")).encode())


_INSERT_CHUNK = insert(table(ImportChunk))


def stage(job_id: str, payload: ImportChunkJob, staged: Chunk) -> list[Statement]:
    chunk_ = {"import_id": payload.import_id, "number": payload.number, "job_id": job_id}
    return [(_INSERT_CHUNK, {**chunk_, "rows": staged.rows, "body": staged.body})]


def execute(context: JobContext, payload: ImportChunkJob) -> Result:
    settings = context.settings
    with connection(settings.ledger_url) as db:
        body = db.scalar(select(ImportChunk.body).where(*_chunk(payload)))
    assert body is not None, "a chunk job is staged with its rows"
    rows = [Recipient.from_dto(item) for item in json.loads(body)]
    recipients = Recipients(console_client(settings, context.claim.account))
    context.calling()
    mailup_id = recipients.start_import(
        Audience(payload.list_id, payload.group_id),
        rows,
        confirm_email=payload.confirm_email,
        optout=payload.optout,
    )
    outcome = {"import_id": payload.import_id, "chunk": payload.number, "rows": len(rows)}
    return Result(
        outcome={**outcome, "mailup_import_id": mailup_id},
        record=lambda db: db.execute(
            update(ImportChunk).where(*_chunk(payload)).values(mailup_import_id=mailup_id)
        ),
    )


def _chunk(payload: ImportChunkJob) -> tuple[Any, ...]:
    return (ImportChunk.import_id == payload.import_id, ImportChunk.number == payload.number)


def describe(session: Session, job: Job) -> dict[str, Any]:
    row = session.scalar(
        select(ImportChunk).options(defer(ImportChunk.body)).where(ImportChunk.job_id == job.id)
    )
    result = dict(job.outcome or {})
    if row is not None:
        result.update(_chunk_view(row))
    return result


# --- the import as a whole ----------------------------------------------------------------


def begin(
    settings: Settings,
    account: str,
    *,
    audience: Audience,
    source: str,
    confirm_email: bool,
    optout: bool,
    chunk_size: int,
) -> str:
    """A new import's id (its chunks are queued as they fill)."""
    with transaction(settings.ledger_url) as session:
        record = RecipientImport(
            account=account,
            list_id=audience.list_id,
            group_id=audience.group_id,
            source=source[:500],
            confirm_email=confirm_email,
            optout=optout,
            chunk_size=chunk_size,
            created_at=utcnow(),
        )
        session.add(record)
        session.flush()
        return record.id


def refuse(settings: Settings, import_id: str, rejected: Iterable[tuple[int, str, str]]) -> None:
    """Keep rows refused at the door: (line, reason, the row as read, a NUL shown as \\0:
    PostgreSQL refuses it in text)."""
    rows = [
        {"import_id": import_id, "line": line, "reason": reason, "row": text.replace("\0", "\\0")}
        for line, reason, text in rejected
    ]
    if rows:
        with connection(settings.ledger_url) as db:
            db.execute(insert(ImportReject), rows)


def finish(
    settings: Settings,
    import_id: str,
    *,
    rows_read: int,
    rejected: int,
    chunks: int,
    failed: tuple[int, str] | None = None,
) -> None:
    """Every row read and every chunk queued; or, ``failed`` (line, reason), the import
    stopped at that line: the counts are those of the rows before it."""
    now = utcnow()
    ended = (
        {"queued_at": now}
        if failed is None
        else {"failed_at": now, "failed_line": failed[0], "failed_reason": failed[1]}
    )
    with connection(settings.ledger_url) as db:
        db.execute(
            update(RecipientImport)
            .where(RecipientImport.id == import_id)
            .values(rows_read=rows_read, rows_rejected=rejected, chunks=chunks, **ended)
        )


def per_tick(settings: Settings) -> int:
    """How many chunks of one account a poll asks about: its share of the account's
    Console calls over the interval, so a poll also ends well within it."""
    return max(1, int(settings.console_per_second * settings.import_poll * POLL_SHARE))


def poll(settings: Settings) -> int:
    """Ask MailUp how posted, unfinished chunks are doing, ``per_tick`` of each account, and
    record what it says. Returns how many chunks completed."""
    return sum(_poll_account(settings, account) for account in settings.accounts)


def _poll_account(settings: Settings, account: str) -> int:
    pending = _pending(settings, account, per_tick(settings))
    if not pending:
        return 0
    recipients = Recipients(console_client(settings, account))
    completed = 0
    for import_id, number, mailup_id, misses in pending:
        assert mailup_id is not None  # (selected so)
        try:
            status = recipients.import_status(mailup_id)
        except MailUpError as exc:
            values = _failed(exc, mailup_id, misses)
        else:
            completed += status.completed
            values = _counters(status)
        with connection(settings.ledger_url) as db:
            db.execute(
                update(ImportChunk)
                .where(ImportChunk.import_id == import_id, ImportChunk.number == number)
                .values(**values)
            )
    return completed


def _pending(
    settings: Settings, account: str, limit: int
) -> Sequence[Row[str, int, int | None, int]]:
    """The account's posted chunks still to finish, those asked least recently first."""
    with connection(settings.ledger_url) as db:
        return db.execute(
            select(
                ImportChunk.import_id,
                ImportChunk.number,
                ImportChunk.mailup_import_id,
                ImportChunk.misses,
            )
            .join(RecipientImport, RecipientImport.id == ImportChunk.import_id)
            .where(
                RecipientImport.account == account,
                ImportChunk.mailup_import_id.is_not(None),
                ImportChunk.completed_at.is_(None),
                ImportChunk.unknown_reason.is_(None),
            )
            .order_by(ImportChunk.checked_at.is_not(None), ImportChunk.checked_at)
            .limit(limit)
        ).all()


def _counters(status: ImportStatus) -> dict[str, Any]:
    now = utcnow()
    values: dict[str, Any] = {
        "checked_at": now,
        "completed_at": now if status.completed else None,
        "misses": 0,
    }
    if status.completed:
        values.update({name: getattr(status, name) for name in _COUNTERS})
    return values


def _failed(exc: MailUpError, mailup_id: int, misses: int) -> dict[str, Any]:
    """The chunk had its turn (asked again after the others); a 404 counts towards giving
    up on it."""
    values: dict[str, Any] = {"checked_at": utcnow()}
    if exc.condition is Condition.NOT_FOUND:
        values["misses"] = misses + 1
        if misses + 1 >= MISSES:
            values["unknown_reason"] = (
                f"MailUp does not know import {mailup_id}: {MISSES} answers 404 in a row, "
                f"the last {exc.message!r}"
            )
    return values


def show(settings: Settings, import_id: str) -> dict[str, Any] | None:
    """An import: what was read and refused, each chunk, and MailUp's totals so far."""
    with transaction(settings.ledger_url) as session:
        record = session.get(RecipientImport, import_id)
        if record is None:
            return None
        chunks = session.execute(
            select(ImportChunk, Job.status)
            .options(defer(ImportChunk.body))  # the rows themselves are not shown
            .join(Job, Job.id == ImportChunk.job_id)
            .where(ImportChunk.import_id == import_id)
            .order_by(ImportChunk.number)
        ).all()
        rejected = session.scalars(
            select(ImportReject)
            .where(ImportReject.import_id == import_id)
            .order_by(ImportReject.line)
        )
        views = [{**_chunk_view(row), "job_status": status} for row, status in chunks]
        return {
            **_summary(record),
            "totals": {name: sum(c[name] or 0 for c in views) for name in _COUNTERS},
            "chunks_completed": sum(1 for c in views if c["completed_at"]),
            "chunks_unknown": sum(1 for c in views if c["unknown_reason"]),
            "chunks": views,
            "rejected": [{"line": r.line, "reason": r.reason, "row": r.row} for r in rejected],
        }


def listing(settings: Settings, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest imports, with their chunks' totals."""
    totals = [func.coalesce(func.sum(getattr(ImportChunk, n)), 0).label(n) for n in _COUNTERS]
    with transaction(settings.ledger_url) as session:
        rows = session.execute(
            select(
                RecipientImport,
                func.count(ImportChunk.number).label("chunks_queued"),
                func.count(ImportChunk.completed_at).label("chunks_completed"),
                func.count(ImportChunk.unknown_reason).label("chunks_unknown"),
                *totals,
            )
            .outerjoin(ImportChunk, ImportChunk.import_id == RecipientImport.id)
            .group_by(RecipientImport.id)
            .order_by(RecipientImport.created_at.desc())
            .limit(limit)
        ).all()
        return [
            {
                **_summary(row[0]),
                "chunks_completed": row.chunks_completed,
                "chunks_unknown": row.chunks_unknown,
                "totals": {name: getattr(row, name) for name in _COUNTERS},
            }
            for row in rows
        ]


def _summary(record: RecipientImport) -> dict[str, Any]:
    return {
        "id": record.id,
        "state": _state(record),
        "account": record.account,
        "list_id": record.list_id,
        "group_id": record.group_id,
        "source": record.source,
        "confirm_email": record.confirm_email,
        "optout": record.optout,
        "rows_read": record.rows_read,
        "rows_rejected": record.rows_rejected,
        "chunks": record.chunks,
        "created_at": record.created_at.isoformat(),
        "queued_at": record.queued_at.isoformat() if record.queued_at else None,
        "failed_at": record.failed_at.isoformat() if record.failed_at else None,
        "failed_line": record.failed_line,
        "failed_reason": record.failed_reason,
    }


def _state(record: RecipientImport) -> str:
    """``reading`` until every chunk is queued (or for good, if the producer died),
    ``queued`` then; ``failed`` if it stopped at a line it could not read."""
    if record.failed_at:
        return "failed"
    return "queued" if record.queued_at else "reading"


def _chunk_view(row: ImportChunk) -> dict[str, Any]:
    return {
        "chunk": row.number,
        "job_id": row.job_id,
        "rows": row.rows,
        "mailup_import_id": row.mailup_import_id,
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "unknown_reason": row.unknown_reason,
        **{name: getattr(row, name) for name in _COUNTERS},
    }


KIND = JobKind(
    "import_chunk",
    ImportChunkJob,
    execute,
    describe,
    stage=stage,
    polls=(Poll("imports", lambda s: s.import_poll, poll),),
)
