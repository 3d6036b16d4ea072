"""Thin Celery tasks: load by id, run, done. All decisions live in worker.jobs."""

from __future__ import annotations

import functools

from worker import sweeper
from worker.app import app
from worker.jobs import runner
from worker.publish import RUN_JOB, declare_queue, publish
from worker.ratelimit import RateLimiter, limiter_for
from worker.settings import get_settings


@functools.cache
def _limiter() -> RateLimiter:
    settings = get_settings()
    return limiter_for(settings.broker_url, settings.ledger_url)


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str | None:
    return runner.run(job_id, settings=get_settings(), limiter=_limiter(), publish=publish)


@app.task(name="mailup_jobs.sweep")
def sweep() -> dict[str, int]:
    return sweeper.sweep(get_settings(), publish, declare_queue).as_dict()
