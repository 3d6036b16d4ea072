"""One run of one job: claim → gate (pause, send rate) → execute → classify → record.

Knows nothing of Celery: the task hands it a ``publish`` function for retries.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from worker.errors import ConfigurationError
from worker.jobs import pauses
from worker.jobs.base import JobContext, JobKind, Publish, Result, Waiting
from worker.jobs.registry import KINDS
from worker.jobs.retry import backoff
from worker.ledger import store
from worker.ledger.db import connection, single_statement
from worker.ledger.models import AttemptOutcome, JobStatus, utcnow
from worker.mailup.errors import MailUpError
from worker.ratelimit import RateLimiter
from worker.settings import Settings

log = logging.getLogger(__name__)

# Broker countdowns stay well under Redis's visibility timeout (an hour); longer delays are
# published by the sweeper when due.
MAX_COUNTDOWN = 300.0
# A wait for the rate limiter shorter than this is slept in place; longer ones release the job.
MAX_THROTTLE_SLEEP = 2.0


def worker_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def run(job_id: str, *, settings: Settings, limiter: RateLimiter, publish: Publish) -> str | None:
    """Run the job if it is ours to run; return the status it ended in (None: not ours)."""
    worker = worker_name()
    with single_statement(settings.ledger_url) as db:
        claim = store.claim(db, job_id, worker=worker, lease_seconds=settings.lease_seconds)
    if claim is None:
        log.debug("job %s is not claimable (running elsewhere, finished or not due)", job_id)
        return None
    started = utcnow()
    context = JobContext(settings, claim, worker)
    kind = KINDS.get(claim.kind)
    try:
        if kind is None:
            raise ConfigurationError(f"this worker does not know job kind {claim.kind!r}")
        later = _gate(kind, context, limiter)
        if later:
            return _release(context, later, publish)
        result = kind.execute(context, kind.payload.model_validate(claim.payload))
    except Waiting as waiting:
        return _release(context, waiting.until, publish, waiting.reason)
    except pauses.ChannelPaused as paused:
        # Not the job's fault: it waits for the account, then runs again.
        return _retry_at(
            context, started, publish, paused.resume_at, exc=paused.error, error=paused.reason
        )
    except MailUpError as exc:
        return _failed_call(context, exc, started, publish)
    except (ConfigurationError, ValidationError) as exc:
        # Nothing a retry can mend: the operator fixes the setting, then re-queues.
        return _finish(context, started, JobStatus.FAILED, code="configuration", error=str(exc))
    except OperationalError as exc:
        if context.called:
            raise  # the outcome write is what failed; _record already waited for the database
        # The database went away before MailUp was called: nothing was sent, try again.
        log.warning("job %s: ledger unreachable before the call (%s)", job_id, type(exc).__name__)
        return _retry(context, started, publish, code="database", error=type(exc).__name__)
    except Exception as exc:
        log.exception("job %s: unexpected error", job_id)
        status = JobStatus.IN_DOUBT if context.called else JobStatus.FAILED
        return _finish(context, started, status, code="internal", error=type(exc).__name__)
    return _succeeded(context, result, started)


def _gate(kind: JobKind, context: JobContext, limiter: RateLimiter) -> datetime | None:
    """When the job may run, if not now: its channel is paused, or the send rate is spent."""
    if kind.channel is None:
        return None
    settings, account = context.settings, context.claim.account
    paused_until = pauses.resume_at(settings, account, kind.channel)
    if paused_until:
        # A little jitter so the waiting jobs do not all come back in the same second.
        return paused_until + timedelta(seconds=random.uniform(0, 10))
    per_hour: int = getattr(context.account, f"{kind.channel}_per_hour")
    if not per_hour:
        return None
    key = f"{account}:{kind.channel}"
    while (wait := limiter.try_acquire(key, per_hour)) and wait <= MAX_THROTTLE_SLEEP:
        time.sleep(wait)
    if not wait:
        return None
    # Jitter spreads the jobs that all hit the limit at once over the coming window.
    return utcnow() + timedelta(seconds=wait + random.uniform(0, wait))


def _release(
    context: JobContext, run_after: datetime, publish: Publish, reason: str | None = None
) -> str:
    countdown = _countdown(run_after)
    _record(
        context,
        lambda db: store.release(
            db, context.claim, run_after=run_after, reason=reason, publish=countdown is not None
        ),
    )
    if countdown is not None:
        publish(context.claim.job_id, context.claim.priority, countdown)
    return JobStatus.QUEUED


def _countdown(run_after: datetime) -> float | None:
    """The broker countdown to ``run_after``; None when it is too far off for the broker, and
    the sweeper publishes the job when due."""
    delay = (run_after - utcnow()).total_seconds()
    return max(delay, 0) if delay <= MAX_COUNTDOWN else None


def _succeeded(context: JobContext, result: Result, started: datetime) -> str:
    def write(db: Connection) -> None:
        store.close_attempt(
            db,
            context.claim,
            worker=context.worker,
            outcome=AttemptOutcome.SUCCEEDED,
            started_at=started,
            http_status=result.http_status,
            code=result.code,
        )
        if result.record:
            result.record(db)
        store.settle(db, context.claim, status=JobStatus.SUCCEEDED, outcome=result.outcome)

    _record(context, write)
    return JobStatus.SUCCEEDED


def _failed_call(context: JobContext, exc: MailUpError, started: datetime, publish: Publish) -> str:
    claim, settings = context.claim, context.settings
    if exc.outcome_unknown:
        return _finish(context, started, JobStatus.IN_DOUBT, exc=exc)
    if not exc.retryable:
        return _finish(context, started, JobStatus.FAILED, exc=exc)
    if claim.number >= settings.max_attempts:
        return _finish(
            context,
            started,
            JobStatus.FAILED,
            exc=exc,
            error=f"gave up after {claim.number} attempts: {exc.message}",
        )
    return _retry(context, started, publish, exc=exc)


def _retry(
    context: JobContext,
    started: datetime,
    publish: Publish,
    *,
    exc: MailUpError | None = None,
    code: str | None = None,
    error: str | None = None,
) -> str:
    """Schedule the next attempt after a full-jitter backoff (at least Retry-After)."""
    claim, settings = context.claim, context.settings
    delay = backoff(
        claim.number,
        base=settings.backoff_base,
        cap=settings.backoff_cap,
        retry_after=exc.retry_after if exc else None,
    )
    run_after = utcnow() + timedelta(seconds=delay)
    return _retry_at(context, started, publish, run_after, exc=exc, error=error, code=code)


def _retry_at(
    context: JobContext,
    started: datetime,
    publish: Publish,
    run_after: datetime,
    *,
    exc: MailUpError | None,
    error: str | None = None,
    code: str | None = None,
) -> str:
    countdown = _countdown(run_after)
    _finish(
        context,
        started,
        JobStatus.RETRYING,
        exc=exc,
        code=code,
        error=error,
        run_after=run_after,
        publish=countdown is not None,
    )
    if countdown is not None:
        publish(context.claim.job_id, context.claim.priority, countdown)
    return JobStatus.RETRYING


_ATTEMPT_OUTCOME = {
    JobStatus.FAILED: AttemptOutcome.PERMANENT,
    JobStatus.RETRYING: AttemptOutcome.TRANSIENT,
    JobStatus.IN_DOUBT: AttemptOutcome.IN_DOUBT,
}


def _finish(
    context: JobContext,
    started: datetime,
    status: JobStatus,
    *,
    exc: MailUpError | None = None,
    code: str | None = None,
    error: str | None = None,
    run_after: datetime | None = None,
    publish: bool = True,
) -> str:
    if exc is not None:
        code = code or exc.code or (f"http_{exc.http_status}" if exc.http_status else "network")
        error = error or exc.message

    def write(db: Connection) -> None:
        store.close_attempt(
            db,
            context.claim,
            worker=context.worker,
            outcome=_ATTEMPT_OUTCOME[status],
            started_at=started,
            http_status=exc.http_status if exc else None,
            code=exc.code if exc else None,  # MailUp's code only; ours is on the job
            error=error,
        )
        store.settle(
            db,
            context.claim,
            status=status,
            error_code=code,
            error=error,
            run_after=run_after,
            publish=publish,
        )

    _record(context, write)
    log.info(
        "job %s attempt %d: %s (%s)", context.claim.job_id, context.claim.number, status, error
    )
    return status


def _record(
    context: JobContext, write: Callable[[Connection], object], *, patience: float = 60.0
) -> None:
    """Write an outcome in one transaction, retried while the database is unreachable.

    The MailUp call has happened: losing its answer to a database restart would leave the
    job in doubt, so the write is worth waiting for.
    """
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            with connection(context.settings.ledger_url) as db:
                write(db)
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            log.warning("ledger unreachable; retrying the write in %.1fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
