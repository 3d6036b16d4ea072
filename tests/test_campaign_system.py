"""Campaign email as an operator runs it: the CLI, real worker and beat processes (two
beats at once), the sandbox over HTTP, on the embedded stack and on Redis + PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.test_system import FINISHED, broker, cli, ledger_url, show, stack

__all__ = ["broker", "ledger_url", "stack"]  # the stacks of test_system, as fixtures here


def _done(env: Env, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return dict(
        wait_for(lambda: (j := show(env, job_id))["status"] in FINISHED and j, timeout, job_id)
    )


def _message(env: Env) -> str:
    made = _done(
        env,
        cli(env, "messages", "create", "--list-id", "1", "--subject", "News",
            "--html", "<p>Hello</p>").strip(),
    )  # fmt: skip
    assert made["status"] == "succeeded", made["last_error"]
    return str(made["outcome"]["message_id"])


def test_a_campaign_from_the_cli_followed_through_the_queue_by_beat(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    env.set(MAILUP_JOBS_SENDING_POLL=0.5)
    sandbox.set_sending_duration(3)
    sandbox.add_recipient(1, "ada@example.com")
    spawn("beat")
    spawn("worker", "-c", "2")
    message = _message(env)

    job_id = cli(env, "enqueue", "campaign", "--message-id", message, "--list-id", "1").strip()
    sent = _done(env, job_id)
    assert sent["status"] == "succeeded"
    outcome = sent["outcome"]
    assert outcome["sent"] == 1 and outcome["message_id"] == int(message)
    assert outcome["invalid_recipients"] == [] and outcome["unprocessed_recipients"] == []
    sending_id = str(outcome["sending_id"])

    def finished() -> dict[str, Any] | None:
        found = json.loads(cli(env, "sendings", "show", sending_id, "--json"))
        return found if found["state"] == "finished" else None

    details = wait_for(finished, 30, "beat sees the sending leave MailUp's queues")
    assert [s["state"] for s in details["states"]] == ["Immediate", "finished"]
    assert f"{sending_id}  finished" in cli(env, "sendings", "list")


def test_two_beats_dispatch_a_schedule_once(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    env.set(MAILUP_JOBS_SCHEDULE_POLL=0.2)
    sandbox.add_recipient(1, "ada@example.com")
    spawn("worker", "-c", "2")
    message = _message(env)
    # (far enough ahead for the command to start on a loaded host: it refuses a past date)
    at = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    schedule_id = cli(
        env, "campaigns", "schedule", "--message-id", message, "--list-id", "1", "--at", at
    ).strip()
    assert f"{schedule_id}  scheduled" in cli(env, "campaigns", "list")
    spawn("beat")
    spawn("beat")  # a second beat by mistake: still one send

    def dispatched() -> dict[str, Any] | None:
        [row] = json.loads(cli(env, "campaigns", "list", "--json"))
        return row if row["state"] == "dispatched" else None

    row = wait_for(dispatched, 45, "a beat dispatches the due schedule")
    assert _done(env, row["job_id"])["status"] == "succeeded"
    wait_for(lambda: len(sandbox.sendings()) == 1, 10, "the one sending")
    jobs = json.loads(cli(env, "jobs", "list", "--kind", "campaign_send", "--json"))
    assert [j["id"] for j in jobs] == [row["job_id"]]
    assert len(sandbox.sendings()) == 1


@pytest.mark.parametrize("stack", ["redis+postgresql"])
def test_two_stops_within_30_s_go_one_turn_apart_and_neither_fails(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    spawn("beat")
    spawn("worker", "-c", "2")
    message = _message(env)
    sendings = []
    for _ in range(2):
        job_id = cli(
            env, "enqueue", "campaign", "--message-id", message, "--list-id", "1",
            "--datetime", (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%SZ"),
        ).strip()  # fmt: skip
        sendings.append(str(_done(env, job_id)["outcome"]["sending_id"]))

    stops = [cli(env, "sendings", "stop", sending_id).strip() for sending_id in sendings]
    finished = [_done(env, stop, timeout=90) for stop in stops]

    assert [f["status"] for f in finished] == ["succeeded", "succeeded"]
    calls = [e for e in sandbox.journal() if e["operation"] == "stop_sending"]
    assert [c["http_status"] for c in calls] == [200, 200]  # no 429: the turn was waited for
    assert calls[1]["time"] - calls[0]["time"] >= 30
    assert {s["state"] for s in sandbox.sendings()} == {"Stopped"}


def test_a_lost_answer_with_the_sending_listed_25_s_late_makes_one_sending(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    sandbox.set_sending_duration(120)
    sandbox.add_recipient(1, "ada@example.com")
    spawn("worker", "-c", "2")
    message = _message(env)
    sandbox.set_listing_delay(25)  # MailUp verifying the new sending: listed nowhere
    sandbox.force(504, operation="send_list", after_processing=True)

    job_id = cli(env, "enqueue", "campaign", "--message-id", message, "--list-id", "1").strip()
    looking = wait_for(lambda: (j := show(env, job_id))["last_error"] and j, 20, job_id)
    assert looking["status"] in ("retrying", "queued")
    assert "looking at MailUp" in looking["last_error"]
    sent = _done(env, job_id, timeout=120)

    [made] = sandbox.sendings()
    assert sent["status"] == "succeeded", sent["last_error"]
    assert (sent["outcome"]["sending_id"], sent["outcome"]["reconciled"]) == (made["id"], True)
    assert len([e for e in sandbox.journal() if e["operation"] == "send_list"]) == 1
