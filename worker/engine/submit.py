"""Accepting a job: write it (and the rows its kind stages beside it) to the ledger, then
publish its id once that write is committed. Once committed the job exists, whatever the
broker does.

On its own, a submission commits in a ledger transaction of its own. In a unit of work (the
caller's transaction: ``joining(unit)``, or the one ``set_ambient`` finds) it joins that
transaction instead: the job is written in the caller's session and published once the
caller commits; rolled back, there is no job and nothing is published. When the caller's
database is not the ledger's, the whole submission waits for the caller's commit.

A job committed that the broker did not take is counted in the ledger
(``mailup_jobs_publish_failures_total``), and the sweeper publishes it. Its producer is told
(``submit`` says it was not published); published from the caller's commit, where nobody
hears the answer, it is logged instead (a warning naming the job).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from worker.engine.kind import JobKind, Payload, Publish
from worker.ledger import store
from worker.ledger.db import connection, ensure_transaction, session_factory, transaction
from worker.ledger.models import Job
from worker.settings import Settings

log = logging.getLogger(__name__)

# Runs a function once the caller's transaction commits; drops it if that rolls back.
OnCommit = Callable[[Callable[[], object]], None]


@dataclass(frozen=True)
class UnitOfWork:
    """The caller's transaction, which submissions join instead of committing their own.

    Attributes:
        on_commit: runs a function once that transaction commits, drops it if it rolls back.
        session: opens the caller's session on the ledger's database, where jobs are written;
            None when the caller's database is another one: then the whole submission waits
            for the commit, and its producer gets an id chosen beforehand.
        waiting: the functions given to ``on_commit`` that still wait for the commit (those
            of a rolled-back savepoint are gone): a key asked for twice before the commit
            finds the first job there.
    """

    on_commit: OnCommit
    session: Callable[[], AbstractContextManager[Session]] | None = None
    waiting: Callable[[], Iterable[object]] = tuple


_joined: ContextVar[UnitOfWork | None] = ContextVar("mailup_jobs_unit_of_work", default=None)
_ambient: Callable[[], UnitOfWork | None] | None = None


@contextmanager
def joining(unit: UnitOfWork | None) -> Iterator[None]:
    """Submissions made inside join ``unit`` (None: as outside)."""
    token = _joined.set(unit)
    try:
        yield
    finally:
        _joined.reset(token)


def set_ambient(find: Callable[[], UnitOfWork | None] | None) -> None:
    """Ask ``find`` for the caller's transaction whenever no unit was joined explicitly (the
    Django app finds Django's atomic block)."""
    global _ambient
    _ambient = find


def current_unit() -> UnitOfWork | None:
    unit = _joined.get()
    if unit is None and _ambient is not None:
        unit = _ambient()
    return unit


@dataclass(frozen=True)
class Item:
    """One job to accept."""

    kind: JobKind
    payload: Payload
    account: str
    priority: int
    idempotency_key: str | None = None
    # Goes to the kind's ``stage`` (e.g. attachment bytes).
    extras: Any = None


# Publishes committed jobs, (job id, its item) each: the ids the broker did not take.
HandOver = Callable[[list[tuple[str, Item]]], list[str]]
# Publishes a batch of job ids of one priority in one message: taken or not.
PublishBatch = Callable[[list[str], int], bool]
# Jobs of one bulk submission per broker message (a worker thread runs them one after
# another; with 64 threads on such batches one of them is free every batch / 64).
BATCH_SIZE = 50


def submit(
    settings: Settings,
    kind: JobKind,
    payload: Payload,
    *,
    account: str,
    priority: int,
    idempotency_key: str | None,
    publish: Publish,
    extras: Any = None,
) -> tuple[str, bool]:
    """The new job's id (or the id of the job already accepted under ``idempotency_key``),
    and whether its message is with the broker (if not, the sweeper publishes it). In a unit
    of work the message goes after the caller's commit, and this says True.

    Raises ``store.IdempotencyConflict`` when that key was used for other parameters.
    """

    def one_by_one(jobs: list[tuple[str, Item]]) -> list[str]:
        return [job_id for job_id, item in jobs if not publish(job_id, item.priority, None)]

    item = Item(kind, payload, account, priority, idempotency_key, extras)
    [answer] = _Submission(settings, [item], one_by_one).run()
    return answer


