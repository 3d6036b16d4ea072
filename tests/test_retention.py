"""Retention on SQLite and PostgreSQL: a purge removes the personal data of old finished jobs
from every table and keeps every count and cost of the audits, and ``ledger recipient``
still finds the purged jobs by the recipient's keyed hash; beat purges daily when
MAILUP_JOBS_RETENTION_DAYS is set; the migration hashes the recipients already there."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select, update

from producers import audit as api
from producers import send_sms
from producers.campaigns import schedule_campaign
from producers.errors import TransactionalIsBetterWarning
from producers.imports import import_recipients
from producers.imports import show as show_import
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import job, run_once
from tests.test_audits import (
    ADA,
    BOB,
    CAROL,
    GONE,
    OPTED_OUT,
    PDF,
    PHONE,
    PHONE_00,
    fill_ledger,
    run_cli,
)
from worker import beat
from worker.jobs import schedules
from worker.ledger.crypto import recipient_hasher
from worker.ledger.db import connection, dispose_all, engine_for
from worker.ledger.migrate import alembic_config
from worker.ledger.models import (
    Base,
    CampaignSchedule,
    EmailRecipient,
    Job,
    JobRecipient,
    RecipientImport,
    SendingRecipient,
    utcnow,
)
from worker.settings import get_settings

IMPORTED = ("imported@example.com", "Imported Person", "3391234567")
REFUSED = ("refused-address", "3390000000")
# What must not survive a purge anywhere in the ledger (the sender's own address may).
PERSONAL = [
    PHONE.removeprefix("+"),
    PHONE_00.removeprefix("00"),
    OPTED_OUT.removeprefix("+"),
    ADA,
    BOB,
    GONE,
    CAROL,
    "Ada Lovelace",
    "Code 1",
    "Our December offer",
    "Thanks for your order",
    "Your order, Ada",
    *IMPORTED,
    *REFUSED,
]
RECIPIENTS = (PHONE, PHONE_00, OPTED_OUT, ADA, BOB, GONE, CAROL)


def _finish_everything(env: Env, sandbox: Sandbox, jobs: dict[str, str]) -> None:
    """What an operator does before jobs can age out: in_doubt ones resolved, the queued
    one cancelled (a purge never touches a job still waiting for someone)."""
    run_cli(env, "jobs", "resolve", jobs["doubt"], "--sent", "--delivery-id", "77")
    run_cli(env, "jobs", "resolve", jobs["dropped"], "--not-sent")
    assert run_once(jobs["dropped"]) == "succeeded"
    run_cli(env, "jobs", "cancel", jobs["queued"])


def _more_personal_rows() -> None:
    """An import with a refused row, and a campaign scheduled to one address and sent."""
    report = import_recipients(
        [
            {"Email": IMPORTED[0], "Name": IMPORTED[1], "MobileNumber": IMPORTED[2]},
            {"Email": REFUSED[0], "MobileNumber": REFUSED[1]},
        ],
        list_id=1,
    )
    assert len(report.rejected) == 1
    found = show_import(report.import_id)
    assert found is not None
    for chunk in found["chunks"]:
        assert run_once(chunk["job_id"]) == "succeeded"
    made = create_message(list_id=1, subject="January news", html="<p>Hi</p>")
    assert run_once(made) == "succeeded"
    message_id = job(made)["outcome"]["message_id"]
    with pytest.warns(TransactionalIsBetterWarning):
        schedule_campaign(message_id, at=utcnow() + timedelta(minutes=5), list_id=1, to=CAROL)
    settings = get_settings()
    with connection(settings.ledger_url) as db:
        db.execute(update(CampaignSchedule).values(due_at=utcnow() - timedelta(seconds=1)))
    assert schedules.dispatch_due(settings) == 1
    [scheduled] = [j for j in api.list_jobs(kind="campaign_send") if j["status"] == "queued"]
    assert run_once(scheduled["id"]) == "succeeded"


def _age(days: int) -> None:
    """Time passes: every finished job, import and schedule is ``days`` old."""
    then = utcnow() - timedelta(days=days)
    with connection(get_settings().ledger_url) as db:
        db.execute(update(Job).where(Job.finished_at.is_not(None)).values(finished_at=then))
        db.execute(update(RecipientImport).values(created_at=then))
        db.execute(update(CampaignSchedule).values(dispatched_at=then))


def _audits() -> dict[str, Any]:
    """Every audit's answer, as the CLI's JSON would give it."""

    def rows(found: list[Any]) -> list[dict[str, Any]]:
        return [row.as_dict() for row in found]

    return {
        "costs": {by: rows(api.sms_costs(by)) for by in ("campaign", "day", "list")},  # type: ignore[arg-type]
        "sends": rows(api.sends_by_day()),
        "failures": rows(api.failures_by_code()),
        "recipients": {r: rows(api.sent_to(r)) for r in RECIPIENTS},
    }


def _leftovers(needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every personal string still anywhere in the ledger."""
    found = []
    with engine_for(get_settings().ledger_url).connect() as db:
        for table in Base.metadata.sorted_tables:
            for row in db.execute(select(table)).mappings():
                for column, value in row.items():
                    text = _text(value)
                    found += [(table.name, column, n) for n in needles if _within(n, text)]
    return found


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _within(needle: str, text: str) -> bool:
    """Addresses whatever their case; the rest as written."""
    return needle.lower() in text.lower() if "@" in needle else needle in text


