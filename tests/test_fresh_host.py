"""A new operator's host: an empty HOME, no data dir, only the settings the README documents,
every process started as `mailup-jobs …` — then the faults of a bad night: a busy worker
SIGKILLed three times and Redis flushed with a backlog in it.

The defaults are the documented ones (sweep every 15 s, leases of connect + read timeout +
30 s): the timings asserted here are the ones an operator gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from sandbox.server import Sandbox
from tests.conftest import wait_for
from worker.ledger.db import dispose_all, transaction
from worker.ledger.models import CLAIMABLE, Job, utcnow
from worker.settings import get_settings

pytestmark = pytest.mark.slow
FINAL = {"succeeded", "failed", "in_doubt", "cancelled"}


@dataclass
class Host:
    """A fresh host: its HOME, the documented settings, and the processes started on it."""

    home: Path
    settings: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MAILUP_", "TEST_"))}
        return {**inherited, "HOME": str(self.home), **self.settings}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "producers.cli", *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.home / f"{args[0]}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "producers.cli", *args],
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a kill reaches the whole pool
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(process)


@pytest.fixture
def host(
    tmp_path: Path,
    sandbox: Sandbox,
    postgres_ledger: str,
    redis_broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Host]:
    home = tmp_path / "home"
    home.mkdir()
    settings = {
        **sandbox.client_settings,
        "MAILUP_JOBS_DATABASE_URL": postgres_ledger,
        "MAILUP_JOBS_BROKER_URL": redis_broker,
        "MAILUP_JOBS_SECRET_KEY": Fernet.generate_key().decode(),
    }
    # This test process enqueues and reads the ledger with the same settings.
    for name in list(os.environ):
        if name.startswith("MAILUP_"):
            monkeypatch.delenv(name)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(home))
    get_settings.cache_clear()
    fresh = Host(home, settings)
    yield fresh
    fresh.stop_all()
    get_settings.cache_clear()
    dispose_all()


def _statuses() -> Counter[str]:
    with transaction(get_settings().ledger_url) as session:
        rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return Counter({status: count for status, count in rows})


def _waiting_published_before(moment: datetime) -> int:
    """Jobs waiting for a worker whose last message went to the broker before ``moment``."""
    with transaction(get_settings().ledger_url) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.status.in_(CLAIMABLE), Job.published_at < moment)
            )
            or 0
        )


def test_a_bad_night_on_a_fresh_host_loses_nothing_and_sends_nothing_twice(
    host: Host, sandbox: Sandbox
) -> None:
    from producers import manage_list_secret, send_sms

    # Given a fresh host: no data dir, the ledger migrated by the operator, all checks green
    assert not (host.home / ".mailup-jobs").exists()
    assert host.run("migrate").returncode == 0
    check = host.run("check")
    assert check.returncode == 0, check.stdout

    # and beat and a worker started as the README says, MailUp answering in 100 ms
    beat = host.start("beat")
    worker = host.start("worker", "-c", "4")
    setup = manage_list_secret("create", list_id=1)
    wait_for(lambda: _statuses()["succeeded"] == 1, 60, f"ListSecret job {setup} succeeds")
    sandbox.set_faults(latency_ms=100)
    jobs = {
        send_sms(list_id=1, recipient=number, content="your code is 1234"): number
        for number in (f"+39335{n:07d}" for n in range(300))
    }

    # When the busy worker is SIGKILLed twice mid-run and restarted each time...
    for kill in (1, 2):
        wait_for(lambda k=kill: len(sandbox.deliveries()) >= 60 * k, 120, "progress")
        host.kill(worker)
        worker = host.start("worker", "-c", "4")

    # ...then a third time, and Redis loses everything while the backlog waits in it
    wait_for(lambda: len(sandbox.deliveries()) >= 180, 120, "progress")
    host.kill(worker)
    redis.Redis.from_url(host.settings["MAILUP_JOBS_BROKER_URL"]).flushdb()
    flushed_at = utcnow()
    backlog = _waiting_published_before(flushed_at)
    assert backlog > 0, "the flush must hit a backlog"
    worker = host.start("worker", "-c", "4")

    # Then the flushed backlog is published again within 30 s...
    wait_for(lambda: _waiting_published_before(flushed_at) == 0, 30, "backlog re-published")
    republished_in = (utcnow() - flushed_at).total_seconds()
    print(f"\n{backlog} job(s) flushed from Redis, re-published within {republished_in:.1f} s")

    # ...and every job ends succeeded, or in_doubt where a kill hit a call in flight
    wait_for(lambda: set(_statuses()) <= FINAL and _statuses().total() == 301, 240, "all final")
    statuses = _statuses()
    with transaction(get_settings().ledger_url) as session:
        last = session.scalar(select(func.max(Job.updated_at)).where(Job.id.in_(jobs)))
    after = (last - flushed_at).total_seconds()
    print(f"final: {dict(statuses)}, the last {after:.1f} s after the flush")
    assert set(statuses) <= {"succeeded", "in_doubt"}
    assert statuses["in_doubt"] <= 3 * 4  # at most the calls in flight at each kill
    delivered = Counter(d["recipient"] for d in sandbox.deliveries())
    assert [r for r, n in delivered.items() if n > 1] == [], "an SMS went out twice"
    with transaction(get_settings().ledger_url) as session:
        final = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(jobs))).all())
        doubts = set(session.scalars(select(Job.last_error_code).where(Job.status == "in_doubt")))
    assert doubts <= {"worker_lost"}
    for job_id, number in jobs.items():
        if final[job_id] == "succeeded":
            assert delivered[number] == 1, f"job {job_id} succeeded, MailUp got no SMS"
    assert beat.poll() is None, "beat kept running"


def test_every_process_starts_on_an_empty_home_with_embedded_defaults(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    fresh = Host(home, {**sandbox.client_settings, "MAILUP_JOBS_FLOWER_AUTH": "ops:flower-pw"})
    try:
        assert fresh.run("check").returncode == 1  # the ledger is not migrated yet
        assert fresh.run("migrate").returncode == 0
        assert (home / ".mailup-jobs" / "ledger.db").exists()
        port = free_port()
        started = [
            fresh.start("worker", "-c", "1"),
            fresh.start("beat"),
            fresh.start("flower", f"--port={port}", "--address=127.0.0.1"),
            fresh.start("sandbox", "--port", str(free_port())),
        ]
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, "Flower answers")
        time.sleep(3)  # long enough for a process that dies at start to have died
        for process in started:
            assert process.poll() is None, (home / f"{process.args[3]}.log").read_text()  # type: ignore[index]
        check = fresh.run("check")
        assert check.returncode == 0, check.stdout
    finally:
        fresh.stop_all()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False
