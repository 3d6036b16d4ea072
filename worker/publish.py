"""Handing a job id to the broker. Failure is not fatal: the ledger has the job, and the
sweeper publishes whatever was not."""

from __future__ import annotations

import functools
import logging

from celery import Celery

from worker.app import QUEUE, create_app
from worker.settings import get_settings

log = logging.getLogger(__name__)

RUN_JOB = "mailup_jobs.run_job"


@functools.cache
def _publisher(broker_url: str, data_dir: str) -> Celery:
    # Keyed by all the connection depends on: the filesystem broker's folders are in data_dir.
    return create_app(get_settings())


def _current_publisher() -> Celery:
    settings = get_settings()
    return _publisher(settings.broker_url, str(settings.data_dir))


def declare_queue() -> None:
    """Declare the job queue again, uncached.

    A Redis that was flushed or restarted without persistence has also lost kombu's
    exchange bindings, and kombu silently drops what is published to an unbound exchange.
    """
    app = _current_publisher()
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[QUEUE]
        queue(connection.default_channel).declare()


def publish(job_id: str, priority: int = 5, countdown: float | None = None) -> bool:
    try:
        _current_publisher().send_task(
            RUN_JOB,
            args=[job_id],
            priority=priority,
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception as exc:  # the broker is down: the sweeper will publish it
        log.warning("could not publish job %s (%s); the sweeper will", job_id, type(exc).__name__)
        return False
    return True
