"""Handing a job id to the broker, and noticing when the broker lost what it was handed.

Publishing may fail: the ledger has the job, and the sweeper publishes whatever was not.
"""

from __future__ import annotations

import functools
import logging
import uuid

import redis
from celery import Celery

from worker.app import QUEUE, create_app
from worker.ledger import store
from worker.ledger.db import connection
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

RUN_JOB = "mailup_jobs.run_job"
# A message of several job ids (bulk submissions): one message to publish and take, for many.
RUN_JOBS = "mailup_jobs.run_jobs"
# A mark kept in the broker's Redis database, its value also kept in the ledger: when the
# mark is gone, so is everything else that database held (flushed, or restarted without
# persistence).
EPOCH_KEY = "mailup-jobs:broker-epoch"
EPOCH_META = "broker_epoch"


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
    with app.connection_for_write() as connection_:
        queue = app.amqp.queues[QUEUE]
        queue(connection_.default_channel).declare()


def publish(job_id: str, priority: int = 5, countdown: float | None = None) -> bool:
    return _send(RUN_JOB, job_id, priority, countdown)


def publish_batch(job_ids: list[str], priority: int) -> bool:
    """One message for several jobs, run one after another by one worker thread."""
    return _send(RUN_JOBS, job_ids, priority, None)


def _send(task: str, ids: str | list[str], priority: int, countdown: float | None) -> bool:
    # Outside the try: a broker the settings refuse is the caller's to fix, not the sweeper's.
    publisher = _current_publisher()
    try:
        publisher.send_task(
            task,
            args=[ids],
            priority=priority,
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception as exc:  # the broker is down: the sweeper will publish it
        log.info("could not publish job(s) %s (%s); the sweeper will", ids, type(exc).__name__)
        return False
    return True


def broker_lost(settings: Settings) -> bool:
    """Whether the broker lost its data since the last look (Redis brokers only).

    The first look on a new installation sets the mark; a Redis that holds another
    installation's mark is taken as it is.
    """
    if not settings.broker_is_redis:
        return False
    with redis.Redis.from_url(settings.broker_url) as client, connection(settings.ledger_url) as db:
        known = store.get_meta(db, EPOCH_META)
        seen = client.get(EPOCH_KEY)
        if seen is None:
            epoch = known or uuid.uuid4().hex
            client.set(EPOCH_KEY, epoch)
            if known is None:
                store.set_meta(db, EPOCH_META, epoch)
            return known is not None
        if seen.decode() != known:
            store.set_meta(db, EPOCH_META, seen.decode())
    return False
