"""What an operator does from the command line: migrate, cancel, retry an in_doubt job."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from producers import send_sms
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, mailup_jobs, run_once


def test_migrate_creates_the_ledger_on_a_fresh_database(env: Env, tmp_path: Path) -> None:
    env.set(MAILUP_JOBS_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")

    assert mailup_jobs(env, "migrate").returncode == 0
    assert mailup_jobs(env, "migrate").returncode == 0  # and again: nothing to do

    engine = sqlalchemy.create_engine(env.values["MAILUP_JOBS_DATABASE_URL"])
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    engine.dispose()
    assert {"jobs", "attempts", "sms_deliveries", "list_credentials"} <= tables


def test_a_queued_job_can_be_cancelled_and_then_never_runs(
    env: Env, sandbox: Sandbox, list_secret: str
) -> None:
    job_id = send_sms(list_id=1, recipient="+393350000001", content="hi")

    assert mailup_jobs(env, "jobs", "cancel", job_id).returncode == 0
    assert run_once(job_id) is None
    assert job(job_id)["status"] == "cancelled"
    assert sandbox.deliveries() == []
    refused = mailup_jobs(env, "jobs", "cancel", job_id)
    assert refused.returncode == 1 and "not queued or retrying" in refused.stderr


def test_an_in_doubt_job_is_retried_only_when_an_operator_says_so(
    env: Env, sandbox: Sandbox, list_secret: str
) -> None:
    # Given a job whose connection dropped: MailUp never saw it, but the worker cannot know
    sandbox.set_faults(drop_before_rate=1.0)
    job_id = send_sms(list_id=1, recipient="+393350000001", content="hi")
    assert run_once(job_id) == "in_doubt"
    sandbox.set_faults()
    assert run_once(job_id) is None  # nothing retries it by itself

    # When the operator has checked MailUp's side and re-queues it
    assert mailup_jobs(env, "jobs", "retry", job_id).returncode == 0

    # Then it runs once more, and only once
    assert run_once(job_id) == "succeeded"
    assert run_once(job_id) is None
    assert len(sandbox.deliveries()) == 1
    assert [a["outcome"] for a in job(job_id)["attempts"]] == ["in_doubt", "succeeded"]


def test_a_requeued_job_keeps_its_priority(
    env: Env, sandbox: Sandbox, list_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from producers import audit

    sandbox.force(403, "206")  # opted out: fails at once
    job_id = send_sms(list_id=1, recipient="+393350000001", content="hi", priority=0)
    assert run_once(job_id) == "failed"
    recorder = Recorder()
    monkeypatch.setattr(audit, "publish", recorder)

    assert audit.requeue(job_id)
    assert recorder.published == [(job_id, 0, None)]
