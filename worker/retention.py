"""Retention: personal data removed from the ledger once it is old, the audit kept.

For every job finished longer ago than the retention age, a purge removes its payload but
for the fields its kind ``keeps``, its kind's own personal rows (``JobKind.purge``: phone
numbers, addresses, names, attachment bytes), its import chunk's rows, and any address or
number in its outcome and error texts. What stays is the audit: the job and its attempts,
statuses, counts, costs, codes, delivery and sending ids, and each recipient's keyed hash
(so "was anything sent to x" is still answered). Imports' refused rows, and campaign
schedules dispatched or cancelled, go the same way. A purged job is marked (``purged_at``) and never
queued again. Run by ``mailup-jobs ledger purge`` and, with
``MAILUP_JOBS_RETENTION_DAYS``, by beat once a day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, Row, bindparam, func, select, update

from worker.engine.kind import JobKind
from worker.jobs import schedules
from worker.ledger.crypto import recipient_hasher
from worker.ledger.db import connection
from worker.ledger.models import (
    FINISHED,
    Attempt,
    CampaignSchedule,
    ImportChunk,
    ImportReject,
    Job,
    RecipientImport,
    utcnow,
)
from worker.settings import Settings

BATCH = 500
_AGE = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
# What may stand for a person in free text: an address, or a phone number (8 to 15 digits,
# not part of an id or a GUID).
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+")
_NUMBER = re.compile(r"(?<![\w.-])\+?\d{8,15}(?![\w-])")


@dataclass(frozen=True)
class PurgeReport:
    """How many jobs, refused import rows and campaign schedules were purged."""

    jobs: int
    import_rows: int
    schedules: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def age(text: str) -> timedelta:
    """``90d`` or ``12h`` as a duration.

    Raises:
        ValueError: naming ``older_than``.
    """
    found = _AGE.match(text)
    if found is None or int(found.group(1)) == 0:
        raise ValueError("older_than: give a number of days or hours above 0, such as 90d or 12h")
    number, unit = int(found.group(1)), found.group(2)
    return timedelta(days=number) if unit == "d" else timedelta(hours=number)


def purge(settings: Settings, kinds: Mapping[str, JobKind], older_than: timedelta) -> PurgeReport:
    """Purge what finished before ``older_than`` ago; a batch of jobs per transaction."""
    cutoff = utcnow() - older_than
    hashed = recipient_hasher(settings)
    jobs = 0
    while True:
        with connection(settings.ledger_url) as db:
            rows = db.execute(
                select(Job.id, Job.kind, Job.payload, Job.outcome, Job.last_error)
                .where(Job.purged_at.is_(None), Job.finished_at < cutoff, Job.status.in_(FINISHED))
                .order_by(Job.finished_at)
                .limit(BATCH)
            ).all()
            if rows:
                _purge_jobs(db, kinds, rows, hashed)
        if not rows:
            break
        jobs += len(rows)
    return PurgeReport(
        jobs=jobs,
        import_rows=_purge_rejects(settings, cutoff),
        schedules=_purge_schedules(settings, kinds, cutoff),
    )


_PURGE_JOB = (
    update(Job)
    .where(Job.id == bindparam("p_id"))
    .values(
        payload=bindparam("p_payload", type_=JSON),
        outcome=bindparam("p_outcome", type_=JSON(none_as_null=True)),
        last_error=bindparam("p_error"),
        purged_at=bindparam("p_now"),
    )
)
_SCRUB_ATTEMPT = (
    update(Attempt).where(Attempt.id == bindparam("p_id")).values(error=bindparam("p_error"))
)


def _purge_jobs(
    db: Connection,
    kinds: Mapping[str, JobKind],
    rows: Sequence[Row[Any]],
    hashed: Callable[[str], str],
) -> None:
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row.id)
    for name, job_ids in by_kind.items():
        kind = kinds.get(name)
        if kind is not None and kind.purge is not None:
            kind.purge(db, job_ids, hashed)
    job_ids = [row.id for row in rows]
    # An import chunk's rows belong to its job.
    db.execute(update(ImportChunk).where(ImportChunk.job_id.in_(job_ids)).values(body=None))
    now = utcnow()
    db.execute(
        _PURGE_JOB,
        [
            {
                "p_id": row.id,
                "p_payload": kept(row.payload, _keeps(kinds, row.kind)),
                "p_outcome": scrub(row.outcome),
                "p_error": scrub(row.last_error),
                "p_now": now,
            }
            for row in rows
        ],
    )
    errors = db.execute(
        select(Attempt.id, Attempt.error).where(
            Attempt.job_id.in_(job_ids), Attempt.error.is_not(None)
        )
    ).all()
    changed = [(a.id, scrub(a.error), a.error) for a in errors]
    if any(new != old for _, new, old in changed):
        db.execute(
            _SCRUB_ATTEMPT,
            [{"p_id": id_, "p_error": new} for id_, new, old in changed if new != old],
        )


def _keeps(kinds: Mapping[str, JobKind], name: str) -> Iterable[str]:
    kind = kinds.get(name)
    return kind.keeps if kind is not None else ()


def kept(payload: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """Only the fields at ``paths`` (dotted, for fields of nested objects)."""
    result: dict[str, Any] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in payload:
            continue
        if not rest:
            result[head] = payload[head]
        elif isinstance(payload[head], dict):
            result.setdefault(head, {}).update(kept(payload[head], [rest]))
    return result


def scrub(value: Any) -> Any:
    """``value`` with every address and phone number in its text replaced."""
    if isinstance(value, str):
        return _NUMBER.sub("[number]", _ADDRESS.sub("[address]", value))
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


_PURGE_REJECT = (
    update(ImportReject)
    .where(ImportReject.id == bindparam("p_id"))
    .values(row=None, reason=bindparam("p_reason"))
)


def _purge_rejects(settings: Settings, cutoff: datetime) -> int:
    """The refused rows of imports started before ``cutoff``: the line and the field that
    was wrong stay, the row and the value quoted in the reason go."""
    purged = 0
    while True:
        with connection(settings.ledger_url) as db:
            rows = db.execute(
                select(ImportReject.id, ImportReject.reason)
                .join(RecipientImport, RecipientImport.id == ImportReject.import_id)
                .where(RecipientImport.created_at < cutoff, ImportReject.row.is_not(None))
                .limit(BATCH)
            ).all()
            if rows:
                db.execute(
                    _PURGE_REJECT, [{"p_id": r.id, "p_reason": _reason(r.reason)} for r in rows]
                )
        if not rows:
            return purged
        purged += len(rows)


def _reason(reason: str) -> str:
    field, _, why = reason.partition(":")
    return f"{field}: (purged)" if "'" in why or '"' in why else reason


def _purge_schedules(settings: Settings, kinds: Mapping[str, JobKind], cutoff: datetime) -> int:
    """Campaign schedules dispatched, cancelled or missed before ``cutoff``: their payloads
    keep what a campaign send's job keeps."""
    keeps = _keeps(kinds, schedules.KIND)
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(CampaignSchedule.id, CampaignSchedule.payload).where(
                CampaignSchedule.state.in_(
                    (schedules.DISPATCHED, schedules.CANCELLED, schedules.MISSED)
                ),
                func.coalesce(
                    CampaignSchedule.dispatched_at,
                    CampaignSchedule.cancelled_at,
                    CampaignSchedule.missed_at,
                )
                < cutoff,
            )
        ).all()
        changed = {
            row.id: kept(row.payload, keeps)
            for row in rows
            if kept(row.payload, keeps) != row.payload
        }
        for schedule_id, payload in changed.items():
            db.execute(
                update(CampaignSchedule)
                .where(CampaignSchedule.id == schedule_id)
                .values(payload=payload)
            )
    return len(changed)
