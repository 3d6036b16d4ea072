"""The sweeper: dead workers' jobs and messages the broker lost (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from producers import send_sms
from tests.conftest import Env
from tests.helpers import Recorder, die_after_claim, job, run_once
from worker.engine import sweeper
from worker.engine.kind import JobContext
from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import Job, JobStatus, utcnow
from worker.settings import get_settings


def _job() -> str:
    return send_sms(list_id=1, recipient="+393350000001", content="hello")


def test_a_job_whose_worker_died_before_calling_is_requeued(env: Env) -> None:
    job_id = _job()
    die_after_claim(job_id, opened_call=False)
    recorder = Recorder()

    report = sweeper.sweep(get_settings(), recorder)

    assert (report.requeued, report.in_doubt, report.republished) == (1, 0, 1)
    assert job(job_id)["status"] == "queued"
    assert job(job_id)["attempt_count"] == 0  # the lost claim does not count as an attempt
    assert [p[0] for p in recorder.published] == [job_id]


def test_a_job_whose_worker_died_mid_call_is_in_doubt(env: Env) -> None:
    job_id = _job()
    die_after_claim(job_id, opened_call=True)

    report = sweeper.sweep(get_settings(), Recorder())

    assert (report.requeued, report.in_doubt) == (0, 1)
    row = job(job_id)
    assert (row["status"], row["last_error_code"]) == ("in_doubt", "worker_lost")
    assert [a["outcome"] for a in row["attempts"]] == ["abandoned"]


def test_a_live_claim_is_left_alone(env: Env) -> None:
    job_id = _job()
    with transaction(get_settings().ledger_url) as session:
        assert store.claim(session, job_id, worker="busy/1", lease_seconds=60)

    report = sweeper.sweep(get_settings(), Recorder())

    assert (report.requeued, report.in_doubt, report.republished) == (0, 0, 0)
    assert job(job_id)["status"] == "running"


def _age_publication(job_id: str, seconds: float) -> None:
    """As if the job had been due and its last message sent ``seconds`` ago."""
    past = utcnow() - timedelta(seconds=seconds)
    with transaction(get_settings().ledger_url) as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(published_at=past, run_after=past)
        )


def test_lost_messages_are_republished_at_growing_intervals(env: Env) -> None:
    env.set(MAILUP_JOBS_REPUBLISH_AFTER=60)
    job_id = _job()
    recorder = Recorder()

    assert sweeper.sweep(get_settings(), recorder).republished == 0  # just published
    _age_publication(job_id, 61)
    assert sweeper.sweep(get_settings(), recorder).republished == 1
    # Published twice now: the next copy waits twice as long.
    _age_publication(job_id, 61)
    assert sweeper.sweep(get_settings(), recorder).republished == 0
    _age_publication(job_id, 121)
    assert sweeper.sweep(get_settings(), recorder).republished == 1
    assert [p[0] for p in recorder.published] == [job_id, job_id]


def test_a_retried_job_whose_message_is_lost_waits_no_longer_than_a_new_one(env: Env) -> None:
    # Given a job retried three times, its retry's message then lost with a worker
    env.set(MAILUP_JOBS_REPUBLISH_AFTER=60)
    job_id = _job()
    settings = get_settings()
    for _ in range(3):
        with transaction(settings.ledger_url) as session:
            claim = store.claim(session, job_id, worker="w/1", lease_seconds=60)
            assert claim is not None
            session.execute(*store.settling(claim, status=JobStatus.RETRYING, run_after=utcnow()))

    # Then the sweeper republishes it once the usual wait has passed, not eight times that
    _age_publication(job_id, 61)
    recorder = Recorder()
    assert sweeper.sweep(settings, recorder).republished == 1
    assert [p[0] for p in recorder.published] == [job_id]


def test_a_late_answer_settles_a_job_the_sweeper_put_in_doubt(env: Env) -> None:
    # Given a worker slower than its lease: the sweeper marks its job in_doubt mid-call
    job_id = _job()
    settings = get_settings()
    with transaction(settings.ledger_url) as session:
        claim = store.claim(session, job_id, worker="slow/1", lease_seconds=-1)
    assert claim is not None
    JobContext(settings, claim, "slow/1").calling()
    assert sweeper.sweep(settings, Recorder()).in_doubt == 1

    # When its answer arrives after all, it is recorded: the truth beats doubt
    with transaction(settings.ledger_url) as session:
        assert session.execute(*store.settling(claim, status=JobStatus.SUCCEEDED)).rowcount
    assert job(job_id)["status"] == "succeeded"
    assert run_once(job_id) is None
