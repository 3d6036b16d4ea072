"""Thin Celery tasks: load by id, run, done. All decisions live in worker.jobs."""

from __future__ import annotations

import functools

from celery import Task
from sqlalchemy.exc import OperationalError

from worker import sweeper
from worker.app import app
from worker.jobs import runner, trusted_senders
from worker.publish import RUN_JOB, declare_queue, publish
from worker.ratelimit import RateLimiter, limiter_for
from worker.settings import get_settings


@functools.cache
def _limiter() -> RateLimiter:
    return limiter_for(get_settings())


@app.task(name=RUN_JOB, bind=True, max_retries=None)
def run_job(self: Task, job_id: str) -> str | None:
    try:
        return runner.run(job_id, settings=get_settings(), limiter=_limiter(), publish=publish)
    except OperationalError as exc:
        # The ledger is unreachable (a restart drops pooled connections): try again soon
        # rather than wait for the sweeper. The claim makes the extra message harmless.
        raise self.retry(countdown=2, exc=exc) from None


@app.task(name="mailup_jobs.sweep")
def sweep() -> dict[str, int]:
    return sweeper.sweep(get_settings(), publish, declare_queue).as_dict()


@app.task(name="mailup_jobs.poll_trusted_senders")
def poll_trusted_senders() -> int:
    return trusted_senders.poll(get_settings())