def test_a_purge_removes_personal_data_everywhere_and_keeps_every_audit(
    env: Env, sandbox: Sandbox
) -> None:
    # Given a ledger of every kind of job that addresses people, all finished 100 days ago
    filled = fill_ledger(sandbox)
    _more_personal_rows()
    _finish_everything(env, sandbox, filled.jobs)
    _age(100)
    before = _audits()
    assert {n for _, _, n in _leftovers(PERSONAL)} == set(PERSONAL)  # all there to begin with
    assert _leftovers([PDF.decode()])  # and the attachment's bytes

    # When an operator purges what is older than 90 days
    result = run_cli(env, "ledger", "purge", "--older-than", "90d")

    # Then no number, address, name, body, attachment or imported row is left anywhere
    jobs = len(api.list_jobs(limit=1000))
    assert result.stdout.strip() == (
        f"purged {jobs} jobs, 1 refused import rows, 1 campaign schedules"
    )
    assert _leftovers([*PERSONAL, PDF.decode()]) == []
    # ... and every audit answers exactly as before: counts, costs, codes, recipients
    assert _audits() == before
    carol = {(a["role"], a["outcome"]) for a in before["recipients"][CAROL]}
    assert carol == {("list", "unprocessed"), ("campaign", "sent")}  # a list send, a scheduled one
    for recipient in RECIPIENTS:
        assert before["recipients"][recipient], recipient
    # ... from the CLI too, by the hash of the number however it is written
    shown = json.loads(
        run_cli(env, "ledger", "recipient", "0039 335 000 0001", "--format", "json").stdout
    )
    assert shown == before["recipients"][PHONE]

    # What a purged job still tells: its audit fields, not its content
    sms = job(filled.jobs["otp"])
    assert sms["payload"] == {
        "list_id": 1,
        "template_id": None,
        "campaign_code": "otp",
        "is_unicode": False,
        "sender": None,
    }
    assert sms["purged_at"] and sms["outcome"]["recipient"] is None
    assert (sms["outcome"]["cost"], sms["outcome"]["campaign_code"]) == (1.0, "otp")
    email = job(filled.jobs["email"])
    campaign = {"campaign_code": "orders", "campaign_name": None, "campaign_report": None}
    assert email["payload"] == {
        "charset": "utf-8",
        "campaign": {**campaign, "priority": None, "schedule": None},
    }
    assert [(r["role"], r["email"]) for r in email["outcome"]["recipients"]] == [
        ("to", None),
        ("cc", None),
    ]
    opted_out = job(filled.jobs["opted_out"])
    assert opted_out["last_error_code"] == "206" and "[number]" in opted_out["last_error"]
    # A purged job is never queued again: its payload is gone
    assert "purged" in run_cli(env, "jobs", "retry", filled.jobs["opted_out"], code=1).stderr
    assert job(filled.jobs["opted_out"])["status"] == "failed"

    # A second purge has nothing left to do
    again = run_cli(env, "ledger", "purge", "--older-than", "90d").stdout.strip()
    assert again == "purged 0 jobs, 0 refused import rows, 0 campaign schedules"