def submit_many(
    settings: Settings, items: Sequence[Item], *, publish_batch: PublishBatch
) -> list[tuple[str, bool]]:
    """``submit`` for many jobs at once: all written in one transaction (a few statements)
    or none, then published ``BATCH_SIZE`` ids a message. Answers in the items' order.

    Each message holds jobs of one priority and one account, the accounts' messages taking
    turns: a thread running a batch of several accounts would wait for each one's send rate
    in turn, and threads all on one account would leave the others' rates unused."""

    def in_batches(jobs: list[tuple[str, Item]]) -> list[str]:
        by_account: dict[int, dict[str, list[str]]] = {}
        for job_id, item in jobs:
            by_account.setdefault(item.priority, {}).setdefault(item.account, []).append(job_id)
        refused: list[str] = []
        for priority in sorted(by_account):
            chunked = [_chunks(ids) for ids in by_account[priority].values()]
            for batch in _taking_turns(chunked):
                if not publish_batch(batch, priority):
                    refused += batch
        return refused

    return _Submission(settings, list(items), in_batches).run()


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + BATCH_SIZE] for start in range(0, len(ids), BATCH_SIZE)]


def _taking_turns(queues: list[list[list[str]]]) -> Iterator[list[str]]:
    """The first batch of each queue, then the second of each, and so on."""
    for round_ in itertools.zip_longest(*queues):
        yield from (batch for batch in round_ if batch is not None)


def _once_more_on_conflict(write: Callable[[], list[tuple[str, bool]]]) -> list[tuple[str, bool]]:
    """``write`` (in a transaction or savepoint of its own), and once more when another
    producer took one of its idempotency keys meanwhile: now that job is found."""
    try:
        return write()
    except IntegrityError:
        return write()


@dataclass(frozen=True)
class _Submission:
    settings: Settings
    items: list[Item]
    hand_over: HandOver

    def run(self) -> list[tuple[str, bool]]:
        unit = current_unit()
        if unit is None:
            return self.commit()
        if unit.session is None:
            return self.defer(unit)
        return self.join(unit.session, unit.on_commit)

    def commit(self, job_ids: Sequence[str | None] | None = None) -> list[tuple[str, bool]]:
        """In a ledger transaction of its own (Core: cheaper than a session), then published.
        No savepoint: a failure rolls the whole transaction back (two round trips fewer)."""
        jobs = self.new_jobs(job_ids)

        def in_a_transaction() -> list[tuple[str, bool]]:
            with connection(self.settings.ledger_url) as db:
                return self.write(db, jobs)

        written = _once_more_on_conflict(in_a_transaction)
        refused = set(self.publish(written))
        return [(job_id, job_id not in refused) for job_id, _ in written]

    def join(
        self, open_session: Callable[[], AbstractContextManager[Session]], on_commit: OnCommit
    ) -> list[tuple[str, bool]]:
        """Written in the caller's session, published once the caller commits."""
        with open_session() as session:
            ensure_transaction(session.connection(bind_arguments={"mapper": Job}))
            written = self.write_in_savepoint(session)
        if any(created for _, created in written):
            on_commit(lambda: _warn_unpublished(self.publish(written)))
        return [(job_id, True) for job_id, _ in written]

    def defer(self, unit: UnitOfWork) -> list[tuple[str, bool]]:
        """Written and published once the caller (on another database) commits."""
        # Tried now and rolled back, after the jobs of this transaction that wait for the
        # commit: that checks the idempotency keys and gives the jobs their ids. They are
        # written for good after the caller's commit.
        earlier = [
            job
            for waiting in unit.waiting()
            if isinstance(waiting, _Deferred)
            for job in waiting.keyed()
        ]
        with session_factory(self.settings.ledger_url)() as session:
            store.insert_jobs(session, earlier)
            written = self.write_in_savepoint(session)
            session.rollback()
        if any(created for _, created in written):
            chosen = [job_id if created else None for job_id, created in written]
            unit.on_commit(_Deferred(self, chosen))
        return [(job_id, True) for job_id, _ in written]

    def new_jobs(self, job_ids: Sequence[str | None] | None = None) -> list[store.NewJob]:
        ids = job_ids or [None] * len(self.items)
        return [
            store.NewJob(
                item.kind.name,
                item.account,
                item.payload.model_dump(mode="json"),
                item.priority,
                item.idempotency_key,
                job_id,
            )
            for item, job_id in zip(self.items, ids, strict=True)
        ]

    def write_in_savepoint(self, session: Session) -> list[tuple[str, bool]]:
        """``write`` in the caller's transaction: a failure leaves nothing half-written."""
        jobs = self.new_jobs()

        def in_a_savepoint() -> list[tuple[str, bool]]:
            with session.begin_nested():
                return self.write(session, jobs)

        return _once_more_on_conflict(in_a_savepoint)

    def write(self, db: store.Executor, jobs: list[store.NewJob]) -> list[tuple[str, bool]]:
        """The jobs and the rows their kinds keep beside them."""
        written = store.insert_jobs(db, jobs)
        staged = [
            statement
            for item, (job_id, created) in zip(self.items, written, strict=True)
            if created and item.kind.stage is not None
            for statement in item.kind.stage(job_id, item.payload, item.extras)
        ]
        store.execute_merged(db, staged)
        return written

    def publish(self, written: list[tuple[str, bool]]) -> list[str]:
        """Publish the committed new jobs; what the broker refuses is left to the sweeper."""
        new = [
            (job_id, item)
            for item, (job_id, created) in zip(self.items, written, strict=True)
            if created
        ]
        refused = self.hand_over(new) if new else []
        if refused:
            with transaction(self.settings.ledger_url) as session:
                store.mark_unpublished(session, refused)
        return refused


