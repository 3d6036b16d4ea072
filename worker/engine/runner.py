"""One run of one job: claim → gate (pause, send rate) → execute → classify → record.

Knows nothing of Celery, nor of any job kind by name: the task hands it the registry of
kinds and a ``publish`` function for retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from worker.engine import heartbeat, pauses
from worker.engine.kind import (
    ClaimLost,
    InDoubt,
    JobContext,
    JobKind,
    Publish,
    Refused,
    Result,
    Waiting,
)
from worker.engine.ratelimit import LimiterUnavailable, RateLimiter
from worker.engine.retry import backoff
from worker.errors import ConfigurationError
from worker.ledger import group_commit, store
from worker.ledger.db import connection
from worker.ledger.group_commit import Call
from worker.ledger.models import AttemptOutcome, JobStatus, utcnow
from worker.mailup import http
from worker.mailup.errors import MailUpError
from worker.settings import Settings

log = logging.getLogger(__name__)

# Broker countdowns stay well under Redis's visibility timeout (an hour); longer delays are
# published by the sweeper when due.
MAX_COUNTDOWN = 300.0
# A wait for the send rate shorter than this is slept in place; longer ones release the job.
MAX_THROTTLE_SLEEP = 2.0
# A thread runs a batch's jobs this long, then hands the rest back to the broker and takes
# the most urgent message: an OTP behind a bulk send waits for a thread at most about this.
BATCH_TURN = 5.0


def run(
    job_id: str,
    *,
    settings: Settings,
    kinds: Mapping[str, JobKind],
    limiter: RateLimiter,
    publish: Publish,
) -> str | None:
    """Run the job if it is ours to run; return the status it ended in (None: not ours)."""
    return run_batch([job_id], settings=settings, kinds=kinds, limiter=limiter, publish=publish)[
        job_id
    ]


def run_batch(
    job_ids: Sequence[str],
    *,
    settings: Settings,
    kinds: Mapping[str, JobKind],
    limiter: RateLimiter,
    publish: Publish,
    hand_back: Callable[[list[str], int], bool] | None = None,
    turn: float = BATCH_TURN,
) -> dict[str, str | None]:
    """Run the jobs of one message one after another, each claimed as it starts (with the
    claims of other threads: one statement); the status each ended in (None: not ours, or
    handed back).

    After ``turn`` seconds the jobs not started are given to ``hand_back`` in two halves (to
    publish each again as one message, at the priority of the batch's jobs); what it cannot
    take, this thread runs too."""
    worker = heartbeat.worker_name()
    ended: dict[str, str | None] = dict.fromkeys(job_ids)
    lost: OperationalError | None = None
    ends = time.monotonic() + turn
    priority: int | None = None  # the batch's, once a claim has told it
    pending = list(job_ids)
    while pending:
        if hand_back and priority is not None and time.monotonic() > ends:
            pending = _handed_back(hand_back, pending, priority)
            hand_back = None  # handed back; or the broker is away: this thread runs the rest
            continue
        job_id = pending.pop(0)
        try:
            claim = group_commit.claim(
                settings.ledger_url, job_id, worker=worker, lease_seconds=settings.lease_seconds
            )
            if claim is None:
                log.debug(
                    "job %s is not claimable (running elsewhere, finished or not due)", job_id
                )
                continue
            priority = claim.priority
            ended[job_id] = _run_claimed(claim, worker, settings, kinds, limiter, publish)
        except OperationalError as exc:
            # The ledger is unreachable, or failed mid-call (the sweeper decides once the
            # lease ends). The others still run: this one's fate is not theirs.
            lost = exc
    if lost is not None:
        raise lost
    return ended


def _handed_back(
    hand_back: Callable[[list[str], int], bool], rest: list[str], priority: int
) -> list[str]:
    """Give ``rest`` back as two messages: a batch that outlasts its turn (MailUp is slow)
    spreads over two threads, and their halves over four, until every thread is busy. The
    ids the broker did not take, which the caller runs."""
    half = (len(rest) + 1) // 2
    for start, piece in ((0, rest[:half]), (half, rest[half:])):
        if piece and not hand_back(piece, priority):
            return rest[start:]
    return []


def _run_claimed(
    claim: store.Claim,
    worker: str,
    settings: Settings,
    kinds: Mapping[str, JobKind],
    limiter: RateLimiter,
    publish: Publish,
) -> str:
    job_id = claim.job_id
    started = utcnow()
    context = JobContext(settings, claim, worker)
    kind = kinds.get(claim.kind)
    payload: Any = None
    try:
        if kind is None:
            raise ConfigurationError(f"this worker does not know job kind {claim.kind!r}")
        payload = kind.payload.model_validate(claim.payload)
        context.delivery = kind.delivery_for(context.account)
        later = _gate(kind, payload, context, limiter)
        if later:
            return _release(context, later, publish)
        http.forget_last_status()
        result = kind.execute(context, payload)
    except Waiting as waiting:
        if context.called:  # after a call, waiting is retrying
            return _retry_at(
                context, started, publish, waiting.until, exc=waiting.cause, error=waiting.reason
            )
        return _release(context, waiting.until, publish, waiting.reason)
    except MailUpError as exc:
        assert kind is not None  # no MailUp call happens without a kind
        return _failed_call(kind, payload, context, exc, started, publish)
    except ClaimLost as lost:
        # Another run holds the job now (this worker was silent too long): nothing to write.
        log.warning("%s", lost)
        return "taken_over"
    except Refused as refused:
        return _finish(context, started, JobStatus.FAILED, code=refused.code, error=refused.reason)
    except InDoubt as doubt:
        return _finish(context, started, JobStatus.IN_DOUBT, code=doubt.code, error=doubt.reason)
    except (ConfigurationError, ValidationError) as exc:
        # Nothing a retry can mend: the operator fixes the setting, then re-queues.
        return _finish(context, started, JobStatus.FAILED, code="configuration", error=str(exc))
    except LimiterUnavailable as exc:
        # Asked before the request leaves (even once "calling" is recorded): nothing was sent.
        log.warning("job %s: %s", job_id, exc)
        return _retry(context, started, publish, code="rate_limiter", error=str(exc))
    except OperationalError as exc:
        if context.called:
            raise  # the database failed mid-call: the sweeper decides, once the lease ends
        # The database went away before MailUp was called: nothing was sent, try again.
        log.warning("job %s: ledger unreachable before the call (%s)", job_id, type(exc).__name__)
        return _retry(context, started, publish, code="database", error=type(exc).__name__)
    except Exception as exc:
        log.exception("job %s: unexpected error", job_id)
        status = JobStatus.IN_DOUBT if context.called else JobStatus.FAILED
        return _finish(context, started, status, code="internal", error=type(exc).__name__)
    return _succeeded(context, result, started, lambda: _channel_kinds(kinds, kind))


def _channel_kinds(kinds: Mapping[str, JobKind], kind: JobKind) -> list[str]:
    """The kinds that share ``kind``'s channel: a pause of it holds them all."""
    return [name for name, other in kinds.items() if kind.channel and other.channel == kind.channel]


def _gate(
    kind: JobKind, payload: Any, context: JobContext, limiter: RateLimiter
) -> datetime | None:
    """When the job may run, if not now: its channel is paused, or its send rate is spent."""
    if kind.channel is None:
        return None
    settings, account = context.settings, context.claim.account
    gate = pauses.gate(settings, account, kind.scopes(payload), context.claim.job_id)
    if gate.wait_until:
        return pauses.jitter(gate.wait_until)
    context.probe = gate.probe
    per_hour = kind.channel.per_hour(context.account)
    if not per_hour:
        return None
    key, interval = f"{account}:{kind.channel.name}", 3600.0 / per_hour
    while (wait := limiter.try_acquire(key, interval)) and wait <= MAX_THROTTLE_SLEEP:
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
        call=lambda db: store.release(
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


def _succeeded(
    context: JobContext, result: Result, started: datetime, lift: Callable[[], list[str]]
) -> str:
    """Record the success; a probe's success also ends its pause and wakes the ``lift()``
    kinds (asked only then: it looks at every kind)."""

    closing = store.closing(
        context.claim,
        opened=context.called,
        worker=context.worker,
        outcome=AttemptOutcome.SUCCEEDED,
        started_at=started,
        http_status=result.http_status or http.last_status(),
        code=result.code,
    )
    settling = store.settling(context.claim, status=JobStatus.SUCCEEDED, outcome=result.outcome)
    try:
        _record(context, [closing, *result.rows, settling], call=result.record)
    except Exception as exc:
        # MailUp has answered; a job left "running" would be guessed at by the sweeper.
        log.exception("job %s: its outcome could not be recorded", context.claim.job_id)
        reason = f"MailUp answered, but the outcome could not be recorded: {_brief(exc)}"
        _finish(context, started, JobStatus.IN_DOUBT, code="record_failed", error=reason)
        return JobStatus.IN_DOUBT
    _log_outcome(context, started, JobStatus.SUCCEEDED)
    if context.probe:
        # The probe went through: the account can send again.
        pauses.lift(context.settings, context.claim.account, context.probe, lift(), narrower=False)
    return JobStatus.SUCCEEDED


def _failed_call(
    kind: JobKind,
    payload: Any,
    context: JobContext,
    exc: MailUpError,
    started: datetime,
    publish: Publish,
) -> str:
    if exc.account_level and kind.channel:
        return _pause(kind, payload, context, exc, started, publish)
    at_least_once = kind.delivery_for(context.account) == "at_least_once"
    if exc.outcome_unknown and not at_least_once:
        return _finish(context, started, JobStatus.IN_DOUBT, exc=exc)
    if not (exc.retryable or exc.outcome_unknown):
        return _finish(context, started, JobStatus.FAILED, exc=exc)
    if _attempts_spent(context) >= context.settings.max_attempts:
        # After an unknown outcome "failed" would claim nothing was sent: it may have been.
        status = JobStatus.IN_DOUBT if exc.outcome_unknown else JobStatus.FAILED
        error = f"gave up after {context.claim.number} attempts: {exc.message}"
        return _finish(context, started, status, exc=exc, error=error)
    return _retry(context, started, publish, exc=exc)


def _attempts_spent(context: JobContext) -> int:
    """This run's attempt number, less the runs that only met a paused account."""
    with connection(context.settings.ledger_url) as db:
        paused = store.count_attempts(db, context.claim.job_id, AttemptOutcome.PAUSED)
    return context.claim.number - paused


def _pause(
    kind: JobKind,
    payload: Any,
    context: JobContext,
    exc: MailUpError,
    started: datetime,
    publish: Publish,
) -> str:
    """The account cannot send on this channel: pause it; this job waits with the rest."""
    assert kind.channel is not None
    settings, account = context.settings, context.claim.account
    until = kind.channel.on_pause(context, exc) if kind.channel.on_pause else None
    scope = pauses.scope_for(kind, payload, exc)
    pauses.pause(settings, account, scope, reason=exc.message, condition=exc.condition, until=until)
    resume_at = pauses.jitter(until or utcnow() + pauses.PARKED)
    return _retry_at(context, started, publish, resume_at, exc=exc, attempt=AttemptOutcome.PAUSED)


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
    exc: MailUpError | None = None,
    error: str | None = None,
    code: str | None = None,
    attempt: AttemptOutcome | None = None,
) -> str:
    if attempt is None:
        unknown = exc is not None and exc.may_have_acted
        attempt = AttemptOutcome.UNKNOWN if unknown else AttemptOutcome.TRANSIENT
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
        attempt=attempt,
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
    attempt: AttemptOutcome | None = None,
) -> str:
    if exc is not None:
        code = code or exc.code or (f"http_{exc.http_status}" if exc.http_status else "network")
        error = error or exc.message

    closing = store.closing(
        context.claim,
        opened=context.called,
        worker=context.worker,
        outcome=attempt or _ATTEMPT_OUTCOME[status],
        started_at=started,
        http_status=exc.http_status if exc else None,
        code=exc.code if exc else None,  # MailUp's code only; ours is on the job
        error=error,
    )
    settling = store.settling(
        context.claim,
        status=status,
        error_code=code,
        error=error,
        run_after=run_after,
        publish=publish,
    )
    _record(context, [closing, settling])
    _log_outcome(context, started, status, error)
    return status


