"""Each worker process's sign of life, in the ledger: a row it touches every ``EVERY``
seconds from its start (``worker.app`` starts it). Beat's sweeper hands the claims of a
worker silent for ``GONE_AFTER`` seconds to others (see ``store.expired_leases``), without
waiting for their leases.

The ledger rather than the broker: a flushed Redis must not make every worker look dead.
A worker that stops in good order removes its row; one that dies leaves it, and the sweeper
forgets it once its jobs are taken over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from worker.ledger import store
from worker.ledger.db import connection

log = logging.getLogger(__name__)

EVERY = 2.0
# Three beats missed: a long GC or a loaded host is not taken for a death.
GONE_AFTER = 6.0

# (process id, worker, ledger URL) → what stops its beats.
_started: dict[tuple[int, str, str], threading.Event] = {}
_lock = threading.Lock()


def worker_name() -> str:
    """This process, as its claims (``Job.worker``) and its heartbeat name it."""
    return f"{socket.gethostname()}/{os.getpid()}"


def ensure_beating(ledger_url: str, worker: str) -> None:
    """Beat for ``worker`` from now on, in this process (its first beat is written before
    this returns, the ledger permitting: the worker takes no job before)."""
    key = (os.getpid(), worker, ledger_url)
    if key in _started:
        return
    with _lock:
        if key in _started:
            return
        try:
            _beat(ledger_url, worker)
        except SQLAlchemyError as exc:  # the ledger is away: the beats to come will tell
            log.warning("worker %s: heartbeat not written (%s)", worker, type(exc).__name__)
        stop = threading.Event()
        threading.Thread(
            target=_beating, args=(ledger_url, worker, stop), name="heartbeat", daemon=True
        ).start()
        _started[key] = stop


def stop_beating(ledger_url: str) -> None:
    """This process stops in good order: its rows go (nothing of it to take over)."""
    for key in [key for key in _started if key[0] == os.getpid() and key[2] == ledger_url]:
        _started.pop(key).set()
        _forget(ledger_url, key[1])


def _forget(ledger_url: str, worker: str) -> None:
    try:
        with connection(ledger_url) as db:
            store.forget_worker(db, worker)
    except SQLAlchemyError as exc:  # its jobs are finished; the sweeper forgets it later
        log.warning("worker %s: could not remove its heartbeat (%s)", worker, type(exc).__name__)


def _beating(ledger_url: str, worker: str, stop: threading.Event) -> None:
    next_beat = time.monotonic() + EVERY
    while not stop.wait(max(0.0, next_beat - time.monotonic())):
        next_beat += EVERY
        try:
            _beat(ledger_url, worker)
        except SQLAlchemyError as exc:  # the ledger is away: so are this worker's writes
            log.warning("worker %s: heartbeat not written (%s)", worker, type(exc).__name__)


def _beat(ledger_url: str, worker: str) -> None:
    with connection(ledger_url) as db:
        store.beat(db, worker)
