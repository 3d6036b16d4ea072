"""Rates shared by every worker on every host, per MailUp account: the purchased speed of a
channel (messages per hour) and MailUp's own API limits (calls per second).

The algorithm is GCRA with no burst: each key keeps one number, the theoretical arrival
time (TAT) of the next allowed call, one interval after the last. Two ways to use it:

- ``try_acquire``: take the slot if it is free now, else say how long to wait (a job that
  would wait long goes back to the queue rather than hold a worker);
- ``reserve``: take the next free slot, however near, and say when it comes (a MailUp call
  about to leave waits for its turn: the waits are short, a few calls long).

With Redis each check-and-move is one Lua script on Redis's clock; without Redis it is one
conditional UPDATE in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis
from redis.commands.core import Script
from sqlalchemy import case, insert, select, update
from sqlalchemy.exc import IntegrityError

from worker.ledger.db import connection
from worker.ledger.models import RateLimit
from worker.settings import Settings

_NOW = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
"""
_TRY_ACQUIRE = (
    _NOW
    + """
if tat > now then
  return tostring(tat - now)
end
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
"""
)
_WAIT = (
    _NOW
    + """
return tostring(math.max(tat - now, 0))
"""
)
_RESERVE = (
    _NOW
    + """
if tat < now then
  tat = now
end
redis.call('SET', KEYS[1], tostring(tat + interval),
           'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return tostring(tat - now)
"""
)


class LimiterUnavailable(Exception):
    """The shared limiter could not be asked (its Redis is down or restarting): the call it
    was asked for has not left."""


class RateLimiter(Protocol):
    def try_acquire(self, key: str, interval: float) -> float:
        """Take ``key``'s slot if free now: 0.0 if taken, else seconds until it frees."""

    def reserve(self, key: str, interval: float) -> float:
        """Take ``key``'s next slot: seconds until it comes (0.0: now)."""

    def wait(self, key: str) -> float:
        """Seconds until ``key``'s next free slot (0.0: free now), taking nothing."""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "mailup-jobs:rate:") -> None:
        self._try_acquire = client.register_script(_TRY_ACQUIRE)
        self._reserve = client.register_script(_RESERVE)
        self._wait = client.register_script(_WAIT)
        self._prefix = prefix

    def try_acquire(self, key: str, interval: float) -> float:
        return self._ask(self._try_acquire, key, interval)

    def reserve(self, key: str, interval: float) -> float:
        return self._ask(self._reserve, key, interval)

    def wait(self, key: str) -> float:
        return self._ask(self._wait, key, 0)

    def _ask(self, script: Script, key: str, interval: float) -> float:
        try:
            return float(script(keys=[self._prefix + key], args=[interval]))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise LimiterUnavailable(
                f"the rate limiter's Redis is unreachable ({type(exc).__name__})"
            ) from None


class SqlRateLimiter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url

    def try_acquire(self, key: str, interval: float) -> float:
        now = time.time()
        with connection(self._url) as db:
            granted = db.execute(
                update(RateLimit)
                .where(RateLimit.key == key, RateLimit.tat <= now)
                .values(tat=now + interval)
            ).rowcount
            if granted:
                return 0.0
            tat = db.scalar(select(RateLimit.tat).where(RateLimit.key == key))
            if tat is not None:
                return max(tat - now, 0.001)
        return 0.0 if self._create(key, now + interval) else self.try_acquire(key, interval)

    def reserve(self, key: str, interval: float) -> float:
        now = time.time()
        start = case((RateLimit.tat > now, RateLimit.tat), else_=now)
        with connection(self._url) as db:
            tat = db.scalar(
                update(RateLimit)
                .where(RateLimit.key == key)
                .values(tat=start + interval)
                .returning(RateLimit.tat)
            )
        if tat is not None:
            return max(float(tat) - interval - now, 0.0)
        return 0.0 if self._create(key, now + interval) else self.reserve(key, interval)

    def wait(self, key: str) -> float:
        with connection(self._url) as db:
            tat = db.scalar(select(RateLimit.tat).where(RateLimit.key == key))
        return max(float(tat) - time.time(), 0.0) if tat is not None else 0.0

    def _create(self, key: str, tat: float) -> bool:
        """The key's first slot; False when another worker made the row first."""
        try:
            with connection(self._url) as db:
                db.execute(insert(RateLimit).values(key=key, tat=tat))
        except IntegrityError:
            return False
        return True


# Calls are spaced a little wider than MailUp's limit (1 / 0.92 of its interval): a call
# that leaves a little late, or reaches MailUp a little late, still lands in its own second.
MARGIN = 0.92
# A call that wakes this much after its slot takes a new one rather than crowd the next.
LATE = 0.04


class Lead:
    """How long before its slot a call's ``ready`` starts: a little more than the slowest
    recent one, decaying back while they are quick. (Recording a call waits for a group
    commit, which takes 2 ms on an idle worker and 100 ms on a busy one; a ``ready`` that
    ends after the slot wastes it.) Shared by a process's threads: a racy update only
    nudges it."""

    SHORTEST, LONGEST = 0.02, 0.5

    def __init__(self) -> None:
        self.seconds = self.SHORTEST

    def run(self, ready: Callable[[], None]) -> None:
        began = time.monotonic()
        ready()
        self.took(time.monotonic() - began)

    def took(self, seconds: float) -> None:
        self.seconds = min(self.LONGEST, max(self.SHORTEST, self.seconds * 0.98, seconds * 1.5))


def pace(
    limiter: RateLimiter,
    key: str,
    per_second: float,
    ready: Callable[[], None] | None = None,
    lead: Lead | None = None,
) -> None:
    """Wait until this call may leave, at most ``per_second`` for ``key`` across every
    process. ``ready`` (what must be done before the call leaves: recording it) runs once,
    ``lead`` before the slot (or before taking one, when the next is nearer than that), so
    that its time does not make the call late; a worker killed while the call waits longer
    for its slot has recorded nothing. Gives up re-reserving after three late wake-ups (an
    overloaded machine): the call goes, and a 429 would be retried."""
    interval = 1.0 / (per_second * MARGIN)
    lead = lead or Lead()
    if ready is not None and limiter.wait(key) <= lead.seconds:
        lead.run(ready)  # the next slot is near: record first, then take it
        ready = None
    for _ in range(3):
        slot = time.monotonic() + limiter.reserve(key, interval)
        if ready is not None:
            _sleep_until(slot - lead.seconds)
            lead.run(ready)
            ready = None
        _sleep_until(slot)
        if time.monotonic() - slot <= LATE:
            return


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def limiter_for(settings: Settings) -> RateLimiter:
    """Redis when the broker is Redis (shared by every host), else the ledger."""
    if settings.broker_is_redis:
        return RedisRateLimiter(redis.Redis.from_url(settings.broker_url))
    return SqlRateLimiter(settings.ledger_url)
