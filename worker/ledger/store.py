"""Job state transitions. Each one is a conditional UPDATE, so two workers (or a worker and
the sweeper) can never both own a job, and a late writer never overwrites a newer state."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Executable,
    Insert,
    TableClause,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker.ledger.models import (
    CLAIMABLE,
    Attempt,
    AttemptOutcome,
    Base,
    Job,
    JobStatus,
    LedgerCounter,
    LedgerMeta,
    WorkerBeat,
    table,
    utcnow,
)

if TYPE_CHECKING:
    import psycopg

# The worker's transitions run on a Core connection (its hot path); producers and the
# audit side use an ORM session. Both execute the same statements.
Executor = Connection | Session
# A write as data: a statement built once and its parameters. Rows of the same statement
# are written together by worker.ledger.group_commit.
Statement = tuple[Executable, dict[str, Any]]


def upsert(db: Connection, model: type[Base], **values: Any) -> None:
    """Insert the row, or update the one with its primary key: atomic, so concurrent
    writers cannot collide (delete-then-insert can, under READ COMMITTED)."""
    table = model.__table__
    keys = [column.name for column in table.primary_key]
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name not in keys}
    db.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different job."""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one run of a job. ``number`` is the attempt number it owns,
    ``worker`` the process holding it: a write of this run changes the job only while both
    are still the job's (the sweeper may have handed it to another worker)."""

    job_id: str
    kind: str
    account: str
    payload: dict[str, Any]
    number: int
    priority: int
    worker: str


@dataclass(frozen=True)
class NewJob:
    kind: str
    account: str
    payload: dict[str, Any]
    priority: int
    idempotency_key: str | None = None
    # The id its producer was given before the job could be written (None: a new one).
    id: str | None = None


_INSERT_JOB = insert(table(Job))


def insert_jobs(db: Executor, jobs: Sequence[NewJob]) -> list[tuple[str, bool]]:
    """Add queued jobs in one statement: each one's id, and whether it is new. A job whose
    idempotency key is already used (or used earlier in ``jobs``) is that job (not new).

    Raises IdempotencyConflict when a key was used for different parameters; IntegrityError
    when another producer took one of the keys meanwhile (the caller's transaction or
    savepoint is then rolled back, and trying again finds that job).
    """
    keys = [job.idempotency_key for job in jobs if job.idempotency_key is not None]
    known: dict[str, NewJob] = {}
    if keys:
        for row in db.execute(
            select(Job.id, Job.kind, Job.account, Job.payload, Job.idempotency_key).where(
                Job.idempotency_key.in_(keys)
            )
        ):
            known[row.idempotency_key] = NewJob(
                row.kind, row.account, row.payload, 0, row.idempotency_key, row.id
            )
    now = utcnow()
    answer: list[tuple[str, bool]] = []
    rows: list[dict[str, Any]] = []
    for job in jobs:
        if job.idempotency_key is not None and job.idempotency_key in known:
            answer.append((_same_job(known[job.idempotency_key], job), False))
            continue
        job_id = job.id or str(uuid.uuid4())
        if job.idempotency_key is not None:
            known[job.idempotency_key] = NewJob(**{**job.__dict__, "id": job_id})
        answer.append((job_id, True))
        rows.append(
            {
                "id": job_id,
                "kind": job.kind,
                "account": job.account,
                "payload": job.payload,
                "priority": job.priority,
                "idempotency_key": job.idempotency_key,
                "status": JobStatus.QUEUED,
                "attempts": 0,
                "run_after": now,
                # Optimistic: the producer publishes right after commit, and clears this if
                # it can't.
                "published_at": now,
                "publish_count": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    execute_merged(db, [(_INSERT_JOB, row) for row in rows])
    return answer


def _same_job(existing: NewJob, asked: NewJob) -> str:
    assert existing.id is not None
    if (existing.kind, existing.account, existing.payload) != (
        asked.kind,
        asked.account,
        asked.payload,
    ):
        raise IdempotencyConflict(
            f"idempotency_key was already used for job {existing.id} with different parameters"
        )
    return existing.id


def wake(db: Executor, account: str, kinds: list[str]) -> None:
    """Make the account's waiting jobs of ``kinds`` due now; published_at None hands them to
    the sweeper at its next pass."""
    db.execute(
        update(Job)
        .where(Job.account == account, Job.kind.in_(kinds), Job.status.in_(CLAIMABLE))
        .values(run_after=utcnow(), published_at=None)
    )


def wake_jobs(db: Executor, job_ids: list[str]) -> None:
    """Make these waiting jobs due now (the sweeper publishes them at its next pass)."""
    db.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status.in_(CLAIMABLE))
        .values(run_after=utcnow(), published_at=None)
    )


