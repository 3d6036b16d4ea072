"""Trusted senders and SMTP+ users through jobs, against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from producers.console import (
    create_smtp_user,
    disable_trusted_sender,
    list_trusted_senders,
    reset_smtp_password,
    smtp_password,
    smtp_priorities,
    smtp_user_info,
    trust_sender,
)
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, die_after_claim, job, make_due, run_once
from worker.engine import sweeper
from worker.jobs import trusted_senders
from worker.jobs.registry import requeue_if_called
from worker.ledger.db import transaction
from worker.ledger.models import TrustedSenderChange
from worker.settings import get_settings

NEW = "news@example.com"


def _trusted(email: str) -> dict[str, object]:
    [row] = [r for r in list_trusted_senders() if r["email"] == email]
    return row


def test_a_trusted_sender_is_mirrored_and_its_changes_recorded(sandbox: Sandbox, env: Env) -> None:
    assert run_once(trust_sender(NEW)) == "succeeded"
    assert _trusted(NEW)["status_code"] == 0

    sandbox.confirm_trusted_sender(NEW)
    assert trusted_senders.poll(get_settings()) >= 1

    assert _trusted(NEW)["status_code"] == 1
    with transaction(get_settings().ledger_url) as session:
        changes = session.scalars(
            select(TrustedSenderChange).where(TrustedSenderChange.email == NEW)
        ).all()
    assert [(c.old_status_code, c.new_status_code) for c in changes] == [(None, 0), (0, 1)]
    assert changes[1].seen_at >= changes[0].seen_at

    assert run_once(disable_trusted_sender(NEW)) == "succeeded"  # its id from the mirror
    assert _trusted(NEW)["status_code"] == 2


def test_smtp_user_creation_waits_for_confirmation_then_creates(sandbox: Sandbox, env: Env) -> None:
    # Given a sender that is not confirmed yet
    run_once(trust_sender(NEW))
    job_id = create_smtp_user(list_id=1, trusted_senders=[NEW], note="shop")

    # When the job runs, it waits (no attempt spent, nothing asked of MailUp)
    assert run_once(job_id) == "queued"
    waiting = job(job_id)
    assert waiting["last_error_code"] == "waiting" and NEW in waiting["last_error"]
    assert waiting["attempts"] == []

    # Then once the sender confirms, beat's poll wakes it and it creates the user
    sandbox.confirm_trusted_sender(NEW)
    trusted_senders.poll(get_settings())
    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["password_stored"] is True and "Password" not in outcome
    created = {u["username"]: u for u in sandbox.smtp_users()}[outcome["username"]]
    assert smtp_password(outcome["username"]) == created["secret"]


def test_a_blocked_sender_fails_the_creation_with_the_reason(sandbox: Sandbox, env: Env) -> None:
    run_once(trust_sender(NEW))
    sandbox.block_trusted_sender(NEW)
    job_id = create_smtp_user(list_id=1, trusted_senders=[NEW])

    assert run_once(job_id) == "failed"
    row = job(job_id)
    assert row["last_error_code"] == "sender_blocked" and NEW in row["last_error"]
    assert len(sandbox.smtp_users()) == 1  # only the seeded one


def test_an_unconfirmed_sender_past_the_deadline_fails_the_creation(
    sandbox: Sandbox, env: Env
) -> None:
    env.set(MAILUP_JOBS_SENDER_CONFIRM_DAYS=0.5 / 86400)  # half a second
    run_once(trust_sender(NEW))
    job_id = create_smtp_user(list_id=1, trusted_senders=[NEW])
    time.sleep(0.6)

    assert run_once(job_id) == "failed"
    assert job(job_id)["last_error_code"] == "sender_not_confirmed"


def test_a_reset_password_is_stored_encrypted(sandbox: Sandbox, env: Env) -> None:
    job_id = reset_smtp_password(list_id=1, username="s1234_1")

    assert run_once(job_id) == "succeeded"
    new = {u["username"]: u for u in sandbox.smtp_users()}["s1234_1"]["secret"]
    assert smtp_password("s1234_1") == new
    assert new not in str(job(job_id))
    with transaction(get_settings().ledger_url) as session:
        raw = session.connection().exec_driver_sql("SELECT password_encrypted FROM smtp_users")
        assert new not in str(list(raw))


@pytest.mark.parametrize("loss", ["500", "502", "504", "dropped"])
def test_a_reset_whose_answer_is_lost_is_reset_again_and_its_password_sends(
    sandbox: Sandbox, env: Env, loss: str
) -> None:
    from producers import send_email

    # Given MailUp resets the password (the old one is now invalid), then the answer is lost
    env.set(MAILUP_SMTP_SECRET="")  # nothing in settings: only the stored password can send
    trusted_senders.sync(get_settings(), "default")  # the OAuth2 token first
    if loss == "dropped":
        sandbox.set_faults(drop_after_rate=1.0)
    else:
        sandbox.force(int(loss), operation="smtpplus_reset", after_processing=True)
    job_id = reset_smtp_password(list_id=1, username="s1234_1")

    # Then the job resets again rather than wait in doubt, and keeps the last password
    assert run_once(job_id) == "retrying"
    sandbox.set_faults()
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert [a["outcome"] for a in job(job_id)["attempts"]] == ["unknown", "succeeded"]
    assert len(sandbox.journal(operation="smtpplus_reset", processed=True)) == 2
    last = {u["username"]: u for u in sandbox.smtp_users()}["s1234_1"]["secret"]
    assert smtp_password("s1234_1") == last

    email = send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")
    assert run_once(email) == "succeeded"
    assert [e["secret_valid"] for e in sandbox.journal(operation="send_message")] == [True]


def test_a_reset_whose_worker_died_mid_call_is_reset_again(sandbox: Sandbox, env: Env) -> None:
    job_id = reset_smtp_password(list_id=1, username="s1234_1")
    die_after_claim(job_id, opened_call=True)

    settings = get_settings()
    report = sweeper.sweep(settings, Recorder(), requeue_if_called=requeue_if_called(settings))

    assert (report.requeued, report.in_doubt) == (1, 0)
    assert run_once(job_id) == "succeeded"
    last = {u["username"]: u for u in sandbox.smtp_users()}["s1234_1"]["secret"]
    assert smtp_password("s1234_1") == last


def test_operators_read_priorities_and_user_status(sandbox: Sandbox, env: Env) -> None:
    assert [p["name"] for p in smtp_priorities()][:2] == ["VeryHigh", "High"]
    sandbox.set_smtp_user("s1234_1", admin_block=True)

    [user] = smtp_user_info("s1234_1")

    assert (user["username"], user["admin_block"]) == ("s1234_1", True)


def test_a_waiting_creation_is_not_retried_into_failure(sandbox: Sandbox, env: Env) -> None:
    env.set(MAILUP_JOBS_MAX_ATTEMPTS=2)
    run_once(trust_sender(NEW))
    job_id = create_smtp_user(list_id=1, trusted_senders=[NEW])

    for _ in range(4):  # waiting never spends the attempt budget
        make_due(job_id)
        assert run_once(job_id) == "queued"
    assert job(job_id)["attempt_count"] == 0


def test_a_reset_password_becomes_the_accounts_smtp_secret(sandbox: Sandbox, env: Env) -> None:
    from producers import send_email

    env.set(MAILUP_SMTP_SECRET="")  # nothing in settings: the stored password serves
    assert run_once(reset_smtp_password(list_id=1, username="s1234_1")) == "succeeded"

    job_id = send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")

    assert run_once(job_id) == "succeeded"
    assert len(sandbox.emails()) == 1


def test_list_user_info_as_a_job_records_the_users_status(sandbox: Sandbox, env: Env) -> None:
    from producers.console import smtp_user_info_job
    from worker.ledger.models import SmtpUserStatus

    sandbox.set_smtp_user("s1234_1", is_enabled=False)
    job_id = smtp_user_info_job("s1234_1")

    assert run_once(job_id) == "succeeded"
    assert job(job_id)["outcome"]["users"][0]["is_enabled"] is False
    with transaction(get_settings().ledger_url) as session:
        status = session.scalars(select(SmtpUserStatus)).one()
    assert (status.username, status.is_enabled) == ("s1234_1", False)


def test_addresses_match_whatever_their_case(sandbox: Sandbox, env: Env) -> None:
    # Given a sender MailUp stores as "News@Example.com"
    sandbox.add_trusted_sender("News@Example.com", status_code=1)
    trusted_senders.sync(get_settings(), "default")

    # Then the ledger finds it under any case, and disabling it sends MailUp's own spelling
    assert trusted_senders.statuses(get_settings(), "default", ["news@EXAMPLE.com"]) == {
        "news@EXAMPLE.com": 1
    }
    assert run_once(disable_trusted_sender("NEWS@example.com")) == "succeeded"
    assert _trusted("News@Example.com")["status_code"] == 2
    [delete] = sandbox.journal(operation="trusted_sender_delete")
    assert delete["http_status"] == 200


def test_trusting_a_confirmed_sender_again_is_refused_unless_forced(
    sandbox: Sandbox, env: Env
) -> None:
    from producers import InvalidJob

    sandbox.add_trusted_sender(NEW, status_code=1)
    trusted_senders.sync(get_settings(), "default")

    # At the door, from the ledger's mirror
    with pytest.raises(InvalidJob, match="already a confirmed trusted sender") as refused:
        trust_sender(NEW.upper())
    assert refused.value.field == "email"

    # In the worker, from MailUp itself (the mirror may be behind)
    sandbox.add_trusted_sender("other@example.com", status_code=1)
    job_id = trust_sender("other@example.com")
    assert run_once(job_id) == "failed"
    assert job(job_id)["last_error_code"] == "sender_confirmed"
    assert sandbox.journal(operation="trusted_sender_create") == []

    # Forced, it goes back to NotConfirmed as the docs say
    assert run_once(trust_sender(NEW, force=True)) == "succeeded"
    assert _trusted(NEW)["status_code"] == 0


def test_a_disabled_sender_cannot_be_trusted_again(sandbox: Sandbox, env: Env) -> None:
    sandbox.add_trusted_sender(NEW, status_code=2)
    job_id = trust_sender(NEW)  # the mirror does not know it yet: the worker finds out

    assert run_once(job_id) == "failed"
    row = job(job_id)
    assert (
        row["last_error_code"] == "sender_blocked"
        and "will not trust it again" in row["last_error"]
    )


def test_paging_follows_the_page_size_mailup_chooses(sandbox: Sandbox, env: Env) -> None:
    # Given 7 senders and a MailUp that answers pages of 2 whatever is asked
    for n in range(6):
        sandbox.add_trusted_sender(f"sender{n}@example.com", status_code=n % 2)
    sandbox.set_max_page_size(2)

    trusted_senders.sync(get_settings(), "default")

    # Then every sender is mirrored, each page asked once
    assert len(list_trusted_senders()) == 7
    assert len(sandbox.journal(operation="trusted_senders_list")) == 4


def test_a_password_reset_here_is_what_sends_even_with_the_old_one_in_settings(
    sandbox: Sandbox, env: Env
) -> None:
    from producers import send_email

    # Given MAILUP_SMTP_SECRET holds the password the reset makes invalid
    assert run_once(reset_smtp_password(list_id=1, username="s1234_1")) == "succeeded"

    job_id = send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")

    # Then the new password sends, first time: MailUp never sees the old one
    assert run_once(job_id) == "succeeded"
    assert [e["secret_valid"] for e in sandbox.journal(operation="send_message")] == [True]


def test_a_password_changed_elsewhere_falls_back_to_the_setting(sandbox: Sandbox, env: Env) -> None:
    from producers import send_email
    from sandbox.state import DEFAULT_SMTP_SECRET

    # Given a password reset here, then set back to the settings' one outside mailup-jobs
    assert run_once(reset_smtp_password(list_id=1, username="s1234_1")) == "succeeded"
    with sandbox.state.lock:
        sandbox.state.smtp_users["s1234_1"].secret = DEFAULT_SMTP_SECRET

    job_id = send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")

    # Then the stale stored one is refused (102: nothing sent) and the setting sends
    assert run_once(job_id) == "succeeded"
    assert [e["secret_valid"] for e in sandbox.journal(operation="send_message")] == [False, True]
    assert len(sandbox.emails()) == 1
