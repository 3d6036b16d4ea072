"""Transactional email jobs against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from producers import (
    Attachment,
    InvalidJob,
    MergeTagCaseWarning,
    send_email,
    send_email_template,
)
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, job_count, make_due, run_once
from worker.ledger import store
from worker.ledger.db import connection, transaction
from worker.ledger.models import EmailRecipient, Job, utcnow
from worker.settings import get_settings

PNG = bytes(range(256)) * 40  # not text: any mangling shows
PDF = b"%PDF-1.4\n" + bytes(reversed(range(256))) * 20


def _email(**overrides: object) -> str:
    fields: dict[str, object] = {
        "sender": "Shop <sender@example.com>",
        "to": ["ada@example.com"],
        "subject": "Your order",
        "text": "Thanks!",
    }
    fields.update(overrides)
    return send_email(**fields)  # type: ignore[arg-type]


def test_attachments_and_embedded_images_arrive_intact(sandbox: Sandbox, env: Env) -> None:
    job_id = _email(
        to=["Ada <ada@example.com>"],
        cc=["bob@example.com"],
        bcc=["audit@example.com"],
        html='<p>Thanks!</p><img src="cid:logo.png">',
        attachments=[Attachment("invoice.pdf", PDF)],
        embedded_images=[Attachment("logo.png", PNG)],
        campaign_code="orders",
    )

    assert run_once(job_id) == "succeeded"

    [email] = sandbox.emails()
    [attached] = email["attachments"]
    [embedded] = email["embedded_images"]
    assert base64.b64decode(attached["body_base64"]) == PDF
    assert attached["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert base64.b64decode(embedded["body_base64"]) == PNG
    assert (embedded["filename"], embedded["content_id"]) == ("logo.png", "logo.png")
    assert email["campaign_code"] == "orders"
    outcome = job(job_id)["outcome"]
    assert (outcome["status"], outcome["code"], outcome["message"]) == ("done", "0", "Ok")
    assert [(r["role"], r["email"]) for r in outcome["recipients"]] == [
        ("to", "ada@example.com"),
        ("cc", "bob@example.com"),
        ("bcc", "audit@example.com"),
    ]


def test_the_ledger_answers_what_was_sent_to_an_address(sandbox: Sandbox, env: Env) -> None:
    first = _email(to=["ada@example.com", "bob@example.com"])
    _email(to=["carol@example.com"])
    run_once(first)

    with transaction(get_settings().ledger_url) as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.finished_at, Job.outcome)
            .join(EmailRecipient, EmailRecipient.job_id == Job.id)
            .where(EmailRecipient.email == "bob@example.com")
        ).all()
    assert [(r.id, r.status, r.outcome["code"]) for r in rows] == [(first, "succeeded", "0")]
    assert rows[0].finished_at is not None


def test_a_template_send_fills_lowercase_merge_tags(sandbox: Sandbox, env: Env) -> None:
    job_id = send_email_template(
        template_id=7,
        sender="sender@example.com",
        to=["ada@example.com"],
        dynamic_fields={"firstname": "Ada", "lastname": "Lovelace"},
    )

    assert run_once(job_id) == "succeeded"
    [email] = sandbox.emails()
    assert "Hello Ada Lovelace" in email["rendered_html"]


def test_capitalised_merge_tags_are_warned_about(env: Env) -> None:
    with pytest.warns(MergeTagCaseWarning, match="FirstName"):
        send_email_template(
            template_id=7,
            sender="sender@example.com",
            to=["ada@example.com"],
            dynamic_fields={"FirstName": "Ada"},
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": []}, "to"),
        ({"to": ["not-an-address"]}, "to.0.email"),
        ({"sender": "nobody"}, "sender.email"),
        ({"text": None}, "html"),
        ({"subject": "a\r\nBcc: x@example.com"}, "subject"),  # header injection
        ({"subject": "line\nbreak"}, "subject"),
        ({"extended_headers": {"X-Tag": "a\r\nBcc: x@example.com"}}, "extended_headers.X-Tag"),
        ({"to": [("Ada\r\nBcc: x@example.com", "ada@example.com")]}, "to.0.name"),
        ({"campaign": {"schedule": datetime(2030, 1, 1, 9, 0)}}, "campaign.schedule"),  # naive
        ({"attachments": [Attachment("../etc/passwd", b"x")]}, "attachments.0.filename"),
        ({"attachments": [Attachment("big.bin", b"x" * (10 * 2**20 + 1))]}, "attachments"),
        ({"campaign": {"priority": 9}}, "campaign.priority"),
    ],
)
def test_bad_email_input_names_the_field_and_writes_nothing(
    env: Env, change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        _email(**change)
    assert field in raised.value.errors, raised.value.errors
    assert job_count() == 0


def test_an_unknown_template_fails_once_with_its_code(sandbox: Sandbox, env: Env) -> None:
    job_id = send_email_template(template_id=999, sender="sender@example.com", to=["a@example.com"])

    assert run_once(job_id) == "failed"
    make_due(job_id)
    assert run_once(job_id) is None
    row = job(job_id)
    assert (row["last_error_code"], row["outcome"]["code"]) == ("111", "111")
    assert [a["outcome"] for a in row["attempts"]] == ["permanent"]


def test_a_server_shedding_load_is_retried_then_sends(sandbox: Sandbox, env: Env) -> None:
    sandbox.force(503, operation="send_message", retry_after=1)  # before processing
    job_id = _email()

    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert [a["outcome"] for a in job(job_id)["attempts"]] == ["transient", "succeeded"]
    assert len(sandbox.emails()) == 1


def test_a_blocked_smtp_user_pauses_the_accounts_email_until_block_until(
    sandbox: Sandbox, env: Env
) -> None:
    # Given an SMTP+ user blocked for a few seconds, and three emails waiting
    until = utcnow() + timedelta(seconds=3)
    sandbox.set_smtp_user("s1234_1", block_until=until.isoformat())
    first, second, third = _email(), _email(), _email()
    recorder = Recorder()

    # When the first meets the block, the account's email pauses; the others wait unsent
    assert run_once(first, recorder) == "retrying"
    assert run_once(second, recorder) == "queued"
    assert run_once(third, recorder) == "queued"
    assert [(a["outcome"], a["mailup_code"]) for a in job(first)["attempts"]] == [("paused", "105")]
    assert job(second)["attempts"] == [] and job(second)["attempt_count"] == 0
    assert all(countdown and countdown >= 2 for _, _, countdown in recorder.published)
    assert len(sandbox.journal(operation="send_message")) == 1  # nobody else tried

    # Then once BlockUntil has passed they all go out, none failed
    sandbox.set_smtp_user("s1234_1", block_until=None)
    time.sleep((until - utcnow()).total_seconds() + 1.2)  # the pause keeps a 1 s grace
    for job_id in (first, second, third):
        make_due(job_id)
        assert run_once(job_id) == "succeeded"
    assert len(sandbox.emails()) == 3


def test_an_admin_block_pauses_until_an_operator_resumes(sandbox: Sandbox, env: Env) -> None:
    from worker.engine import pauses

    sandbox.set_smtp_user("s1234_1", admin_block=True)
    first, second = _email(), _email()
    assert run_once(first) == "retrying"
    assert run_once(second) == "queued"

    sandbox.set_smtp_user("s1234_1", admin_block=False)
    make_due(second)
    recorder = Recorder()
    assert run_once(second, recorder) == "queued"  # still paused: MailUp gave no end date

    # Its wait is too long for a broker countdown: the sweeper publishes it once it is due.
    assert recorder.published == []
    make_due(second)
    with connection(get_settings().ledger_url) as db:
        assert second in [job_id for job_id, _ in store.due_for_publishing(db, republish_after=60)]

    assert pauses.lift(get_settings(), "default", "email", ["send_message", "send_template"])
    for job_id in (first, second):
        make_due(job_id)
        assert run_once(job_id) == "succeeded"


def test_an_idempotency_key_covers_the_attachment_bytes(env: Env) -> None:
    from sqlalchemy import func

    from worker.ledger.models import JobPart

    first = _email(attachments=[Attachment("a.pdf", PDF)], idempotency_key="receipt-1")
    again = _email(attachments=[Attachment("a.pdf", PDF)], idempotency_key="receipt-1")
    with pytest.raises(InvalidJob) as changed:
        _email(attachments=[Attachment("a.pdf", PDF + b"!")], idempotency_key="receipt-1")

    assert again == first
    assert changed.value.field == "idempotency_key"
    with transaction(get_settings().ledger_url) as session:
        parts = session.scalar(select(func.count()).select_from(JobPart))
        recipients = session.scalar(select(func.count()).select_from(EmailRecipient))
    assert (job_count(), parts, recipients) == (1, 1, 1)


def test_more_than_five_attachments_go_out(sandbox: Sandbox, env: Env) -> None:
    # Five slots is a rule of Console messages; transactional email has none.
    files = [Attachment(f"part{n}.txt", f"part {n}".encode()) for n in range(7)]
    job_id = _email(attachments=files)

    assert run_once(job_id) == "succeeded"
    [sent] = sandbox.emails()
    assert [p["filename"] for p in sent["attachments"]] == [f"part{n}.txt" for n in range(7)]


def test_a_schedule_goes_to_mailup_in_its_utc_form(env: Env) -> None:
    from worker.jobs.email import SendMessage, message

    rome = timezone(timedelta(hours=1))
    job_id = _email(campaign={"schedule": datetime(2030, 1, 1, 10, 30, tzinfo=rome)})

    payload = SendMessage.model_validate(job(job_id)["payload"])
    assert message(payload, {}).dto()["XSmtpAPI"]["Schedule"] == "2030-01-01 09:30:00Z"


def test_a_5xx_after_mailup_accepted_the_email_is_in_doubt_not_sent_twice(
    sandbox: Sandbox, env: Env
) -> None:
    sandbox.force(502, operation="send_message", after_processing=True)
    job_id = _email()

    assert run_once(job_id) == "in_doubt"
    make_due(job_id)
    assert run_once(job_id) is None
    assert len(sandbox.emails()) == 1
