"""Account-level answers pause the channel instead of failing the backlog; probes and
operators end the pause (in this process, against the sandbox, SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest

from producers import send_email, send_sms
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, make_due, run_once
from worker.engine import pauses
from worker.jobs.registry import KINDS, channel_kinds
from worker.settings import get_settings


def _sms(n: int, **fields: object) -> str:
    return send_sms(list_id=1, recipient=f"+39335000{n:04d}", content=f"hi {n}", **fields)  # type: ignore[arg-type]


def _email(n: int) -> str:
    return send_email(sender="sender@example.com", to=[f"u{n}@example.com"], subject="s", text="t")


def _probe_round() -> int:
    """What beat does every sweep interval, once the probe interval (see probe_now) is over."""
    time.sleep(0.05)
    return pauses.probe_due(get_settings(), KINDS)


@pytest.fixture
def probe_now(env: Env) -> None:
    env.set(MAILUP_JOBS_PAUSE_PROBE=0.01)


def test_no_credits_pauses_the_channel_and_the_first_job_is_not_failed(
    sandbox: Sandbox, list_secret: str, env: Env
) -> None:
    # Given an account whose SMS credits run out after one message
    sandbox.set_account(1234, credits=1)
    first, second, third = _sms(1), _sms(2), _sms(3)

    # When the second meets 205, the channel pauses; the third waits without calling
    assert run_once(first) == "succeeded"
    assert run_once(second) == "retrying"
    assert run_once(third) == "queued"

    row = job(second)
    assert [(a["outcome"], a["mailup_code"]) for a in row["attempts"]] == [("paused", "205")]
    assert job(third)["attempts"] == []
    [paused] = pauses.listing(get_settings())
    assert (paused.scope, paused.condition, paused.until) == ("sms", "no_credits", None)
    assert "NO CREDITS" in paused.reason

    # Then the operator buys credits and resumes: both go out, once
    sandbox.set_account(1234, credits=100)
    assert pauses.lift(get_settings(), "default", "sms", channel_kinds("sms"))
    for job_id in (second, third):
        assert run_once(job_id) == "succeeded"
    assert len(sandbox.deliveries()) == 3
    assert pauses.listing(get_settings()) == []


def _run_all(jobs: list[str]) -> list[str | None]:
    results = []
    for job_id in jobs:
        make_due(job_id)
        results.append(run_once(job_id))
    return results


def test_a_probe_send_ends_the_pause_by_itself(
    sandbox: Sandbox, list_secret: str, probe_now: None
) -> None:
    sandbox.set_account(1234, credits=0)
    jobs = [_sms(n) for n in range(4)]
    assert _run_all(jobs) == ["retrying", "queued", "queued", "queued"]

    # While credits are still missing the probe (one job, the most urgent) fails again,
    # paused, and the others stay put
    _probe_round()
    [paused] = pauses.listing(get_settings())
    assert paused.probe_job_id in jobs
    assert sorted(_run_all(jobs), key=str) == ["queued", "queued", "queued", "retrying"]
    assert sandbox.deliveries() == []

    # Credits back: the next probe is sent, the pause ends, the rest wake and go out
    sandbox.set_account(1234, credits=100)
    _probe_round()
    [paused] = pauses.listing(get_settings())
    probe = paused.probe_job_id
    assert probe is not None
    assert _run_all([probe]) == ["succeeded"]
    assert pauses.listing(get_settings()) == []
    assert _run_all([j for j in jobs if j != probe]) == ["succeeded"] * 3
    assert len(sandbox.deliveries()) == 4


def test_paused_runs_do_not_spend_the_retry_budget(
    sandbox: Sandbox, list_secret: str, env: Env
) -> None:
    env.set(MAILUP_JOBS_MAX_ATTEMPTS=2)
    sandbox.set_account(1234, credits=0)
    job_id = _sms(1)
    for _ in range(3):
        make_due(job_id)
        pauses.lift(get_settings(), "default", "sms", channel_kinds("sms"))
        assert run_once(job_id) == "retrying"

    sandbox.set_faults(rate_429=1.0, retry_after=0)
    sandbox.set_account(1234, credits=10)
    pauses.lift(get_settings(), "default", "sms", channel_kinds("sms"))
    make_due(job_id)
    assert run_once(job_id) == "retrying"  # the first counted attempt: 429
    make_due(job_id)
    assert run_once(job_id) == "failed"  # the second: the budget of 2 is spent
    outcomes = [a["outcome"] for a in job(job_id)["attempts"]]
    assert outcomes == ["paused", "paused", "paused", "transient", "permanent"]


def test_a_list_without_a_sender_name_pauses_only_that_list(sandbox: Sandbox, env: Env) -> None:
    for list_id in (1, 3):  # list 3 has no default SMS sender on the sandbox
        sandbox.create_list_secret(list_id)
    on_list_3 = send_sms(list_id=3, recipient="+393350000001", content="a")
    also_on_3 = send_sms(list_id=3, recipient="+393350000002", content="b")
    named = send_sms(list_id=3, recipient="+393350000003", content="c", sender="Shop")
    on_list_1 = send_sms(list_id=1, recipient="+393350000004", content="d")

    assert run_once(on_list_3) == "retrying"
    assert job(on_list_3)["attempts"][0]["mailup_code"] == "104"
    assert run_once(also_on_3) == "queued"  # held by the list's pause
    assert run_once(named) == "succeeded"  # a sender of its own: not concerned
    assert run_once(on_list_1) == "succeeded"  # another list: not concerned
    [paused] = pauses.listing(get_settings())
    assert paused.scope == "sms:list:3"

    # `accounts resume --channel sms` ends the list's pause too
    assert pauses.lift(get_settings(), "default", "sms", channel_kinds("sms"))
    assert pauses.listing(get_settings()) == []


def test_a_suspended_account_pauses_email_until_listuserinfo_says_it_may_send(
    sandbox: Sandbox, env: Env, probe_now: None
) -> None:
    sandbox.set_account(1234, status="suspended")
    first, second = _email(1), _email(2)

    assert run_once(first) == "retrying"
    assert run_once(second) == "queued"
    assert job(first)["attempts"][0]["mailup_code"] == "107"
    [paused] = pauses.listing(get_settings())
    assert (paused.scope, paused.condition) == ("email", "account_suspended")

    # ListUserInfo still says no: the pause stays, nothing is sent
    assert _probe_round() == 0
    assert len(pauses.listing(get_settings())) == 1

    # Reactivated: the probe ends the pause, and both go out once
    sandbox.set_account(1234, status="active")
    assert _probe_round() == 1
    for job_id in (first, second):
        make_due(job_id)
        assert run_once(job_id) == "succeeded"
    assert len(sandbox.emails()) == 2
    assert sandbox.journal(operation="send_message", processed=False)[0]["code"] == "107"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"smtp_secret": "wrong"}, "102"),
        ({"deleted": True}, "112"),
        ({"is_enabled": False}, "103"),
    ],
)
def test_every_email_answer_that_stops_the_account_pauses_it(
    sandbox: Sandbox, env: Env, setup: dict[str, object], code: str
) -> None:
    if "smtp_secret" in setup:
        env.set(MAILUP_SMTP_SECRET=setup["smtp_secret"])
    else:
        sandbox.set_smtp_user("s1234_1", **setup)
    job_id = _email(1)

    assert run_once(job_id) == "retrying"
    assert job(job_id)["attempts"][0]["mailup_code"] == code
    assert len(pauses.listing(get_settings())) == 1
    assert sandbox.emails() == []


def test_waiting_for_a_pause_publishes_nothing_to_the_broker(
    sandbox: Sandbox, list_secret: str
) -> None:
    # A pause without a date may last hours: the jobs wait in the ledger, not in Redis.
    sandbox.set_account(1234, credits=0)
    recorder = Recorder()
    first, second = _sms(1), _sms(2)
    assert run_once(first, recorder) == "retrying"
    assert run_once(second, recorder) == "queued"
    assert recorder.published == []


def test_wrong_console_credentials_pause_sms_rather_than_fail_it(
    sandbox: Sandbox, env: Env
) -> None:
    from sandbox.state import list_guid
    from worker.jobs import list_credentials
    from worker.ledger.db import connection

    # Given a list whose GUID the ledger knows but whose secret the worker must read from
    # MailUp (HTTP Basic with the console user), and a wrong console password
    sandbox.create_list_secret(1)
    settings = get_settings()
    with connection(settings.ledger_url) as db:
        keys = list_credentials.ListKeys(list_guid(1), None)
        list_credentials.save(db, settings, "default", 1, keys)
    env.set(MAILUP_PASSWORD="not-the-password")
    job_id = _sms(1)

    # Then MailUp's 250 (access denied) pauses the account's SMS: nothing can go out
    assert run_once(job_id) == "retrying"
    assert job(job_id)["attempts"][0]["mailup_code"] == "250"
    [paused] = pauses.listing(get_settings())
    assert (paused.scope, paused.condition) == ("sms", "access_denied")
    assert sandbox.deliveries() == []


def test_a_console_password_refused_by_oauth_pauses_sms_too(sandbox: Sandbox, env: Env) -> None:
    # Reading the list's GUID needs an OAuth2 token: the password grant is refused
    sandbox.create_list_secret(1)
    env.set(MAILUP_PASSWORD="not-the-password")
    job_id = _sms(1)

    assert run_once(job_id) == "retrying"
    assert job(job_id)["attempts"][0]["mailup_code"] == "invalid_grant"
    [paused] = pauses.listing(get_settings())
    assert (paused.scope, paused.condition) == ("sms", "access_denied")
