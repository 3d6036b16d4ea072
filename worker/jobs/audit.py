"""Reading the ledger — a job with its attempts and its kind's view of the outcome, the
newest jobs, counts per status — and an operator's moves of a job. ``producers.audit``
offers these to applications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from worker.engine.kind import Publish
from worker.jobs.registry import KINDS
from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import Attempt, Job, JobResolution, JobStatus
from worker.settings import Settings


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def get_job(settings: Settings, job_id: str) -> dict[str, Any] | None:
    """The job with its attempts and outcome, or None if there is no such job."""
    with transaction(settings.ledger_url) as session:
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
            "resolutions": [
                {
                    "resolution": r.resolution,
                    "delivery_id": r.delivery_id,
                    "resolved_by": r.resolved_by,
                    "resolved_at": _iso(r.resolved_at),
                }
                for r in session.scalars(
                    select(JobResolution)
                    .where(JobResolution.job_id == job_id)
                    .order_by(JobResolution.id)
                )
            ],
        }


def list_jobs(
    settings: Settings, *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one status and kind."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    with transaction(settings.ledger_url) as session:
        return [_summary(job) for job in session.scalars(query)]


def status_counts(settings: Settings) -> dict[str, int]:
    with transaction(settings.ledger_url) as session:
        return store.counts_by_status(session)


def requeue(settings: Settings, job_id: str, publish: Publish) -> bool:
    """A failed or in_doubt job queued again (the operator checked it was not sent); never
    one whose payload a purge removed."""
    with transaction(settings.ledger_url) as session:
        if session.scalar(select(Job.purged_at).where(Job.id == job_id)) is not None:
            return False
        priority = store.move(
            session, job_id, (JobStatus.FAILED, JobStatus.IN_DOUBT), JobStatus.QUEUED
        )
    if priority is None:
        return False
    hand_over(settings, job_id, priority, publish)
    return True


def hand_over(settings: Settings, job_id: str, priority: int, publish: Publish) -> None:
    """Publish a job queued again; if the broker refuses, the sweeper publishes it."""
    if not publish(job_id, priority, None):
        with transaction(settings.ledger_url) as session:
            store.mark_unpublished(session, [job_id])


def cancel(settings: Settings, job_id: str) -> bool:
    """A job that has not run yet (queued, or waiting for a retry) cancelled."""
    with transaction(settings.ledger_url) as session:
        moved = store.move(
            session, job_id, (JobStatus.QUEUED, JobStatus.RETRYING), JobStatus.CANCELLED
        )
    return moved is not None


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
        "purged_at": _iso(job.purged_at),
    }
