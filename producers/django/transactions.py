"""Jobs asked for inside a Django atomic block: published on ``transaction.on_commit``.

When Django's ``default`` database holds the ledger, the job is written through Django's
own connection, inside its transaction, and published once Django commits: rolled back,
there is no job and nothing was published.

When the ledger is another database, the whole submission waits for Django's commit: the
producer gets the job's id at once (and a bad argument or a reused idempotency key is
refused at once), the job is committed to the ledger and published from ``on_commit``.
Rolled back, nothing is written and nothing published. The same idempotency key asked for
twice before the commit is the first job. If the ledger cannot be reached then, the error is
raised from the end of the atomic block, Django's commit done.

Outside an atomic block (autocommit), a job is committed at once, as without Django.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from sqlalchemy import DateTime, Engine, create_engine
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from worker.engine.submit import UnitOfWork, same_ledger
from worker.settings import get_settings

ALIAS = DEFAULT_DB_ALIAS
# Django's database backends whose connections SQLAlchemy can write through, and how.
_DIALECTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sqlite": ("sqlite+pysqlite://", {}),
    # hstore's type lookup would run on Django's connection at the first use: not needed.
    "postgresql": ("postgresql+psycopg://", {"use_native_hstore": False}),
}


def unit_of_work() -> UnitOfWork | None:
    """Django's atomic block, if one is open."""
    connection = transaction.get_connection(ALIAS)
    if not connection.in_atomic_block:
        return None
    on_commit = functools.partial(transaction.on_commit, using=ALIAS)
    engine = _engine()
    if engine is not None and _holds_ledger(engine, get_settings().ledger_url):
        return UnitOfWork(on_commit, lambda: Session(engine))

    def waiting() -> list[object]:
        # (savepoint ids, function, robust): what Django's captureOnCommitCallbacks reads.
        return [entry[1] for entry in connection.run_on_commit]

    return UnitOfWork(on_commit, waiting=waiting)


@functools.cache
def _holds_ledger(engine: Engine, ledger_url: str) -> bool:
    return same_ledger(engine, ledger_url)


@functools.cache
def _engine() -> Engine | None:
    """SQLAlchemy over Django's connection (None: a backend it cannot write through)."""
    if connections[ALIAS].vendor not in _DIALECTS:
        return None
    url, options = _DIALECTS[connections[ALIAS].vendor]
    engine = create_engine(url, creator=_lend, poolclass=NullPool, **options)
    if engine.dialect.name == "sqlite":
        engine.dialect.colspecs = {**engine.dialect.colspecs, DateTime: _ParsedDateTime}
    return engine


def _lend() -> _Lent:
    django_connection = connections[ALIAS]
    django_connection.ensure_connection()
    return _Lent(django_connection.connection)


class _Lent:
    """Django's DB-API connection, lent to SQLAlchemy: Django ends its transactions and
    closes it, and set it up (SQLAlchemy's own set-up of a new connection is left out: its
    SQL functions would replace Django's, its notice handlers pile up)."""

    def __init__(self, dbapi_connection: Any) -> None:
        self._dbapi_connection = dbapi_connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dbapi_connection, name)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        pass

    def add_notice_handler(self, *args: Any) -> None:
        pass


class _ParsedDateTime(sqlite.DATETIME):
    """Django's SQLite connections hand DATETIME columns over parsed already."""

    def result_processor(self, dialect: Any, coltype: object) -> None:
        return None
