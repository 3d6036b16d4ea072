"""Trusted senders' StatusCodes as doc 004 has them (0 not confirmed, 2 blocked, any other
trusted), trusting again only with force, and a campaign that waits for its sender's click
but not forever — against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from producers import InvalidJob
from producers.campaigns import send_campaign
from producers.console import list_trusted_senders, trust_sender
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, mailup_jobs, make_due, run_once
from worker.engine.kind import JobContext, Refused, Waiting
from worker.jobs import trusted_senders
from worker.ledger.db import connection
from worker.ledger.models import TrustedSenderChange, utcnow
from worker.ledger.store import Claim
from worker.settings import get_settings

NEW = "news@example.com"
SENDS = {"send_list", "send_group", "send_recipient"}


def _context() -> JobContext:
    """What a campaign send's run knows: the settings and its account."""
    return JobContext(
        get_settings(), Claim("job", "campaign_send", "default", {}, 1, 5, "t/1"), "t/1"
    )


def _status(email: str) -> int:
    [row] = [r for r in list_trusted_senders() if r["email"] == email]
    return int(row["status_code"])


def test_a_sender_with_a_code_past_2_is_trusted_and_trusted_again_only_with_force(
    sandbox: Sandbox, env: Env
) -> None:
    # Given a sender MailUp's checks gave StatusCode 3, as the ledger's mirror has it
    sandbox.add_trusted_sender(NEW, status_code=3)
    trusted_senders.sync(get_settings(), "default")
    assert _status(NEW) == 3

    # Then trusting it again is refused at the door, from the CLI too, naming --force
    with pytest.raises(InvalidJob, match=r"already a confirmed trusted sender \(StatusCode 3\)"):
        trust_sender(NEW)
    refused = mailup_jobs(env, "trusted-senders", "add", NEW)
    assert refused.returncode != 0 and "already a confirmed trusted sender" in refused.stderr

    # And in the worker, from MailUp itself, for one the mirror does not know yet
    sandbox.add_trusted_sender("other@example.com", status_code=4)
    job_id = trust_sender("other@example.com")
    assert run_once(job_id) == "failed"
    assert job(job_id)["last_error_code"] == "sender_confirmed"
    assert sandbox.journal(operation="trusted_sender_create") == []

    # Forced, it goes back to NotConfirmed, as the doc says
    forced = mailup_jobs(env, "trusted-senders", "add", NEW, "--force")
    assert forced.returncode == 0, forced.stderr
    assert run_once(forced.stdout.strip()) == "succeeded"
    assert _status(NEW) == 0


def test_a_send_waiting_for_its_sender_goes_when_the_click_gives_a_code_past_2(
    sandbox: Sandbox, env: Env
) -> None:
    # Given a sender just trusted: not confirmed yet
    assert run_once(trust_sender(NEW)) == "succeeded"
    with pytest.raises(Waiting, match=NEW):
        trusted_senders.check_sender(_context(), NEW)

    # When its owner clicks and MailUp's checks give StatusCode 3, the check passes: the
    # mirror, not trusted, is read again from MailUp
    sandbox.confirm_trusted_sender(NEW, status_code=3)
    trusted_senders.check_sender(_context(), NEW)
    assert _status(NEW) == 3

    # Blocked, once beat's poll has seen it, it fails
    sandbox.block_trusted_sender(NEW)
    trusted_senders.poll(get_settings())
    with pytest.raises(Refused) as refused:
        trusted_senders.check_sender(_context(), NEW)
    assert refused.value.code == "sender_blocked"


def _age_unconfirmed(email: str, by: timedelta) -> None:
    """As if the ledger had seen ``email`` become unconfirmed ``by`` ago."""
    with connection(get_settings().ledger_url) as db:
        db.execute(
            update(TrustedSenderChange)
            .where(TrustedSenderChange.email == email, TrustedSenderChange.new_status_code == 0)
            .values(seen_at=utcnow() - by)
        )


def test_a_campaign_waits_for_its_sender_until_the_confirm_days_pass_then_fails(
    sandbox: Sandbox, env: Env
) -> None:
    # Given a campaign from a sender still unconfirmed, first seen so 7 days less 20 s ago
    made = create_message(list_id=1, subject="News", html="<p>Hi</p>")
    assert run_once(made) == "succeeded"
    message = job(made)["outcome"]["message_id"]
    assert run_once(trust_sender(NEW)) == "succeeded"
    _age_unconfirmed(NEW, timedelta(days=7, seconds=-20))
    job_id = send_campaign(message, list_id=1, sender_name="Shop", sender_address=NEW)

    # When it runs, it waits, and comes back at the deadline rather than after a full poll
    broker = Recorder()
    assert run_once(job_id, broker) == "queued"
    waiting = job(job_id)
    assert waiting["last_error_code"] == "waiting" and NEW in waiting["last_error"]
    [(_, _, countdown)] = broker.published
    assert countdown is not None and countdown <= 20

    # Then past the default MAILUP_JOBS_SENDER_CONFIRM_DAYS it fails with the reason,
    # having sent nothing
    _age_unconfirmed(NEW, timedelta(days=7, seconds=1))
    make_due(job_id)
    assert run_once(job_id) == "failed"
    failed = job(job_id)
    assert failed["last_error_code"] == "sender_unconfirmed"
    assert NEW in failed["last_error"] and "7 days" in failed["last_error"]
    assert [e for e in sandbox.journal() if e["operation"] in SENDS] == []


def test_the_confirm_days_count_from_the_last_time_the_sender_was_trusted(
    sandbox: Sandbox, env: Env
) -> None:
    # Given a sender first seen unconfirmed long ago, then confirmed, then trusted again now
    env.set(MAILUP_JOBS_SENDER_CONFIRM_DAYS=1)
    assert run_once(trust_sender(NEW)) == "succeeded"
    _age_unconfirmed(NEW, timedelta(days=3))
    with pytest.raises(Refused) as refused:
        trusted_senders.check_sender(_context(), NEW)
    assert refused.value.code == "sender_unconfirmed"
    sandbox.confirm_trusted_sender(NEW)
    trusted_senders.check_sender(_context(), NEW)
    assert run_once(trust_sender(NEW, force=True)) == "succeeded"

    # Then a send from it waits for the new click: its day starts again
    with pytest.raises(Waiting):
        trusted_senders.check_sender(_context(), NEW)
