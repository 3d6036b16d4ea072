"""The Celery app (``celery -A worker.app …``). Messages carry a job id and nothing else."""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from worker import logs
from worker.engine import heartbeat
from worker.errors import ConfigurationError
from worker.ledger.db import dispose_all
from worker.settings import Settings, get_settings

QUEUE = "mailup-jobs"


def check_broker(settings: Settings) -> None:
    """Refuse the filesystem broker with a shared ledger: its folder is this host's, and
    workers elsewhere would never see the jobs queued there."""
    if settings.ledger_is_shared and settings.broker_url.startswith("filesystem://"):
        raise ConfigurationError(
            "MAILUP_JOBS_BROKER_URL must name a broker every host reaches (redis://host:6379/0) "
            "when the ledger is shared (MAILUP_JOBS_DATABASE_URL): filesystem:// queues to a "
            f"folder of this host ({settings.data_dir / 'broker'})"
        )


def broker_options(settings: Settings) -> dict[str, Any]:
    if settings.broker_url.startswith("filesystem://"):
        folder = str(settings.data_dir / "broker")
        (settings.data_dir / "broker" / "control").mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": folder + "/control",
        }
    if settings.broker_is_redis:
        # One list per priority: 0 is served first.
        return {"priority_steps": list(range(10)), "queue_order_strategy": "priority"}
    return {}


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    check_broker(settings)
    app = Celery("mailup_jobs", broker=settings.broker_url)
    app.conf.update(
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A message is acknowledged only once its job is recorded; a worker lost mid-task
        # gives it back. Duplicates are harmless: the ledger claim runs a job once.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.worker_prefetch,
        worker_pool=settings.worker_pool,
        worker_concurrency=settings.worker_concurrency,
        # Flower reads these events. Not a "sent" event per job: one more Redis publish per
        # job enqueued (a third of a producer's publishing time), for what the ledger knows.
        worker_send_task_events=True,
        # In memory, no schedule file; its entries run inside beat (see worker.beat).
        beat_scheduler="worker.beat:Scheduler",
    )
    return app


@functools.cache
def _process_app() -> Celery:
    app = create_app()
    app.conf.include = ["worker.tasks"]
    return app


def __getattr__(name: str) -> Celery:
    """``app``: what `celery -A worker.app` and `mailup-jobs worker` run, made on first use
    so that importing this module (to publish, say) reads no setting. A setting to fix is
    one line on stderr (``celery -A worker.app`` would print a traceback)."""
    if name == "app":
        try:
            return _process_app()
        except ConfigurationError as exc:
            raise SystemExit(f"mailup-jobs: cannot start: settings: {exc}") from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Worker and beat lines in the configured format, secrets masked (pool processes inherit it).
celeryd_init.connect(logs.on_worker_init)
after_setup_logger.connect(logs.on_celery_logging)
after_setup_task_logger.connect(logs.on_celery_logging)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked pool process must not share its parent's database sockets.
    dispose_all()


@worker_init.connect
@worker_process_init.connect
def _start_beating(**_: Any) -> None:
    # The process that runs jobs (the worker itself on threads, each child of a prefork
    # pool) beats before it takes one: the sweeper hands its jobs on if it stops.
    heartbeat.ensure_beating(get_settings().ledger_url, heartbeat.worker_name())


@worker_shutdown.connect
@worker_process_shutdown.connect
def _stop_beating(**_: Any) -> None:
    # Stopped in good order (its jobs done): no heartbeat left for the sweeper to wait out.
    heartbeat.stop_beating(get_settings().ledger_url)
