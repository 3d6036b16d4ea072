"""A campaign schedule beat could not dispatch within MAILUP_JOBS_SCHEDULE_MAX_LATE of its
time is missed, never sent late: in `campaigns list`, in the metrics — in-process and with
real beat and worker processes, against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from producers.audit import list_jobs
from producers.campaigns import cancel_schedule, list_schedules, schedule_campaign
from producers.errors import TransactionalIsBetterWarning
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import job, run_once
from tests.test_system import FINISHED, broker, cli, ledger_url, show, stack
from worker import retention
from worker.jobs import schedules
from worker.jobs.registry import KINDS
from worker.ledger.db import connection
from worker.ledger.models import CampaignSchedule, utcnow
from worker.metrics import LedgerCollector
from worker.settings import get_settings

__all__ = ["broker", "ledger_url", "stack"]  # the stacks of test_system, as fixtures here


def _due(schedule_id: str, at: datetime) -> None:
    """Move a schedule's time (producers take only future ones)."""
    with connection(get_settings().ledger_url) as db:
        db.execute(
            update(CampaignSchedule).where(CampaignSchedule.id == schedule_id).values(due_at=at)
        )


def _missed_metric() -> float:
    [value] = [
        sample.value
        for family in LedgerCollector(get_settings().ledger_url, KINDS).collect()
        for sample in family.samples
        if sample.name == "mailup_jobs_missed_schedules"
    ]
    return value


def test_a_schedule_found_too_late_is_missed_and_one_late_within_the_bound_is_sent(
    sandbox: Sandbox, env: Env
) -> None:
    # Given two schedules past their time, by a little more and a little less than 10 min
    env.set(MAILUP_JOBS_SCHEDULE_MAX_LATE=600)
    made = create_message(list_id=1, subject="Sale ends tonight", html="<p>Hi</p>")
    assert run_once(made) == "succeeded"
    message = job(made)["outcome"]["message_id"]
    sandbox.add_recipient(1, "ada@example.com")
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.warns(TransactionalIsBetterWarning):
        late = schedule_campaign(message, list_id=1, to="ada@example.com", at=later)
    on_time = schedule_campaign(message, list_id=1, at=later)
    _due(late, utcnow() - timedelta(seconds=610))
    _due(on_time, utcnow() - timedelta(seconds=590))
    assert _missed_metric() == 0

    # When beat's dispatch runs (twice: a missed one stays missed)
    assert schedules.dispatch_due(get_settings()) == 1
    assert schedules.dispatch_due(get_settings()) == 0

    # Then the late one is missed, with no job and nothing sent; the other one is sent
    found = {s["id"]: s for s in list_schedules()}
    assert found[late]["state"] == "missed" and found[late]["missed_at"]
    assert found[late]["job_id"] is None
    assert found[on_time]["state"] == "dispatched"
    [sent] = list_jobs(kind="campaign_send")
    assert sent["id"] == found[on_time]["job_id"]
    assert run_once(sent["id"]) == "succeeded"
    assert len(sandbox.sendings()) == 1
    assert cancel_schedule(late) == "missed"

    # And operators see it: `campaigns list`, filtered by state, and the metrics
    assert f"{late}  missed" in cli(env, "campaigns", "list")
    listed = json.loads(cli(env, "campaigns", "list", "--state", "missed", "--json"))
    assert [s["id"] for s in listed] == [late]
    assert _missed_metric() == 1

    # And a purge removes its recipient, as a sent one's
    retention.purge(get_settings(), KINDS, timedelta(0))
    [purged] = list_schedules(state="missed")
    assert "to" not in purged["payload"] and purged["payload"]["message_id"] == message


def _done(env: Env, job_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (j := show(env, job_id))["status"] in FINISHED and j, 60, job_id))


def test_beat_misses_a_schedule_it_starts_too_late_for_and_sends_the_next_on_time(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    # Given, while beat is down, a schedule due 61 minutes ago and one due in 3 s
    env.set(MAILUP_JOBS_SCHEDULE_POLL=0.2)
    sandbox.add_recipient(1, "ada@example.com")
    spawn("worker", "-c", "2")
    made = _done(env, cli(env, "messages", "create", "--list-id", "1", "--subject", "News",
                          "--html", "<p>Hi</p>").strip())  # fmt: skip
    message = str(made["outcome"]["message_id"])
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    late, on_time = (
        cli(env, "campaigns", "schedule", "--message-id", message, "--list-id", "1", "--at", at)
        .strip() for _ in range(2)
    )  # fmt: skip
    _due(late, utcnow() - timedelta(minutes=61))
    _due(on_time, utcnow() + timedelta(seconds=3))

    # When beat starts
    spawn("beat")

    # Then the first is missed (the default bound is an hour) and the second is sent
    def states() -> dict[str, dict[str, Any]] | None:
        rows = {r["id"]: r for r in json.loads(cli(env, "campaigns", "list", "--json"))}
        return rows if rows[on_time]["state"] == "dispatched" else None

    rows = wait_for(states, 30, "beat dispatches the schedule due now")
    assert rows[late]["state"] == "missed" and rows[late]["job_id"] is None
    assert _done(env, rows[on_time]["job_id"])["status"] == "succeeded"
    assert len(sandbox.sendings()) == 1
    assert f"{late}  missed" in cli(env, "campaigns", "list")
