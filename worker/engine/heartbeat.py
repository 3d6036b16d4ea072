"""Each worker process's sign of life, in the ledger: a row it touches every ``EVERY``
seconds while it runs. Beat's sweeper hands the claims of a worker silent for ``GONE_AFTER``
seconds to others (see ``store.expired_leases``), without waiting for their leases.

The ledger rather than the broker: a flushed Redis must not make every worker look dead.
A worker that stops in good order removes its row; one that dies leaves it, and the sweeper
forgets it once its jobs are taken over.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from worker.ledger import store
from worker.ledger.db import connection

log = logging.getLogger(__name__)

EVERY = 2.0
# Three beats missed: a long GC or a loaded host is not taken for a death.
GONE_AFTER = 6.0

_started: dict[tuple[int, str], threading.Event] = {}
_lock = threading.Lock()


def ensure_beating(ledger_url: str, worker: str) -> None:
    """Beat for ``worker`` from now on, in this process (its first beat is written before
    this returns, so no claim of it is ever without one)."""
    key = (os.getpid(), worker)
    if key in _started:
        return
    with _lock:
        if key in _started:
            return
        _beat(ledger_url, worker)
        stop = threading.Event()
        threading.Thread(
            target=_beating, args=(ledger_url, worker, stop), name="heartbeat", daemon=True
        ).start()
        _started[key] = stop


def stop_beating(ledger_url: str) -> None:
    """This process stops in good order: its rows go (nothing of it to take over)."""
    for key in [key for key in _started if key[0] == os.getpid()]:
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
