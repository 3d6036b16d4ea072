"""Accepting a job: write it (and the rows its kind stages beside it) to the ledger, then
publish its id once that write is committed. Once committed the job exists, whatever the
broker does.

On its own, a submission commits in a ledger transaction of its own. In a unit of work (the
caller's transaction: ``joining(unit)``, or the one ``set_ambient`` finds) it joins that
transaction instead: the job is written in the caller's session and published once the
caller commits; rolled back, there is no job and nothing is published. When the caller's
database is not the ledger's, the whole submission waits for the caller's commit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from worker.engine.kind import JobKind, Payload, Publish
from worker.ledger import store
from worker.ledger.db import ensure_transaction, session_factory, transaction
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
    """

    on_commit: OnCommit
    session: Callable[[], AbstractContextManager[Session]] | None = None


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
    job = _Submission(settings, kind, payload, account, priority, idempotency_key, publish, extras)
    unit = current_unit()
    if unit is None:
        return job.commit()
    if unit.session is None:
        return job.defer(unit.on_commit)
    return job.join(unit.session, unit.on_commit)


@dataclass(frozen=True)
class _Submission:
    settings: Settings
    kind: JobKind
    payload: Payload
    account: str
    priority: int
    idempotency_key: str | None
    publish: Publish
    extras: Any

    def commit(self, job_id: str | None = None) -> tuple[str, bool]:
        """In a ledger transaction of its own, then published."""
        with transaction(self.settings.ledger_url) as session:
            job_id, created = self.write(session, job_id)
        return job_id, not created or self.hand_over(job_id)

    def join(
        self, open_session: Callable[[], AbstractContextManager[Session]], on_commit: OnCommit
    ) -> tuple[str, bool]:
        """Written in the caller's session, published once the caller commits."""
        with open_session() as session:
            ensure_transaction(session.connection(bind_arguments={"mapper": Job}))
            # A savepoint: a failure leaves nothing half-written in the caller's transaction.
            with session.begin_nested():
                job_id, created = self.write(session)
        if created:
            on_commit(lambda: self.hand_over(job_id))
        return job_id, True

    def defer(self, on_commit: OnCommit) -> tuple[str, bool]:
        """Written and published once the caller (on another database) commits."""
        # Tried now and rolled back: that checks the idempotency key and gives the job its
        # id. It is written for good after the caller's commit.
        with session_factory(self.settings.ledger_url)() as session:
            job, created = self.insert(session)
            job_id = job.id
            session.rollback()
        if created:
            on_commit(lambda: self._commit_as(job_id))
        return job_id, True

    def _commit_as(self, job_id: str) -> None:
        written, _ = self.commit(job_id)
        if written != job_id:
            log.warning(
                "job %s was not written: job %s took its idempotency key meanwhile",
                job_id,
                written,
            )

    def insert(self, session: Session, job_id: str | None = None) -> tuple[Job, bool]:
        job, created = store.insert_job(
            session,
            kind=self.kind.name,
            account=self.account,
            payload=self.payload.model_dump(mode="json"),
            priority=self.priority,
            idempotency_key=self.idempotency_key,
        )
        if created and job_id is not None:
            job.id = job_id  # the id its producer was given before the job could be written
            session.flush()
        return job, created

    def write(self, session: Session, job_id: str | None = None) -> tuple[str, bool]:
        """The job and the rows its kind keeps beside it."""
        job, created = self.insert(session, job_id)
        if created and self.kind.stage is not None:
            self.kind.stage(session, job.id, self.payload, self.extras)
        return job.id, created

    def hand_over(self, job_id: str) -> bool:
        """Publish a committed job; if the broker refuses it, leave it to the sweeper."""
        if self.publish(job_id, self.priority, None):
            return True
        with transaction(self.settings.ledger_url) as session:
            store.mark_unpublished(session, job_id)
        return False


# --- an application's SQLAlchemy session as a unit of work --------------------------------

_PENDING = "mailup_jobs.after_commit"


def session_unit(session: Session) -> UnitOfWork:
    """A unit of work on ``session``, an application's session on the ledger's database (see
    ``same_ledger``): jobs are written in it and published once its outermost transaction
    commits; those of a savepoint rolled back, or of a transaction that ends without a
    commit, are never published."""
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        event.listen(session, "after_commit", _publish_pending)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
        event.listen(session, "after_transaction_end", _drop_uncommitted)

    def on_commit(publish: Callable[[], object]) -> None:
        where = session.get_nested_transaction() or session.get_transaction()
        session.info[_PENDING].append((where, publish))

    return UnitOfWork(on_commit, lambda: nullcontext(session))


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