def _log_outcome(
    context: JobContext, started: datetime, status: str, error: str | None = None
) -> None:
    """One line per run, its fields also as record attributes (for a JSON log format)."""
    claim = context.claim
    fields = {
        "job_id": claim.job_id,
        "kind": claim.kind,
        "account": claim.account,
        "attempt": claim.number,
        "outcome": status,
        "duration_ms": round((utcnow() - started).total_seconds() * 1000),
    }
    text = " ".join(f"{name}={value}" for name, value in fields.items())
    log.info("%s%s", text, f" error={error}" if error else "", extra={**fields, "error": error})


def _record(
    context: JobContext,
    statements: Sequence[store.Statement] = (),
    *,
    call: Call | None = None,
    patience: float = 60.0,
) -> None:
    """Write an outcome in one transaction (with other threads' outcomes: group commit),
    retried while the database is unreachable.

    The MailUp call has happened: losing its answer to a database restart would leave the
    job in doubt, so the write is worth waiting for.
    """
    deadline = time.monotonic() + patience
    delay = 0.5
    writer = group_commit.writer_for(context.settings.ledger_url)
    while True:
        try:
            writer.commit(statements, call)
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            log.warning("ledger unreachable; retrying the write in %.1fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _brief(exc: BaseException) -> str:
    """An exception in one line, for the ledger: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
