"""The shared send-rate cap, in Redis and in the ledger."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from worker.ratelimit import RateLimiter, RedisRateLimiter, SqlRateLimiter


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "redis":
        url = request.getfixturevalue("redis_broker")
        return RedisRateLimiter(redis.Redis.from_url(url))
    return SqlRateLimiter(request.getfixturevalue(f"{request.param}_ledger"))


def test_one_send_per_interval(limiter: RateLimiter) -> None:
    key = f"acct:{uuid.uuid4().hex}"
    assert limiter.try_acquire(key, per_hour=3600) == 0.0
    wait = limiter.try_acquire(key, per_hour=3600)
    assert 0.5 < wait <= 1.0  # the next slot is a second after the first
    time.sleep(wait + 0.05)
    assert limiter.try_acquire(key, per_hour=3600) == 0.0


def test_accounts_and_channels_have_their_own_allowance(limiter: RateLimiter) -> None:
    prefix = uuid.uuid4().hex
    assert limiter.try_acquire(f"{prefix}:a:sms", per_hour=60) == 0.0
    assert limiter.try_acquire(f"{prefix}:b:sms", per_hour=60) == 0.0
    assert limiter.try_acquire(f"{prefix}:a:email", per_hour=60) == 0.0
    assert limiter.try_acquire(f"{prefix}:a:sms", per_hour=60) > 0


def test_the_cap_holds_across_concurrent_workers(limiter: RateLimiter) -> None:
    # Given 4 workers hammering one key capped at 20 sends a second, for 1.5 seconds
    key = f"acct:{uuid.uuid4().hex}"
    granted: list[float] = []
    stop = time.monotonic() + 1.5

    def hammer() -> None:
        while time.monotonic() < stop:
            if limiter.try_acquire(key, per_hour=72_000) == 0.0:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no more than the rate allows went through (one slot every 50 ms, plus the first)
    assert 10 <= len(granted) <= 1.5 * 20 + 1
