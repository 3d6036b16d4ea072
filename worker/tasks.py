"""Thin Celery tasks: load by id, run, done. All decisions live in worker.engine and the
job kinds. The periodic ones run inside beat (see worker.beat)."""

from __future__ import annotations

from datetime import timedelta

from celery import Task
from sqlalchemy.exc import OperationalError

from worker import retention
from worker.app import app
from worker.engine import clients, pauses, runner, sweeper
from worker.jobs.registry import KINDS, POLLS, requeue_if_called
from worker.publish import RUN_JOB, RUN_JOBS, broker_lost, declare_queue, publish, publish_batch
from worker.settings import get_settings


@app.task(name=RUN_JOB, bind=True, max_retries=None)
def run_job(self: Task, job_id: str) -> str | None:
    settings = get_settings()
    try:
        return runner.run(
            job_id,
            settings=settings,
            kinds=KINDS,
            limiter=clients.limiter(settings),
            publish=publish,
        )
    except OperationalError as exc:
        # The ledger is unreachable (a restart drops pooled connections): try again soon
        # rather than wait for the sweeper. The claim makes the extra message harmless.
        raise self.retry(countdown=2, exc=exc) from None


@app.task(name=RUN_JOBS, bind=True, max_retries=None)
def run_jobs(self: Task, job_ids: list[str]) -> dict[str, str | None]:
    settings = get_settings()
    try:
        return runner.run_batch(
            job_ids,
            settings=settings,
            kinds=KINDS,
            limiter=clients.limiter(settings),
            publish=publish,
            hand_back=publish_batch,
        )
    except OperationalError as exc:
        # As run_job: the jobs already run are not claimable again, the others are run.
        raise self.retry(countdown=2, exc=exc) from None


@app.task(name="mailup_jobs.sweep")
def sweep() -> dict[str, int]:
    settings = get_settings()
    report = sweeper.sweep(
        settings,
        publish,
        declare_queue=declare_queue,
        broker_lost=lambda: broker_lost(settings),
        requeue_if_called=requeue_if_called(settings),
    )
    return report.as_dict()


@app.task(name="mailup_jobs.recover_lost")
def recover_lost() -> dict[str, int]:
    settings = get_settings()
    report = sweeper.recover_lost(
        settings,
        publish,
        declare_queue=declare_queue,
        requeue_if_called=requeue_if_called(settings),
    )
    return report.as_dict()


@app.task(name="mailup_jobs.probe_pauses")
def probe_pauses() -> int:
    return pauses.probe_due(get_settings(), KINDS)


@app.task(name="mailup_jobs.poll")
def poll(name: str) -> int:
    return POLLS[name].run(get_settings())


@app.task(name="mailup_jobs.purge")
def purge() -> dict[str, int]:
    """Retention: personal data of jobs finished MAILUP_JOBS_RETENTION_DAYS ago removed."""
    settings = get_settings()
    days = settings.retention_days
    if not days:
        return {}
    return retention.purge(settings, KINDS, timedelta(days=days)).as_dict()