def waiting_jobs(
    db: Executor, account: str, kinds: list[str], *, limit: int = 50
) -> list[tuple[str, str, dict[str, Any]]]:
    """The account's claimable jobs of ``kinds``, most urgent first: (id, kind, payload)."""
    rows = db.execute(
        select(Job.id, Job.kind, Job.payload)
        .where(Job.account == account, Job.kind.in_(kinds), Job.status.in_(CLAIMABLE))
        .order_by(Job.priority, Job.run_after)
        .limit(limit)
    )
    return [(row.id, row.kind, row.payload) for row in rows]


# The counter of jobs committed whose publish failed (the sweeper published them later).
PUBLISH_FAILURES = "publish_failures"


def mark_unpublished(db: Executor, job_ids: Sequence[str]) -> None:
    """The broker refused their messages: leave them to the sweeper, and count them."""
    db.execute(update(Job).where(Job.id.in_(job_ids)).values(published_at=None))
    count(db, PUBLISH_FAILURES, len(job_ids))


def count(db: Executor, name: str, more: int) -> None:
    """Add ``more`` to the ledger counter ``name`` (atomic: concurrent writers add up)."""
    table = LedgerCounter.__table__
    dialect = postgresql if _dialect(db) == "postgresql" else sqlite
    statement = dialect.insert(table).values(name=name, value=more)
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.name], set_={"value": table.c.value + more}
        )
    )


def _dialect(db: Executor) -> str:
    return (db.get_bind() if isinstance(db, Session) else db).dialect.name


def counter(db: Executor, name: str) -> int:
    return db.scalar(select(LedgerCounter.value).where(LedgerCounter.name == name)) or 0


# The worker's hot path runs these statements once per job: built once, with bind
# parameters, they skip SQLAlchemy's per-call construction (half the cost of a call).
_CLAIM = (
    update(Job)
    .where(
        Job.id.in_(bindparam("p_ids", expanding=True)),
        Job.status.in_(CLAIMABLE),
        Job.run_after <= bindparam("p_due"),
    )
    .values(
        status=JobStatus.RUNNING,
        attempts=Job.attempts + 1,
        worker=bindparam("p_worker"),
        lease_expires_at=bindparam("p_lease"),
        updated_at=bindparam("p_now"),
    )
    .returning(Job.id, Job.kind, Job.account, Job.payload, Job.attempts, Job.priority)
)


def claim(db: Executor, job_id: str, *, worker: str, lease_seconds: float) -> Claim | None:
    """Take a due, claimable job: queued/retrying → running. None if it is not ours to run."""
    claims = claim_many(db, [job_id], worker=worker, lease_seconds=lease_seconds)
    return claims[0] if claims else None


def claim_many(
    db: Executor, job_ids: Sequence[str], *, worker: str, lease_seconds: float
) -> list[Claim]:
    """``claim`` for several jobs in one statement: those that were ours to run, in the
    order of ``job_ids``."""
    now = utcnow()
    rows = db.execute(
        _CLAIM,
        {
            "p_ids": list(job_ids),
            # A little slack: a countdown set on another host may land a moment early.
            "p_due": now + timedelta(seconds=1),
            "p_worker": worker,
            "p_lease": now + timedelta(seconds=lease_seconds),
            "p_now": now,
        },
    )
    claims = {
        row.id: Claim(
            row.id, row.kind, row.account, row.payload, row.attempts, row.priority, worker
        )
        for row in rows
    }
    return [claims[job_id] for job_id in dict.fromkeys(job_ids) if job_id in claims]


def count_attempts(db: Executor, job_id: str, *outcomes: AttemptOutcome) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.job_id == job_id, Attempt.outcome.in_(outcomes))
        )
        or 0
    )


