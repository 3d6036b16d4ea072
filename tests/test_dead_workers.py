"""Dead workers noticed in seconds: each worker process beats in the ledger, and beat hands
the claims of one that stopped beating to others (its jobs that had called MailUp are
in_doubt, as after a lease ran out); a worker still beating keeps its jobs however slow, and
a run whose claim was taken over neither calls nor records."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from producers import send_sms
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import Recorder, job, statuses
from worker.engine import heartbeat, sweeper
from worker.engine.kind import ClaimLost, JobContext
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import Job, JobStatus, WorkerBeat, utcnow
from worker.settings import get_settings

FINAL = {"succeeded", "failed", "in_doubt"}


def _claimed(count: int, worker: str, *, lease_seconds: float = 600) -> list[store.Claim]:
    ids = [send_sms(list_id=1, recipient=f"+39335000{n:04d}", content="hi") for n in range(count)]
    with connection(get_settings().ledger_url) as db:
        return store.claim_many(db, ids, worker=worker, lease_seconds=lease_seconds)


def _last_beat(worker: str, seconds_ago: float) -> None:
    with connection(get_settings().ledger_url) as db:
        store.upsert(
            db, WorkerBeat, worker=worker, beat_at=utcnow() - timedelta(seconds=seconds_ago)
        )


def _status(job_id: str) -> str:
    return str(job(job_id)["status"])


def test_a_silent_workers_claims_go_to_others_and_its_own_run_stops(env: Env) -> None:
    # Given a worker holding two jobs, one of them mid-call, that stopped beating
    settings = get_settings()
    calling, waiting = _claimed(2, "host/1")
    JobContext(settings, calling, "host/1").calling()
    _last_beat("host/1", heartbeat.GONE_AFTER + 1)

    # When beat looks for dead workers (their leases have ten minutes to run)
    published = Recorder()
    report = sweeper.recover_lost(settings, published)

    # Then the job that had called is in doubt, the other one published again at once
    assert (report.in_doubt, report.requeued) == (1, 1)
    assert job(calling.job_id)["last_error_code"] == "worker_lost"
    assert _status(waiting.job_id) == "queued"
    assert [p[0] for p in published.published] == [waiting.job_id]

    # …and should the silent worker wake up, its run neither calls nor records
    with pytest.raises(ClaimLost):
        JobContext(settings, waiting, "host/1").calling()
    with connection(settings.ledger_url) as db:
        [retaken] = store.claim_many(db, [waiting.job_id], worker="host/2", lease_seconds=600)
        assert retaken.number == waiting.number  # the attempt it never made is given back
        store.execute_merged(db, [store.settling(waiting, status=JobStatus.FAILED, error="x")])
    assert (_status(waiting.job_id), job(waiting.job_id)["last_error"]) == ("running", None)
    JobContext(settings, retaken, "host/2").calling()  # the new run's call leaves


def test_a_worker_still_beating_keeps_its_claims_however_long_its_calls(env: Env) -> None:
    settings = get_settings()
    [claim] = _claimed(1, "host/1")
    JobContext(settings, claim, "host/1").calling()
    _last_beat("host/1", heartbeat.GONE_AFTER - 2)

    assert sweeper.recover_lost(settings, Recorder()).as_dict() == {
        "requeued": 0,
        "in_doubt": 0,
        "republished": 0,
        "broker_lost": 0,
    }
    assert _status(claim.job_id) == "running"


def test_a_worker_that_never_beats_has_its_lease_only(env: Env) -> None:
    # (a worker of an earlier release, while hosts are upgraded one by one)
    settings = get_settings()
    [held] = _claimed(1, "old/1")
    assert sweeper.recover_lost(settings, Recorder()).requeued == 0
    [expired] = _claimed(1, "old/2", lease_seconds=-1)
    assert sweeper.recover_lost(settings, Recorder()).requeued == 1
    assert (_status(held.job_id), _status(expired.job_id)) == ("running", "queued")


def test_a_worker_beats_from_its_first_claim_and_says_goodbye(env: Env) -> None:
    settings = get_settings()
    worker = f"test/{time.monotonic_ns()}"

    def last_beat() -> object:
        with connection(settings.ledger_url) as db:
            return db.scalar(select(WorkerBeat.beat_at).where(WorkerBeat.worker == worker))

    heartbeat.ensure_beating(settings.ledger_url, worker)
    first = last_beat()
    assert first is not None
    wait_for(lambda: last_beat() != first, heartbeat.EVERY * 3, "a second beat")
    heartbeat.stop_beating(settings.ledger_url)
    assert last_beat() is None


def _held_by(worker: str) -> dict[str, bool]:
    """The jobs ``worker`` holds: job id → whether its call was opened."""
    with connection(get_settings().ledger_url) as db:
        rows = db.execute(
            select(Job.id).where(Job.status == JobStatus.RUNNING, Job.worker == worker)
        )
        held = [row.id for row in rows]
    return {
        job_id: any(a["outcome"] == "calling" for a in job(job_id)["attempts"]) for job_id in held
    }


def test_a_killed_workers_claimed_jobs_run_elsewhere_within_15_s(
    env: Env,
    redis_broker: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given a busy worker: its threads hold jobs waiting for MailUp's 30 SMS a second
    # (messages the dead worker had taken but not claimed come back by the sweeper's
    # re-publication, its own subject: made brisk here)
    env.set(
        MAILUP_JOBS_BROKER_URL=redis_broker,
        MAILUP_JOBS_LOG_LEVEL="WARNING",
        MAILUP_JOBS_REPUBLISH_AFTER=5,
    )
    jobs = {send_sms(list_id=1, recipient=f"+39335{n:07d}", content="hi"): n for n in range(200)}
    spawn("beat")
    doomed = spawn("worker", "-c", "32")
    assert doomed.popen is not None
    name = f"{socket.gethostname()}/{doomed.popen.pid}"
    wait_for(lambda: len(sandbox.deliveries()) >= 30, 60, "the worker at work")

    # When it is SIGKILLed, and another worker runs
    doomed.kill()
    killed_at = time.monotonic()
    held = _held_by(name)
    not_called = [job_id for job_id, called in held.items() if not called]
    print(f"\nheld at the kill: {len(held)}, of which not called: {len(not_called)}")
    assert not_called, "the kill found no claimed job waiting (nothing to show)"
    spawn("worker", "-c", "32")

    # Then its jobs that had not called are taken over within 15 s (their leases have 65 s)
    wait_for(lambda: not (set(not_called) & set(_held_by(name))), 15, "the claims taken over")
    print(f"taken over {time.monotonic() - killed_at:.1f} s after the kill")
    final = wait_for(
        lambda: (s := statuses(list(jobs))) and set(s.values()) <= FINAL and s, 120, "all final"
    )
    assert set(final.values()) <= {"succeeded", "in_doubt"}, Counter(final.values())
    assert {job_id for job_id, status in final.items() if status == "in_doubt"} <= set(held)
    delivered = Counter(d["recipient"] for d in sandbox.deliveries())
    assert [r for r, n in delivered.items() if n > 1] == []
    assert all(final[job_id] == "succeeded" for job_id in not_called)
