"""Group commit: the claims and ledger writes of many worker threads made together.

A threaded worker's jobs each write a few small statements at the same moments ("calling",
then the outcome). Written one transaction each, they cost a round trip and a commit per
statement; here the threads waiting to write form a group: the first one in writes the
whole group in one transaction, rows of the same statement in one executemany, while the
others wait for it. Every caller returns only once its own writes are committed, so the
guarantees of a write of its own hold ("calling" is committed before the request leaves).

When the group's transaction fails, each caller's writes are tried again in a transaction
of their own, so one bad write fails only its caller. Claims are grouped the same way: one
UPDATE … WHERE id IN (…) RETURNING for every thread about to start a job; so are the
"calling" rows, each written only while its claim is still held.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Connection

from worker.ledger import store
from worker.ledger.db import connection, single_statement
from worker.ledger.store import Claim, Statement

log = logging.getLogger(__name__)

In = TypeVar("In")
T = TypeVar("T")
Out = TypeVar("Out")

# Run in the same transaction as a caller's statements (a kind's own rows, written by code).
Call = Callable[[Connection], object]


# Groups served at once: a group's round trips overlap the next group's forming, and a
# thread alone need not wait (measured: 1 lane leaves the ledger idle between groups).
LANES = 4


class Group(Generic[In, Out]):
    """Calls from many threads served together: a thread that finds a lane free runs
    ``serve`` on every call waiting (one answer, or the exception, per call); the others wait
    for a lane, or for a thread in one to serve them.

    Each caller sleeps on a condition of its own, woken only when its answer is in or when
    a lane it may take frees: one shared condition would wake all 64 threads of a worker at
    every group's end, to find most of them still waiting."""

    def __init__(
        self, serve: Callable[[list[In]], list[Out | BaseException]], *, lanes: int = LANES
    ) -> None:
        self._serve = serve
        self._lock = threading.Lock()
        self._waiting: list[_Call[In, Out]] = []
        self._lanes = lanes
        self._serving = 0

    def __call__(self, asked: In) -> Out:
        mine: _Call[In, Out] = _Call(asked, threading.Condition(self._lock))
        with self._lock:
            self._waiting.append(mine)
            # Wait while our call is in a group being served, or every lane is busy.
            while not mine.done and (mine.taken or self._serving >= self._lanes):
                mine.wake.wait()
            group: list[_Call[In, Out]] = []
            if not mine.done:
                self._serving += 1  # our turn: serve everyone waiting
                group, self._waiting = self._waiting, []
                for call in group:
                    call.taken = True
        if group:
            try:
                answers = self._serve([call.asked for call in group])
            except BaseException as exc:  # every caller of the group hears of it
                answers = [exc] * len(group)
            finally:
                with self._lock:
                    for call, answer in zip(group, answers, strict=True):
                        call.answer, call.done = answer, True
                        call.wake.notify()
                    self._serving -= 1
                    if self._waiting:  # the lane is free: the first waiting serves them all
                        self._waiting[0].wake.notify()
        if isinstance(mine.answer, BaseException):
            raise mine.answer
        return mine.answer  # type: ignore[return-value]


@dataclass(eq=False)
class _Call(Generic[In, Out]):
    asked: In
    wake: threading.Condition  # on the group's lock
    taken: bool = False  # in a group being served
    done: bool = False
    answer: Out | BaseException | None = None


# A caller's writes: its statements, and code run in the same transaction.
Writes = tuple[Sequence[Statement], Call | None]


class GroupCommit:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._group: Group[Writes, None] = Group(self._write)

    def commit(self, statements: Sequence[Statement], call: Call | None = None) -> None:
        """Commit ``statements`` (and ``call``) with whatever other threads are writing."""
        self._group((statements, call))

    def _write(self, group: list[Writes]) -> list[BaseException | None]:
        try:
            with connection(self._url) as db:
                _execute(db, group)
        except Exception as exc:
            if len(group) == 1:
                return [exc]
            log.debug("a group of %d writes failed; each is tried alone", len(group), exc_info=True)
            return [answer for writes in group for answer in self._write([writes])]
        return [None] * len(group)


def _execute(db: Connection, group: list[Writes]) -> None:
    # Each caller lists its own statements in the order it needs; all callers' come from the
    # same code paths, in the same order.
    store.execute_merged(db, (statement for statements, _ in group for statement in statements))
    for _, call in group:
        if call is not None:
            call(db)


def _claims(database_url: str, worker: str, lease_seconds: float) -> Group[str, Claim | None]:
    def serve(job_ids: list[str]) -> list[Claim | BaseException | None]:
        with single_statement(database_url) as db:
            claims = store.claim_many(db, job_ids, worker=worker, lease_seconds=lease_seconds)
        by_id = {claim.job_id: claim for claim in claims}
        # A job asked for twice at once (two messages of it) is claimed by the first only.
        return [by_id.pop(job_id, None) for job_id in job_ids]

    return Group(serve)


def _openings(database_url: str) -> Group[Claim, bool]:
    def serve(claims: list[Claim]) -> list[bool | BaseException]:
        with connection(database_url) as db:
            held = store.open_calls(db, claims)
        return [claim.job_id in held for claim in claims]

    return Group(serve)


_shared: dict[tuple[object, ...], object] = {}
_making = threading.Lock()


def _per_process(key: tuple[object, ...], make: Callable[[], T]) -> T:
    key = (os.getpid(), *key)  # a forked child makes its own
    if key not in _shared:
        with _making:
            _shared.setdefault(key, make())
    return _shared[key]  # type: ignore[return-value]


def writer_for(database_url: str) -> GroupCommit:
    """This process's group commit on ``database_url``."""
    return _per_process(("commit", database_url), lambda: GroupCommit(database_url))


def claim(database_url: str, job_id: str, *, worker: str, lease_seconds: float) -> Claim | None:
    """``store.claim``, with other threads' claims in one statement."""
    group = _per_process(
        ("claim", database_url, worker, lease_seconds),
        lambda: _claims(database_url, worker, lease_seconds),
    )
    return group(job_id)


def open_call(database_url: str, claim: Claim) -> bool:
    """``store.open_calls`` for this claim, with other threads' in one transaction: whether
    the claim was still held (and "calling" is committed)."""
    group = _per_process(("open", database_url), lambda: _openings(database_url))
    return group(claim)
