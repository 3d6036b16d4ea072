"""A send-rate cap per MailUp account and channel, shared by every worker on every host.

The algorithm is GCRA with no burst: each key keeps one number, the theoretical arrival
time (TAT) of the next allowed send; a send is allowed when TAT has passed, and moves TAT
one interval (3600 / per_hour seconds) ahead. With Redis the check-and-move is one Lua
script using Redis's clock; without Redis it is one conditional UPDATE in the ledger.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from worker.ledger.db import connection
from worker.ledger.models import RateLimit
from worker.settings import Settings

_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > now then
  return tostring(tat - now)
end
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
"""


class RateLimiter(Protocol):
    def try_acquire(self, key: str, per_hour: int) -> float:
        """Take one send from ``key``'s allowance: 0.0 if taken, else seconds to wait."""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "mailup-jobs:rate:") -> None:
        self._script = client.register_script(_GCRA)
        self._prefix = prefix

    def try_acquire(self, key: str, per_hour: int) -> float:
        return float(self._script(keys=[self._prefix + key], args=[3600.0 / per_hour]))


class SqlRateLimiter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url

    def try_acquire(self, key: str, per_hour: int) -> float:
        interval = 3600.0 / per_hour
        now = time.time()
        with connection(self._url) as session:
            granted = session.execute(
                update(RateLimit)
                .where(RateLimit.key == key, RateLimit.tat <= now)
                .values(tat=now + interval)
            ).rowcount
            if granted:
                return 0.0
            tat = session.scalar(select(RateLimit.tat).where(RateLimit.key == key))
            if tat is not None:
                return max(tat - now, 0.001)
        try:
            with connection(self._url) as session:
                session.execute(insert(RateLimit).values(key=key, tat=now + interval))
        except IntegrityError:
            return self.try_acquire(key, per_hour)  # another worker made the row first
        return 0.0


def limiter_for(settings: Settings) -> RateLimiter:
    """Redis when the broker is Redis (shared by every host), else the ledger."""
    if settings.broker_is_redis:
        return RedisRateLimiter(redis.Redis.from_url(settings.broker_url))
    return SqlRateLimiter(settings.ledger_url)
