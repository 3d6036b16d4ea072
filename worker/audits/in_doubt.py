"""The in_doubt jobs waiting for a person, and that person's word on each: it was sent (the
job succeeded, with MailUp's delivery id if they found it) or it was not (queued again, as
``jobs retry`` does). Every resolution is kept with who gave it and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from worker.engine.kind import Publish
from worker.jobs.audit import hand_over
from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import Job, JobResolution, JobStatus, utcnow
from worker.settings import Settings

SENT, NOT_SENT = "sent", "not_sent"


@dataclass(frozen=True)
class InDoubtJob:
    id: str
    kind: str
    account: str
    created_at: datetime
    # When it became in doubt (its last change).
    since: datetime
    attempts: int
    code: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "account": self.account,
            "created_at": self.created_at.isoformat(),
            "since": self.since.isoformat(),
            "attempts": self.attempts,
            "code": self.code,
            "error": self.error,
        }


@dataclass(frozen=True)
class Resolution:
    job_id: str
    resolution: str
    delivery_id: int | None
    resolved_by: str
    resolved_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "resolution": self.resolution,
            "delivery_id": self.delivery_id,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at.isoformat(),
        }


class NotInDoubt(Exception):
    """The job is not in_doubt (resolved already, never in doubt, or no such job)."""


def in_doubt(settings: Settings) -> list[InDoubtJob]:
    """Every in_doubt job, the longest in doubt first."""
    query = (
        select(
            Job.id,
            Job.kind,
            Job.account,
            Job.created_at,
            Job.updated_at.label("since"),
            Job.attempts,
            Job.last_error_code.label("code"),
            Job.last_error.label("error"),
        )
        .where(Job.status == JobStatus.IN_DOUBT)
        .order_by(Job.updated_at, Job.id)
    )
    with transaction(settings.ledger_url) as session:
        return [InDoubtJob(**row._asdict()) for row in session.execute(query)]


def resolve(
    settings: Settings,
    job_id: str,
    *,
    sent: bool,
    by: str,
    publish: Publish,
    delivery_id: int | None = None,
) -> Resolution:
    """Record an operator's word on an in_doubt job: ``sent`` ends it succeeded; not sent
    queues it again and publishes it.

    Raises:
        ValueError: naming ``delivery_id`` (only for a sent job) or ``by`` (empty).
        NotInDoubt: the job is not in_doubt.
    """
    if delivery_id is not None and not sent:
        raise ValueError("delivery_id: only a job that was sent has one")
    if not by.strip():
        raise ValueError("by: name who resolves the job")
    target = JobStatus.SUCCEEDED if sent else JobStatus.QUEUED
    resolution = Resolution(job_id, SENT if sent else NOT_SENT, delivery_id, by, utcnow())
    with transaction(settings.ledger_url) as session:
        priority = store.move(session, job_id, (JobStatus.IN_DOUBT,), target)
        if priority is None:
            raise NotInDoubt(f"job {job_id} is not in_doubt")
        session.add(JobResolution(**vars(resolution)))
    if not sent:
        hand_over(settings, job_id, priority, publish)
    return resolution
