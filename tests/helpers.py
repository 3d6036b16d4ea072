"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from producers.audit import get_job
from worker.engine import clients, runner
from worker.engine.kind import JobContext
from worker.jobs.registry import KINDS
from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import Job, utcnow
from worker.settings import get_settings

if TYPE_CHECKING:
    from tests.conftest import Env


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


def die_after_claim(job_id: str, *, opened_call: bool) -> None:
    """What a worker leaves behind when SIGKILLed after its claim (lease already over)."""
    settings = get_settings()
    with transaction(settings.ledger_url) as session:
        claim = store.claim(session, job_id, worker="dead/1", lease_seconds=-1)
    assert claim is not None
    if opened_call:
        JobContext(settings, claim, "dead/1").calling()


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


def mailup_jobs(env: Env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`mailup-jobs ARGS` as an operator runs it: a process of its own, the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        env={**os.environ, **env.values},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
