"""Reading the ledger, and the few things an operator may do to a job.

from producers.audit import get_job, list_jobs
get_job(job_id)["outcome"]["delivery_id"]
"""

from __future__ import annotations

from typing import Any

from worker.jobs import audit
from worker.publish import publish
from worker.settings import get_settings


def get_job(job_id: str) -> dict[str, Any] | None:
    """The job with its attempts and outcome, or None if there is no such job."""
    return audit.get_job(get_settings(), job_id)


def list_jobs(
    *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one status and kind."""
    return audit.list_jobs(get_settings(), status=status, kind=kind, limit=limit)


def status_counts() -> dict[str, int]:
    return audit.status_counts(get_settings())


def requeue(job_id: str) -> bool:
    """Run a failed or in_doubt job again — the operator has checked it was not sent."""
    return audit.requeue(get_settings(), job_id, publish)


def cancel(job_id: str) -> bool:
    """Stop a job that has not run yet (queued or waiting for a retry)."""
    return audit.cancel(get_settings(), job_id)