# Job ids a warning names at most (a bulk submission refused may hold 100,000).
_NAMED = 10


def _warn_unpublished(job_ids: list[str]) -> None:
    if job_ids:
        named = ", ".join(job_ids[:_NAMED])
        more = f" and {len(job_ids) - _NAMED} more" if len(job_ids) > _NAMED else ""
        log.warning("broker down: job(s) %s%s not published; the sweeper will", named, more)


@dataclass(frozen=True)
class _Deferred:
    """A submission waiting for the caller's commit on another database: called then, it
    commits the jobs under the ids their producers were given, and publishes them."""

    submission: _Submission
    chosen: list[str | None]  # None: not new (its key's job already existed)

    def __call__(self) -> None:
        committed = self.submission.commit(self.chosen)
        _warn_unpublished([job_id for job_id, published in committed if not published])
        for wanted, (written, _) in zip(self.chosen, committed, strict=True):
            if wanted is not None and written != wanted:
                log.warning(
                    "job %s was not written: job %s took its idempotency key meanwhile",
                    wanted,
                    written,
                )

    def keyed(self) -> list[store.NewJob]:
        """Its new jobs that hold an idempotency key."""
        return [
            job
            for job, wanted in zip(self.submission.new_jobs(self.chosen), self.chosen, strict=True)
            if wanted is not None and job.idempotency_key is not None
        ]


# --- an application's SQLAlchemy session as a unit of work --------------------------------

_PENDING = "mailup_jobs.after_commit"


def session_unit(session: Session, *, holds_ledger: bool) -> UnitOfWork:
    """A unit of work on ``session``, an application's session: its jobs are published once
    its outermost transaction commits; those of a savepoint rolled back, or of a transaction
    that ends without a commit, never are. When its database holds the ledger (see
    ``same_ledger``) the jobs are written in it; otherwise they are written after the commit.
    """
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        event.listen(session, "after_commit", _publish_pending)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
        event.listen(session, "after_transaction_end", _drop_uncommitted)

    def on_commit(publish: Callable[[], object]) -> None:
        # Begun if need be, so that closing the session without a commit ends it (and so
        # drops what waits for it).
        where = session.get_nested_transaction() or session.get_transaction() or session.begin()
        session.info[_PENDING].append((where, publish))

    def waiting() -> list[object]:
        return [publish for _, publish in session.info[_PENDING]]

    opened = (lambda: nullcontext(session)) if holds_ledger else None
    return UnitOfWork(on_commit, opened, waiting)


def _publish_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its jobs wait for the outermost commit
    pending, session.info[_PENDING] = session.info[_PENDING], []
    for _, publish in pending:
        publish()


def _drop_rolled_back(session: Session, rolled_back: SessionTransaction) -> None:
    session.info[_PENDING] = [
        (where, publish)
        for where, publish in session.info[_PENDING]
        if not _within(where, rolled_back)
    ]


def _drop_uncommitted(session: Session, ended: SessionTransaction) -> None:
    if ended.parent is None:  # committed ones were published by then: the rest never will be
        session.info[_PENDING] = []


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def same_ledger(bind: Engine, ledger_url: str) -> bool:
    """Whether ``bind``, an application's database, holds the ledger at ``ledger_url`` (the
    same file, or the same server, database and tables), so its transactions can hold jobs."""
    # A plain engine of its own: the ledger's takes SQLite's write lock at once, and the
    # application may hold it already.
    ledger = create_engine(ledger_url, poolclass=NullPool)
    try:
        with bind.connect() as theirs, ledger.connect() as ours:
            found = _ledger_identity(theirs)
            return found is not None and found == _ledger_identity(ours)
    finally:
        ledger.dispose()


def _ledger_identity(db: Connection) -> tuple[object, ...] | None:
    if db.dialect.name == "sqlite":
        rows = db.exec_driver_sql("PRAGMA database_list")
        path = next(str(row.file) for row in rows if row.name == "main")
        return (os.path.realpath(path),) if path else None  # in memory: nobody else's
    if db.dialect.name == "postgresql":
        row = db.execute(
            text("SELECT pg_postmaster_start_time(), current_database(), to_regclass(:t)::oid"),
            {"t": Job.__tablename__},
        ).one()
        return tuple(row) if row[2] is not None else None
    return None
