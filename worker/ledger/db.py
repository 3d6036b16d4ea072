"""The ledger's engine and sessions: one engine per process (a forked worker makes its own)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[int, str], Engine] = {}
_sessionmakers: dict[Engine, sessionmaker[Session]] = {}
# Worker threads ask for the engine at once on their first job: one of them makes it.
_making = threading.Lock()
# A threaded worker's jobs hold a connection only for a statement or a short transaction,
# never across a MailUp call: a few connections serve dozens of threads, the overflow a
# burst. Every thread is served within pool_timeout (30 s) or its job retries.
POOL_SIZE = 8
MAX_OVERFLOW = 24


def engine_for(url: str) -> Engine:
    """The engine for ``url`` in this process."""
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        with _making:
            engine = _engines.get(key) or _engines.setdefault(key, _create(url))
    return engine


def _create(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions into our own hands (see _on_begin), and let readers run
        # beside the one writer.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that later writes fails at
        # once with "database is locked" when another process wrote meanwhile, instead of
        # waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(url: str) -> sessionmaker[Session]:
    engine = engine_for(url)
    if engine not in _sessionmakers:
        # Built once: each sessionmaker defines a Session subclass, costly to make per use.
        _sessionmakers.setdefault(engine, sessionmaker(engine, expire_on_commit=False))
    return _sessionmakers[engine]


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all."""
    with session_factory(url).begin() as session:
        yield session


def ensure_transaction(connection: Connection) -> None:
    """Make sure an application's connection is in a database transaction before a savepoint.

    Python's SQLite driver, left to its own transaction handling (as most applications leave
    it), begins one only at the first write: a savepoint opened before then begins one of its
    own, which its release commits, whatever the application does afterwards.
    """
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite" and not getattr(dbapi, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, as _on_begin


@contextmanager
def connection(url: str) -> Iterator[Connection]:
    """A Core connection in a transaction: the worker's hot path, cheaper than a Session."""
    with engine_for(url).begin() as conn:
        yield conn


@contextmanager
def single_statement(url: str) -> Iterator[Connection]:
    """A connection for one statement that is atomic by itself (a claim, an insert).

    On PostgreSQL it runs in autocommit, saving the BEGIN and COMMIT round trips; SQLite
    keeps its explicit transaction (see _on_begin).
    """
    engine = engine_for(url)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def dispose_all() -> None:
    """Drop this process's connections (after a fork, or when a test is done)."""
    for key in [k for k in _engines if k[0] == os.getpid()]:
        engine = _engines.pop(key)
        _sessionmakers.pop(engine, None)
        engine.dispose()