def test_a_purge_leaves_recent_and_unfinished_jobs_alone(env: Env, sandbox: Sandbox) -> None:
    filled = fill_ledger(sandbox)
    _age(10)
    doubt = job(filled.jobs["doubt"])
    with connection(get_settings().ledger_url) as db:  # in doubt for a long time: still kept
        old = utcnow() - timedelta(days=400)
        db.execute(update(Job).where(Job.id == filled.jobs["doubt"]).values(created_at=old))

    assert api.purge("30d").jobs == 0
    report = api.purge(timedelta(days=5))

    finished = [j for j in filled.jobs.values() if job(j)["finished_at"]]
    assert report.jobs == len(finished) and report.jobs < len(filled.jobs)
    for name in ("doubt", "dropped", "queued"):
        kept = job(filled.jobs[name])
        assert kept["purged_at"] is None and kept["payload"]["recipient"], name
    assert job(filled.jobs["doubt"])["payload"] == doubt["payload"]
    assert all(job(j)["purged_at"] for j in finished)


def test_a_purge_first_hashes_the_recipients_an_older_version_wrote_without(
    env: Env, sandbox: Sandbox
) -> None:
    # Given rows written before hashes were (by a producer or worker not yet upgraded)
    filled = fill_ledger(sandbox)
    _finish_everything(env, sandbox, filled.jobs)
    with connection(get_settings().ledger_url) as db:
        db.execute(JobRecipient.__table__.delete())
        db.execute(update(EmailRecipient).values(email_hash=None))
        db.execute(update(SendingRecipient).values(email_hash=None))
    assert api.sent_to(PHONE) == api.sent_to(BOB) == api.sent_to(CAROL) == []
    _age(100)

    api.purge("90d")

    # Then the purge hashed them before it removed them: they are found all the same
    assert {a.job_id for a in api.sent_to(PHONE)} == {
        filled.jobs[name] for name in ("otp", "promo", "doubt", "queued")
    }
    assert [a.role for a in api.sent_to(BOB)] == ["cc"]
    assert [(a.role, a.outcome) for a in api.sent_to(CAROL)] == [("list", "unprocessed")]
    assert [(a.role, a.outcome) for a in api.sent_to(GONE)] == [("campaign", "unprocessed")]
    assert _leftovers([PHONE.removeprefix("+"), BOB, CAROL, GONE]) == []


@pytest.mark.parametrize("age", ["90", "0d", "3w", "-1d", ""])
def test_a_bad_age_is_refused_naming_the_option(env: Env, age: str) -> None:
    refused = run_cli(env, "ledger", "purge", "--older-than", age, code=2)
    assert "--older-than" in refused.stderr and "such as 90d or 12h" in refused.stderr
    with pytest.raises(ValueError, match="older_than"):
        api.purge(age)


def test_an_age_in_hours(env: Env, list_secret: str) -> None:
    older, newer = (send_sms(list_id=1, recipient=PHONE, content="Code 1") for _ in range(2))
    assert run_once(older) == run_once(newer) == "succeeded"
    with connection(get_settings().ledger_url) as db:
        then = utcnow() - timedelta(hours=13)
        db.execute(update(Job).where(Job.id == older).values(finished_at=then))

    assert api.purge("12h").jobs == 1
    assert job(older)["purged_at"] and not job(newer)["purged_at"]


