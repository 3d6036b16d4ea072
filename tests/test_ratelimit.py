"""Shared rates, in Redis and in the ledger: the purchased speed (a slot is taken or the job
waits elsewhere) and MailUp's per-second API limits (the next slot is reserved)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest
import redis

from worker.engine.ratelimit import Lead, RateLimiter, RedisRateLimiter, SqlRateLimiter, pace


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "redis":
        url = request.getfixturevalue("redis_broker")
        return RedisRateLimiter(redis.Redis.from_url(url))
    return SqlRateLimiter(request.getfixturevalue(f"{request.param}_ledger"))


def test_one_slot_per_interval(limiter: RateLimiter) -> None:
    key = f"acct:{uuid.uuid4().hex}"
    assert limiter.try_acquire(key, 1.0) == 0.0
    wait = limiter.try_acquire(key, 1.0)
    assert 0.5 < wait <= 1.0  # the next slot is a second after the first
    time.sleep(wait + 0.05)
    assert limiter.try_acquire(key, 1.0) == 0.0


def test_accounts_and_channels_have_their_own_allowance(limiter: RateLimiter) -> None:
    prefix = uuid.uuid4().hex
    assert limiter.try_acquire(f"{prefix}:a:sms", 60) == 0.0
    assert limiter.try_acquire(f"{prefix}:b:sms", 60) == 0.0
    assert limiter.try_acquire(f"{prefix}:a:email", 60) == 0.0
    assert limiter.try_acquire(f"{prefix}:a:sms", 60) > 0


def test_the_cap_holds_across_concurrent_workers(limiter: RateLimiter) -> None:
    # Given 4 workers hammering one key capped at 20 a second, for 1.5 seconds
    key = f"acct:{uuid.uuid4().hex}"
    granted: list[float] = []
    stop = time.monotonic() + 1.5

    def hammer() -> None:
        while time.monotonic() < stop:
            if limiter.try_acquire(key, 0.05) == 0.0:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no more than the rate allows went through (one slot every 50 ms, plus the first)
    assert 10 <= len(granted) <= 1.5 * 20 + 1


def test_reserved_slots_are_spaced_and_none_is_lost(limiter: RateLimiter) -> None:
    # Given 4 workers each reserving 5 slots of one key at 10 a second
    key = f"acct:{uuid.uuid4().hex}"
    slots: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(5):
            asked = time.time()  # the limiter reads its clock when asked, not when it answers
            at = asked + limiter.reserve(key, 0.1)
            with lock:
                slots.append(at)

    started = time.time()
    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the 20 slots follow each other 100 ms apart, none shared (the slack is the time a
    # thread may wait for the interpreter, or SQLite's lock, between asking and being
    # answered: tens of ms on a loaded machine), and the last comes when the rate says
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) > 0.05
    assert slots[-1] - started == pytest.approx(19 * 0.1, abs=0.25)


def test_a_call_is_recorded_as_its_slot_comes_not_while_it_waits(limiter: RateLimiter) -> None:
    # Given a key whose next slot is half a second away (2 calls a second, one just made)
    key = f"acct:{uuid.uuid4().hex}"
    pace(limiter, key, 2)
    began = time.monotonic()
    recorded: list[float] = []

    # When a call paces with something to do before it leaves (that took 100 ms last time)
    lead = Lead()
    lead.took(0.1)
    pace(limiter, key, 2, ready=lambda: recorded.append(time.monotonic()), lead=lead)
    left = time.monotonic()

    # Then that ran once, that long before the slot: a worker killed during the wait
    # recorded nothing, and the call still left on time
    assert len(recorded) == 1
    assert left - began > 0.45
    assert recorded[0] - began > 0.25
    assert 0.1 <= left - recorded[0] <= 0.2


def test_the_lead_follows_the_slowest_recent_ready() -> None:
    lead = Lead()
    assert lead.seconds == Lead.SHORTEST
    lead.took(0.08)
    assert lead.seconds == pytest.approx(0.12)  # a slow one widens it at once
    for _ in range(20):
        lead.took(0.001)
    assert Lead.SHORTEST < lead.seconds < 0.1  # quick ones narrow it slowly
    lead.took(60)
    assert lead.seconds == Lead.LONGEST
