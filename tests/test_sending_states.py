"""What the ledger says became of a sending, against the sandbox over HTTP, on SQLite and
PostgreSQL: a stop records the state MailUp's queues show after it (doc 003: a standby
sending is left as it is), and the queue poll tells a sending stopped by a job of ours from
one that finished (its message's SendHistory has it, by its start) and one that is gone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from producers.campaigns import send_campaign, sending_details, stop_sending
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import job, run_once
from worker.engine.clients import console_client
from worker.jobs import sendings
from worker.mailup.sendings import Audience, Sendings, SendOptions
from worker.settings import get_settings


@pytest.fixture
def message(sandbox: Sandbox, env: Env) -> int:
    sandbox.add_recipient(1, "ada@example.com")
    job_id = create_message(list_id=1, subject="News", html="<p>Hello</p>")
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    return int(job(job_id)["outcome"]["message_id"])


def _sent(message: int, when: datetime | str = "now") -> int:
    job_id = send_campaign(message, list_id=1, when=when)
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    return int(job(job_id)["outcome"]["sending_id"])


def _states(sending_id: int) -> list[str]:
    details = sending_details(sending_id)
    assert details is not None
    return [s["state"] for s in details["states"]]


def _stop(sending_id: int) -> str:
    job_id = stop_sending(sending_id)
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    return str(job(job_id)["outcome"]["state"])


def test_a_stopped_planned_sending_is_stopped(sandbox: Sandbox, message: int) -> None:
    sending_id = _sent(message, when=datetime.now(UTC) + timedelta(hours=1))

    assert _stop(sending_id) == "stopped"

    assert sendings.poll(get_settings()) == 0  # nothing for the poll to change
    assert _states(sending_id) == ["Deferred", "stopped"]


def test_a_stop_leaves_a_standby_sending_as_it_is_and_says_so(
    sandbox: Sandbox, message: int
) -> None:
    sending_id = _sent(message, when="undefined")

    assert _stop(sending_id) == "Undefined"  # doc 003: a stop does not change it

    assert [s["state"] for s in sandbox.sendings()] == ["Undefined"]
    assert _states(sending_id) == ["Undefined"]
    # Deleted elsewhere later: the stop had not stopped it, so it is gone, not stopped
    sandbox.set_limits(stop_delete_interval=0)
    assert Sendings(console_client(get_settings(), "default")).delete(sending_id)
    assert sendings.poll(get_settings()) == 1
    assert _states(sending_id) == ["Undefined", "gone"]


def test_a_sending_mailup_is_still_stopping_is_stopped_once_it_leaves_the_queues(
    sandbox: Sandbox, message: int
) -> None:
    sending_id = _sent(message, when=datetime.now(UTC) + timedelta(hours=1))
    sandbox.force(200, operation="stop_sending")  # answered; the sending not stopped yet

    assert _stop(sending_id) == "Deferred"
    assert _states(sending_id) == ["Deferred"]

    sandbox.set_sending(sending_id, "Stopped")  # MailUp's stop done
    assert sendings.poll(get_settings()) == 1
    assert _states(sending_id) == ["Deferred", "stopped"]


def test_a_sending_that_went_out_is_finished_one_stopped_elsewhere_gone(
    sandbox: Sandbox, message: int
) -> None:
    went, stopped = _sent(message), _sent(message, when=datetime.now(UTC) + timedelta(hours=1))
    settings = get_settings()
    sendings.poll(settings)  # their dates: the first possible one, the start

    sandbox.set_sending(went, "Finished")
    sandbox.set_sending(stopped, "Stopped")  # by someone else: in no queue, nor the history
    assert sendings.poll(settings) == 2

    assert _states(went) == ["Immediate", "finished"]
    assert _states(stopped) == ["Deferred", "gone"]


def test_a_sending_done_before_the_poll_saw_it_start_is_found_in_the_history(
    sandbox: Sandbox, message: int
) -> None:
    sandbox.set_sending_duration(0)  # it goes out and finishes at once
    done = _sent(message)

    assert sendings.poll(get_settings()) == 1

    assert _states(done) == ["Immediate", "finished"]


def test_a_standby_sending_deleted_elsewhere_is_gone_even_with_a_history(
    sandbox: Sandbox, message: int
) -> None:
    # Given the message's earlier sending in the history, then a standby one
    sandbox.set_sending_duration(0)
    _sent(message)
    time.sleep(sendings.CLOCK_MARGIN.total_seconds() + 1)  # it started before this one's job
    standby = _sent(message, when="undefined")
    assert sendings.poll(get_settings()) == 1  # the earlier one: finished

    sandbox.set_limits(stop_delete_interval=0)
    assert Sendings(console_client(get_settings(), "default")).delete(standby)
    assert sendings.poll(get_settings()) == 1

    assert _states(standby) == ["Undefined", "gone"]


def test_a_sending_made_elsewhere_and_seen_going_is_finished_by_its_start(
    sandbox: Sandbox, message: int
) -> None:
    mailup = Sendings(console_client(get_settings(), "default"))
    made = mailup.send(message, Audience(list_id=1), SendOptions()).sending_id
    assert sendings.poll(get_settings()) == 1

    sandbox.set_sending(made, "Finished")
    assert sendings.poll(get_settings()) == 1

    assert _states(made) == ["Immediate", "finished"]
