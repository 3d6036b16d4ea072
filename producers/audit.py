"""Reading the ledger, and the few things an operator may do to a job.

from producers.audit import get_job, list_jobs
get_job(job_id)["outcome"]["delivery_id"]
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from worker.jobs.registry import KINDS
from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import Attempt, Job, JobStatus, utcnow
from worker.publish import publish
from worker.settings import get_settings


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def get_job(job_id: str) -> dict[str, Any] | None:
    """The job with its attempts and outcome, or None if there is no such job."""
    with transaction(get_settings().ledger_url) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        attempts = session.scalars(
            select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)
        )
        kind = KINDS.get(job.kind)
        return {
            **_summary(job),
            "payload": job.payload,
            "attempts": [
                {
                    "number": a.number,
                    "outcome": a.outcome,
                    "http_status": a.http_status,
                    "mailup_code": a.mailup_code,
                    "error": a.error,
                    "worker": a.worker,
                    "started_at": _iso(a.started_at),
                    "duration_ms": a.duration_ms,
                }
                for a in attempts
            ],
            "outcome": kind.describe(session, job) if kind else job.outcome,
        }


def list_jobs(
    *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one status and kind."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    with transaction(get_settings().ledger_url) as session:
        return [_summary(job) for job in session.scalars(query)]


def status_counts() -> dict[str, int]:
    with transaction(get_settings().ledger_url) as session:
        return store.counts_by_status(session)


def requeue(job_id: str) -> bool:
    """Run a failed or in_doubt job again — the operator has checked it was not sent."""
    return _move(job_id, (JobStatus.FAILED, JobStatus.IN_DOUBT), JobStatus.QUEUED, publish_it=True)


def cancel(job_id: str) -> bool:
    """Stop a job that has not run yet (queued or waiting for a retry)."""
    return _move(job_id, (JobStatus.QUEUED, JobStatus.RETRYING), JobStatus.CANCELLED)


def _move(
    job_id: str, sources: tuple[JobStatus, ...], target: JobStatus, *, publish_it: bool = False
) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if target == JobStatus.QUEUED:
        values.update(run_after=now, published_at=now, finished_at=None)
    else:
        values["finished_at"] = now
    with transaction(get_settings().ledger_url) as session:
        moved = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(sources)).values(**values)
        ).rowcount  # type: ignore[attr-defined]
        priority = session.scalar(select(Job.priority).where(Job.id == job_id))
    if moved and publish_it:
        assert priority is not None  # the row was just moved
        publish(job_id, priority, None)
    return bool(moved)


def _summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "account": job.account,
        "status": job.status,
        "priority": job.priority,
        "idempotency_key": job.idempotency_key,
        "attempt_count": job.attempts,
        "last_error_code": job.last_error_code,
        "last_error": job.last_error,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "finished_at": _iso(job.finished_at),
    }
