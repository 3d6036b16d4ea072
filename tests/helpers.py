"""Small helpers shared by the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from producers.audit import get_job
from worker.engine import clients, runner
from worker.jobs.registry import KINDS
from worker.ledger.db import transaction
from worker.ledger.models import Job, utcnow
from worker.settings import get_settings


@dataclass
class Recorder:
    """Stands in for the broker where a test runs jobs in-process: records publications."""

    published: list[tuple[str, int, float | None]] = field(default_factory=list)

    def __call__(self, job_id: str, priority: int, countdown: float | None) -> bool:
        self.published.append((job_id, priority, countdown))
        return True


def run_once(job_id: str, publish: Recorder | None = None) -> str | None:
    """One delivery of a job's message to a worker, in this process."""
    settings = get_settings()
    return runner.run(
        job_id,
        settings=settings,
        kinds=KINDS,
        limiter=clients.limiter(settings),
        publish=publish or Recorder(),
    )


def make_due(job_id: str) -> None:
    """Skip a retry's wait (the backoff itself is tested on its own)."""
    with transaction(get_settings().ledger_url) as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(run_after=utcnow() - timedelta(seconds=1))
        )


def job(job_id: str) -> dict[str, Any]:
    found = get_job(job_id)
    assert found is not None
    return found


def job_count() -> int:
    with transaction(get_settings().ledger_url) as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def statuses(job_ids: list[str]) -> dict[str, str]:
    with transaction(get_settings().ledger_url) as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
        return {row.id: row.status for row in rows}