def test_beat_purges_daily_when_retention_days_is_set(
    env: Env, sandbox: Sandbox, list_secret: str, spawn: Callable[..., Process]
) -> None:
    assert "purge" not in beat.schedule(get_settings())
    env.set(MAILUP_JOBS_RETENTION_DAYS=30)
    assert beat.schedule(get_settings())["purge"]["schedule"] == 86400.0
    old = send_sms(list_id=1, recipient=PHONE, content="Code 1")
    recent = send_sms(list_id=1, recipient=PHONE, content="Code 1")
    assert run_once(old) == run_once(recent) == "succeeded"
    with connection(get_settings().ledger_url) as db:
        then = utcnow() - timedelta(days=31)
        db.execute(update(Job).where(Job.id == old).values(finished_at=then))

    spawn("beat")  # a started beat runs each entry at once, then every interval

    wait_for(lambda: job(old)["purged_at"], 60, "beat purged the old job")
    assert "content" not in job(old)["payload"]
    assert job(recent)["purged_at"] is None and job(recent)["payload"]["content"] == "Code 1"


def test_the_migration_hashes_the_recipients_already_in_the_ledger(
    env: Env, ledger_url: str
) -> None:
    # Given a ledger at the revision before hashes, holding an SMS, an email and a campaign
    config = alembic_config(ledger_url)
    command.downgrade(config, "0006")
    dispose_all()
    engine = sa.create_engine(ledger_url)
    meta = sa.MetaData()
    tables = {n: sa.Table(n, meta, autoload_with=engine) for n in _OLD_TABLES}
    now = datetime.now(UTC)
    common = {"account": "default", "status": "succeeded", "priority": 5, "attempts": 1}
    stamps = {"run_after": now, "created_at": now, "updated_at": now, "publish_count": 1}
    with engine.begin() as db:
        for job_id, kind, payload in (
            ("s" * 36, "send_sms", {"recipient": PHONE_00, "list_id": 1}),
            ("e" * 36, "send_message", {}),
            ("c" * 36, "campaign_send", {"message_id": 1, "to": GONE}),
            ("n" * 36, "campaign_send", {"message_id": 1, "to": CAROL}),  # never got to call
        ):
            row = {"id": job_id, "kind": kind, "payload": payload, **common, **stamps}
            db.execute(tables["jobs"].insert().values(**row))
        db.execute(
            tables["email_recipients"]
            .insert()
            .values(job_id="e" * 36, role="to", email="Ada@Example.com")
        )
        db.execute(
            tables["campaign_sends"]
            .insert()
            .values(
                job_id="c" * 36, account="default", message_id=1, known_sendings=[], taken_at=now
            )
        )
        db.execute(
            tables["sending_recipients"]
            .insert()
            .values(
                account="default",
                sending_id=9,
                job_id="c" * 36,
                problem="invalid",
                email=BOB,
                reason="bad",
            )
        )
    engine.dispose()

    # When it is migrated
    command.upgrade(config, "head")

    # Then each recipient has its keyed hash, and the audit finds them by it
    hashed = recipient_hasher(get_settings())
    with connection(ledger_url) as db:
        assert dict(db.execute(select(JobRecipient.job_id, JobRecipient.recipient_hash)).all()) == {
            "s" * 36: hashed("+393350000002"),  # PHONE_00, in the one spelling hashed
            "c" * 36: hashed(GONE),
        }
        assert db.scalar(select(EmailRecipient.email_hash)) == hashed(ADA)
        assert db.scalar(select(SendingRecipient.email_hash)) == hashed(BOB)
    assert [a.job_id for a in api.sent_to(PHONE_00)] == ["s" * 36]
    assert [a.role for a in api.sent_to(ADA)] == ["to"]
    assert [(a.role, a.outcome) for a in api.sent_to(BOB)] == [("list", "invalid")]
    dispose_all()


_OLD_TABLES = ("jobs", "email_recipients", "campaign_sends", "sending_recipients")
