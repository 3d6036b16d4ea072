"""Faults an operator meets at 3 a.m.: workers killed, the broker flushed, MailUp failing.

Each ends with every job succeeded, failed with its code, or in_doubt — none lost, none
sent twice — checked against the sandbox's journal of what MailUp received.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from producers import send_sms
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import job, statuses
from worker.ledger.db import dispose_all

pytestmark = pytest.mark.slow

FINAL = {"succeeded", "failed", "in_doubt", "cancelled"}


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


@pytest.fixture
def fast_recovery(env: Env, redis_broker: str) -> str:
    """Redis + PostgreSQL with short leases and a brisk sweeper, so recovery fits a test."""
    env.set(
        MAILUP_JOBS_BROKER_URL=redis_broker,
        MAILUP_JOBS_CONNECT_TIMEOUT=1,
        MAILUP_JOBS_READ_TIMEOUT=3,
        MAILUP_JOBS_LEASE_MARGIN=1,
        MAILUP_JOBS_SWEEP_INTERVAL=1,
        MAILUP_JOBS_REPUBLISH_AFTER=3,
        MAILUP_JOBS_LOG_LEVEL="WARNING",
    )
    return redis_broker


def _enqueue(count: int) -> dict[str, str]:
    """``count`` SMS, each to a recipient of its own: job id → recipient."""
    jobs = {}
    for n in range(count):
        recipient = f"+39335{n:07d}"
        jobs[send_sms(list_id=1, recipient=recipient, content=f"message {n}")] = recipient
    return jobs


def _wait_until_final(job_ids: list[str], timeout: float) -> dict[str, str]:
    return wait_for(
        lambda: (s := statuses(job_ids)) and set(s.values()) <= FINAL and s,
        timeout,
        "every job reaches a final status",
    )


def _assert_sent_at_most_once(
    sandbox: Sandbox, jobs: dict[str, str], final: dict[str, str]
) -> None:
    delivered = Counter(d["recipient"] for d in sandbox.deliveries())
    twice = [r for r, n in delivered.items() if n > 1]
    assert twice == [], f"sent more than once: {twice}"
    for job_id, recipient in jobs.items():
        if final[job_id] == "succeeded":
            assert delivered[recipient] == 1, f"job {job_id} succeeded but MailUp got nothing"
        elif final[job_id] == "failed":
            assert delivered[recipient] == 0, f"job {job_id} failed but was delivered"


def _in_flight(sandbox: Sandbox, spawn: Callable[..., Process], count: int) -> dict[str, str]:
    """``count`` jobs in flight behind a slow MailUp, with beat and a worker running."""
    sandbox.set_faults(latency_ms=20)
    jobs = _enqueue(count)
    spawn("beat")
    spawn("worker", "-c", "4")
    wait_for(lambda: len(sandbox.deliveries()) >= 20, 60, "some progress")
    return jobs


def _assert_each_sent_once(sandbox: Sandbox, jobs: dict[str, str]) -> None:
    final = _wait_until_final(list(jobs), timeout=300)
    assert set(final.values()) == {"succeeded"}, Counter(final.values())
    _assert_sent_at_most_once(sandbox, jobs, final)
    assert len(sandbox.deliveries()) == len(jobs)


def test_workers_killed_mid_run_lose_nothing_and_send_nothing_twice(
    env: Env,
    fast_recovery: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given 500 SMS jobs and calls slow enough that kills land mid-call
    sandbox.set_faults(latency_ms=15)
    jobs = _enqueue(500)
    spawn("beat")
    worker = spawn("worker", "-c", "4")

    # When the worker is SIGKILLed three times while it works, and restarted each time
    for _ in range(3):
        wait_for(lambda: len(sandbox.deliveries()) > 40 * worker.starts, 120, "progress")
        worker.kill()
        time.sleep(0.5)
        worker.start()

    # Then every job ends succeeded, or in_doubt where a kill hit a call
    final = _wait_until_final(list(jobs), timeout=300)
    in_doubt = sorted(j for j, s in final.items() if s == "in_doubt")
    assert set(final.values()) <= {"succeeded", "in_doubt"}, Counter(final.values())
    print(f"\nin_doubt after 3 kills ({len(in_doubt)}): {in_doubt}")
    assert len(in_doubt) <= 3 * 4  # at most the calls in flight at each kill
    for job_id in in_doubt:
        assert job(job_id)["last_error_code"] == "worker_lost"
    _assert_sent_at_most_once(sandbox, jobs, final)


def test_a_flushed_broker_loses_no_job(
    env: Env,
    fast_recovery: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given 200 jobs waiting in Redis behind a slow MailUp
    jobs = _in_flight(sandbox, spawn, 200)

    # When Redis loses everything (messages, unacked deliveries, bindings)
    redis.Redis.from_url(fast_recovery).flushdb()

    # Then the sweeper re-publishes from the ledger and every job is sent exactly once
    _assert_each_sent_once(sandbox, jobs)


def _restart_postgres() -> None:
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )


@pytest.mark.alone  # every test running beside it would lose its database too
def test_a_database_restart_loses_no_job(
    env: Env,
    fast_recovery: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given 200 jobs in flight on PostgreSQL
    jobs = _in_flight(sandbox, spawn, 200)

    # When PostgreSQL restarts under the workers (every pooled connection dies)
    _restart_postgres()
    dispose_all()  # this test's own connections died too

    # Then every job is still sent, exactly once
    _assert_each_sent_once(sandbox, jobs)


def test_a_failing_mailup_gets_each_job_a_clear_ending(
    env: Env,
    fast_recovery: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given MailUp answering 20% 5xx before processing (half of them 503 with Retry-After),
    # 5% 5xx after processing, 10% 429, dropping 5% after processing, and some jobs that
    # can only fail (opted-out or US numbers)
    sandbox.set_faults(
        error_rate=0.2, error_after_rate=0.05, rate_429=0.1, retry_after=1, drop_after_rate=0.05
    )
    jobs = _enqueue(150)
    doomed = {
        send_sms(list_id=1, recipient=r, content="x"): r
        for r in ["+393330000666"] + [f"+120255501{n:02d}" for n in range(11)]
    }
    jobs.update(doomed)
    spawn("beat")
    spawn("worker", "-c", "4")

    final = _wait_until_final(list(jobs), timeout=300)

    # Then permanent answers were tried exactly once and failed with their code (unless the
    # answer itself was dropped: then nobody knows what MailUp said, and the job is in doubt)
    failed = 0
    for job_id in doomed:
        row = job(job_id)
        outcomes = [a["outcome"] for a in row["attempts"]]
        assert set(outcomes[:-1]) <= {"transient"}  # faults first, if any
        if row["status"] == "in_doubt":
            assert outcomes[-1] == "in_doubt"
            continue
        failed += 1
        assert row["status"] == "failed"
        assert row["last_error_code"] in {"204", "206"}
        assert outcomes[-1] == "permanent"
    assert failed >= len(doomed) // 2
    # and every other job succeeded, gave up with its code, or is in doubt
    counts = Counter(final.values())
    print(f"\nfinal statuses under faults: {dict(counts)}")
    assert counts["succeeded"] > 100
    for job_id, status in final.items():
        row = job(job_id)
        if status == "in_doubt":
            assert row["attempts"][-1]["outcome"] == "in_doubt"
        if status == "failed":
            assert row["last_error_code"]
        # only what provably did not reach MailUp is retried: a 429, a 503 saying when
        retries = [a for a in row["attempts"] if a["outcome"] == "transient"]
        assert all(a["http_status"] in (429, 503) for a in retries)
    _assert_sent_at_most_once(sandbox, jobs, final)