def release(
    db: Executor,
    claim: Claim,
    *,
    run_after: datetime,
    reason: str | None = None,
    publish: bool = True,
) -> bool:
    """Give a claimed job back untouched (throttled, paused, waiting): running → queued.

    ``publish`` False hands publishing to the sweeper (a wait too long for a countdown).
    """
    result = db.execute(
        update(Job)
        .where(
            Job.id == claim.job_id,
            Job.status == JobStatus.RUNNING,
            Job.attempts == claim.number,
            Job.worker == claim.worker,
        )
        .values(
            status=JobStatus.QUEUED,
            attempts=Job.attempts - 1,
            run_after=run_after,
            published_at=utcnow() if publish else None,
            publish_count=1 if publish else 0,  # a new first copy, as for a retry
            worker=None,
            lease_expires_at=None,
            last_error_code="waiting" if reason else None,
            last_error=reason,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_OPEN_ATTEMPT = insert(Attempt)


def open_calls(db: Executor, claims: Sequence[Claim]) -> set[str]:
    """Record, before each request leaves, that a MailUp call is being made: for the
    claims still held (the job running, same attempt number, same worker). The ids of those
    jobs; a claim not among them was taken over, and its call must not leave.

    The job rows are locked and touched first, so the sweeper taking a claim over either
    sees this "calling" (and puts the job in doubt) or comes first (and nothing is written
    here)."""
    now = utcnow()
    held = db.execute(
        update(Job)
        .where(
            tuple_(Job.id, Job.attempts, Job.worker).in_(
                [(c.job_id, c.number, c.worker) for c in claims]
            ),
            Job.status == JobStatus.RUNNING,
        )
        .values(updated_at=now)
        .returning(Job.id)
    )
    ids = set(held.scalars())
    rows = [
        {"job_id": c.job_id, "number": c.number, "worker": c.worker, "started_at": now}
        for c in claims
        if c.job_id in ids
    ]
    if rows:
        db.execute(_OPEN_ATTEMPT, rows)
    return ids


_CLOSE_ATTEMPT = (
    update(Attempt)
    .where(Attempt.job_id == bindparam("p_job_id"), Attempt.number == bindparam("p_number"))
    .values(
        outcome=bindparam("outcome"),
        http_status=bindparam("http_status"),
        mailup_code=bindparam("mailup_code"),
        error=bindparam("error"),
        finished_at=bindparam("finished_at"),
        duration_ms=bindparam("duration_ms"),
    )
)


def closing(
    claim: Claim,
    *,
    opened: bool,
    worker: str,
    outcome: AttemptOutcome,
    started_at: datetime,
    http_status: int | None = None,
    code: str | None = None,
    error: str | None = None,
) -> Statement:
    """Complete this run's attempt row: the one ``opening`` wrote, or a new one when no call
    was opened (``opened`` False)."""
    now = utcnow()
    values = {
        "outcome": outcome,
        "http_status": http_status,
        "mailup_code": code,
        "error": error,
        "finished_at": now,
        "duration_ms": int((now - started_at).total_seconds() * 1000),
    }
    if opened:
        return _CLOSE_ATTEMPT, {**values, "p_job_id": claim.job_id, "p_number": claim.number}
    row = {"job_id": claim.job_id, "number": claim.number, "worker": worker}
    return _OPEN_ATTEMPT, {**row, "started_at": started_at, **values}


@functools.cache
def _settle_statement(status: JobStatus, with_outcome: bool, publish: bool) -> Update:
    values: dict[str, Any] = {
        "status": status,
        "worker": None,
        "lease_expires_at": None,
        "last_error_code": bindparam("p_error_code"),
        "last_error": bindparam("p_error"),
        "updated_at": bindparam("p_now"),
    }
    if with_outcome:
        values["outcome"] = bindparam("p_outcome", type_=JSON)
    if status == JobStatus.RETRYING:
        values["run_after"] = bindparam("p_run_after")
        # None hands publishing to the sweeper (a delay too long for a broker countdown).
        values["published_at"] = bindparam("p_now") if publish else None
        # The retry's message is a new first copy: the sweeper's doubling of its patience
        # counts only its own re-publications of a message lost since.
        values["publish_count"] = 1 if publish else 0
    elif status != JobStatus.IN_DOUBT:
        values["finished_at"] = bindparam("p_now")
    return (
        update(Job)
        .where(
            Job.id == bindparam("p_id"),
            Job.attempts == bindparam("p_number"),
            # Not IN (…): an expanding parameter cannot be run as an executemany, and
            # outcomes of many runs are written as one (group commit).
            or_(
                and_(Job.status == JobStatus.RUNNING, Job.worker == bindparam("p_worker")),
                Job.status == JobStatus.IN_DOUBT,
            ),
        )
        .values(**values)
    )


def settling(
    claim: Claim,
    *,
    status: JobStatus,
    outcome: dict[str, Any] | None = None,
    error_code: str | None = None,
    error: str | None = None,
    run_after: datetime | None = None,
    publish: bool = True,
) -> Statement:
    """Move this run's job to its next status; a job no longer this run's is left alone.

    A job the sweeper marked in_doubt (lease expired mid-call) still takes this run's
    answer: the real outcome is better than doubt.
    """
    now = utcnow()
    params = {
        "p_id": claim.job_id,
        "p_number": claim.number,
        "p_worker": claim.worker,
        "p_error_code": error_code,
        "p_error": error,
        "p_now": now,
        "p_outcome": outcome,
        "p_run_after": run_after or now,
    }
    return _settle_statement(status, outcome is not None, publish), params


# From this many rows an insert goes to PostgreSQL by COPY: twice as fast as an executemany
# (bench.enqueue), which the hundred thousand rows of a bulk submission feel.
COPY_FROM = 1000


def execute_merged(db: Executor, statements: Iterable[Statement]) -> None:
    """Rows of the same statement object (built once) and the same parameter names in one
    executemany (or COPY), in the order the statements were first met."""
    merged: dict[tuple[int, tuple[str, ...]], tuple[Executable, list[dict[str, Any]]]] = {}
    for statement, params in statements:
        key = (id(statement), tuple(sorted(params)))
        merged.setdefault(key, (statement, []))[1].append(params)
    for statement, rows in merged.values():
        if len(rows) >= COPY_FROM:
            connection = db.connection() if isinstance(db, Session) else db
            if _copyable(statement, connection, rows[0]):
                _copy(connection, statement.table, rows)
                continue
        db.execute(statement, rows)


def _copyable(
    statement: Executable, connection: Connection, row: dict[str, Any]
) -> TypeGuard[Insert]:
    """A plain insert on PostgreSQL whose rows give every column a Python default would fill
    (COPY fills only the server's)."""
    if type(statement) is not Insert or connection.dialect.name != "postgresql":
        return False
    columns = statement.table.columns
    return all(column.name in row for column in columns if column.default is not None)


def _copy(connection: Connection, table: TableClause, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    dialect = connection.dialect
    types = [(name, table.c[name].type.dialect_impl(dialect)) for name in names]
    processors = [(name, type_.bind_processor(dialect)) for name, type_ in types]
    quote = dialect.identifier_preparer.quote
    sql = (
        f"COPY {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) FROM STDIN"
    )
    cursor = cast("psycopg.Cursor[Any]", connection.connection.dbapi_connection.cursor())  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([row[n] if p is None else p(row[n]) for n, p in processors])
    except dialect.loaded_dbapi.IntegrityError as exc:  # as SQLAlchemy would raise it
        raise IntegrityError(sql, None, exc) from exc


# --- the sweeper's side -------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A running job whose worker's claim ran out."""

    job_id: str
    number: int
    kind: str
    account: str


def beat(db: Connection, worker: str) -> None:
    """A sign of life of the worker process ``worker``."""
    upsert(db, WorkerBeat, worker=worker, beat_at=utcnow())


def forget_worker(db: Executor, worker: str) -> None:
    """The worker stopped in good order: nothing of it is left to take over."""
    db.execute(delete(WorkerBeat).where(WorkerBeat.worker == worker))


def _lost(now: datetime, gone_after: float) -> ColumnElement[bool]:
    """A running job whose claim is over: its lease ran out, or its worker stopped beating
    (a worker that never beats, of an earlier release, has only its lease)."""
    silent = select(WorkerBeat.worker).where(
        WorkerBeat.beat_at < now - timedelta(seconds=gone_after)
    )
    return and_(
        Job.status == JobStatus.RUNNING,
        or_(Job.lease_expires_at < now, Job.worker.in_(silent)),
    )


def expired_leases(db: Executor, *, gone_after: float, limit: int = 500) -> list[Lease]:
    """Running jobs whose claim is over (see ``_lost``)."""
    rows = db.execute(
        select(Job.id, Job.attempts, Job.kind, Job.account)
        .where(_lost(utcnow(), gone_after))
        .limit(limit)
    )
    return [Lease(row.id, row.attempts, row.kind, row.account) for row in rows]


def forget_silent_workers(db: Executor, *, older_than: float) -> None:
    """Beats of workers long gone, whose jobs were taken over."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    silent = select(WorkerBeat.worker).where(WorkerBeat.beat_at < cutoff)
    holding = select(Job.worker).where(Job.status == JobStatus.RUNNING, Job.worker.in_(silent))
    db.execute(
        delete(WorkerBeat).where(WorkerBeat.beat_at < cutoff, WorkerBeat.worker.not_in(holding))
    )


def recover(
    db: Executor,
    job_id: str,
    number: int,
    *,
    gone_after: float,
    requeue_if_called: bool = False,
) -> JobStatus | None:
    """Resolve a dead worker's job (its claim over, see ``_lost``): in_doubt if its MailUp
    call was opened, else queued.

    ``requeue_if_called`` (an at-least-once kind) queues it again even after a call. Should
    the worker live after all, its own claim check stops it: its attempt number is the next
    run's too, and the attempt row of a number is written once.
    """
    now = utcnow()
    # Locked first: a worker opening its call now either wrote "calling" (seen below) or
    # waits, then finds the claim gone (see open_calls).
    lost = select(Job.id).where(Job.id == job_id, Job.attempts == number, _lost(now, gone_after))
    if db.execute(lost.with_for_update()).first() is None:
        return None
    called = db.execute(
        update(Attempt)
        .where(
            Attempt.job_id == job_id,
            Attempt.number == number,
            Attempt.outcome == AttemptOutcome.CALLING,
        )
        .values(
            outcome=AttemptOutcome.ABANDONED,
            finished_at=now,
            error="the worker stopped during the MailUp call; its outcome is unknown",
        )
    ).rowcount  # type: ignore[attr-defined]
    values: dict[str, Any]
    if called and not requeue_if_called:
        status = JobStatus.IN_DOUBT
        values = {
            "last_error_code": "worker_lost",
            "last_error": "the worker stopped during the MailUp call; check before resending",
        }
    else:
        status = JobStatus.QUEUED
        # A run that never called gives its attempt number back; one that did keeps it (its
        # attempt row stays, marked abandoned).
        attempts = Job.attempts if called else Job.attempts - 1
        values = {"attempts": attempts, "run_after": now, "published_at": None}
    moved = db.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == number, _lost(now, gone_after))
        .values(status=status, worker=None, lease_expires_at=None, updated_at=now, **values)
    ).rowcount  # type: ignore[attr-defined]
    return status if moved else None


def due_for_publishing(
    db: Executor, *, republish_after: float, limit: int = 500
) -> list[tuple[str, int]]:
    """Claimable, due jobs whose message the broker has plausibly lost: (id, priority).

    A job counts as lost when it was never published, or when its last message is older
    than ``republish_after`` doubled for each earlier re-publication — so a long backlog
    that merely waits its turn is not flooded with copies.
    """
    now = utcnow()
    horizon = now - timedelta(seconds=republish_after)
    rows = db.execute(
        select(Job.id, Job.priority, Job.run_after, Job.published_at, Job.publish_count)
        .where(
            Job.status.in_(CLAIMABLE),
            Job.run_after <= now,
            or_(Job.published_at.is_(None), Job.published_at <= horizon),
        )
        .order_by(Job.priority, Job.run_after)
        .limit(limit)
    )
    lost = []
    for row in rows:
        if row.published_at is not None:
            grace = republish_after * 2 ** min(max(row.publish_count - 1, 0), 6)
            # Measure from the later of publication and due time: a countdown message
            # is only late once its due time has passed.
            if max(row.published_at, row.run_after) > now - timedelta(seconds=grace):
                continue
        lost.append((row.id, row.priority))
    return lost


def forget_publications(db: Executor) -> int:
    """The broker lost its messages: every claimable job is due for publishing again."""
    result = db.execute(
        update(Job)
        .where(Job.status.in_(CLAIMABLE), Job.published_at.is_not(None))
        .values(published_at=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def mark_published(db: Executor, job_ids: list[str]) -> None:
    db.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status.in_(CLAIMABLE))
        .values(published_at=utcnow(), publish_count=Job.publish_count + 1)
    )


def counts_by_status(db: Executor) -> dict[str, int]:
    rows = db.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: count for status, count in rows}


# --- operators' actions -------------------------------------------------------------------


def move(
    db: Executor, job_id: str, sources: tuple[JobStatus, ...], target: JobStatus
) -> int | None:
    """An operator's move of a job (requeue, cancel): its priority, or None if not moved."""
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if target == JobStatus.QUEUED:
        values.update(run_after=now, published_at=now, finished_at=None)
    else:
        values["finished_at"] = now
    moved = db.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(sources))
        .values(**values)
        .returning(Job.priority)
    ).first()
    return None if moved is None else int(moved.priority)


# --- facts about the installation ----------------------------------------------------------


def get_meta(db: Executor, key: str) -> str | None:
    return db.scalar(select(LedgerMeta.value).where(LedgerMeta.key == key))


def set_meta(db: Connection, key: str, value: str) -> None:
    upsert(db, LedgerMeta, key=key, value=value)
