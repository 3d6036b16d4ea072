"""The ledger's audits — SMS costs, sends per day, failures by code, what was sent to one
recipient, in_doubt jobs and their resolution — on a ledger filled by real jobs run against
the sandbox over HTTP, on SQLite and PostgreSQL: each from the CLI in its three formats
(table, CSV and JSON, parsed back) and from Python."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from producers import Attachment, send_email, send_email_template, send_sms
from producers import audit as api
from producers.campaigns import send_campaign
from producers.errors import TransactionalIsBetterWarning
from producers.messages import create_message
from sandbox.server import Sandbox
from sandbox.state import list_guid
from tests.conftest import Env
from tests.helpers import job, job_count, run_once
from worker.jobs import list_credentials
from worker.ledger.db import connection
from worker.ledger.models import Job, SmsDelivery
from worker.settings import get_settings

PHONE = "+393350000001"
PHONE_00 = "00393350000002"  # as a producer gave it; the ledger finds it as +39…
OPTED_OUT = "+393330000666"  # the sandbox's opted-out number
ADA, BOB, GONE, CAROL = (
    "ada@example.com",
    "bob@example.com",
    "gone@example.com",
    "carol@example.com",
)
PDF = b"%PDF-1.4 invoice of Ada Lovelace"
LONG = "Our December offer: " + "x" * 180  # 200 characters: two SMS parts, 2 credits


def run_cli(env: Env, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """`mailup-jobs ARGS` as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        env={**os.environ, **env.values},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def table(text: str) -> list[dict[str, str]]:
    """A table printed by the CLI, read back: columns are two or more spaces apart."""
    lines = [line.strip() for line in text.strip().splitlines()]
    header = re.split(r"\s{2,}", lines[0])
    return [dict(zip(header, re.split(r"\s{2,}", line), strict=True)) for line in lines[1:]]


def formats(env: Env, *args: str) -> tuple[list[dict[str, str]], list[dict[str, str]], Any]:
    """One audit in its three formats: the table's rows, the CSV's rows, the JSON."""
    shown = table(run_cli(env, *args).stdout)
    rows = list(csv.DictReader(io.StringIO(run_cli(env, *args, "--format", "csv").stdout)))
    data = json.loads(run_cli(env, *args, "--format", "json").stdout)
    return shown, rows, data


def _move_to(job_id: str, day: date) -> None:
    """A job accepted, run and answered on an earlier day."""
    moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)
    with connection(get_settings().ledger_url) as db:
        db.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=moment, updated_at=moment, finished_at=moment)
        )
        db.execute(update(SmsDelivery).where(SmsDelivery.job_id == job_id).values(sent_at=moment))


@dataclass
class Filled:
    """The jobs of the filled ledger, by what they are."""

    jobs: dict[str, str] = field(default_factory=dict)
    # What each SMS MailUp answered: job name -> (delivery id, cost).
    deliveries: dict[str, tuple[int, float]] = field(default_factory=dict)
    # The day the ledger was filled: a run may cross midnight before a test reads it back.
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    @property
    def earlier(self) -> date:
        """The day the job `otp_earlier` was moved to."""
        return self.today - timedelta(days=2)


def fill_ledger(sandbox: Sandbox) -> Filled:
    """SMS sent, failed, in doubt and queued on two lists and two days; transactional email
    sent and failed; campaign sends to one address and to a list, and one that failed."""
    # MailUp's per-second caps have tests of their own: on a loaded host a late call would
    # meet a 429 and leave a job retrying here.
    sandbox.set_limits(sms_per_second=0, console_per_second=0)
    settings = get_settings()
    with connection(settings.ledger_url) as db:
        for list_id in (1, 2):
            keys = list_credentials.ListKeys(
                list_guid(list_id), sandbox.create_list_secret(list_id)
            )
            list_credentials.save(db, settings, "default", list_id, keys)
    filled = Filled()

    def run(name: str, job_id: str, status: str) -> None:
        filled.jobs[name] = job_id
        assert run_once(job_id) == status, job(job_id)["last_error"]

    run(
        "otp",
        send_sms(list_id=1, recipient=PHONE, content="Code 1", campaign_code="otp"),
        "succeeded",
    )
    run(
        "otp_earlier",
        send_sms(list_id=1, recipient=PHONE_00, content="Code 2", campaign_code="otp"),
        "succeeded",
    )
    run(
        "promo",
        send_sms(list_id=2, recipient=PHONE, content=LONG, campaign_code="promo"),
        "succeeded",
    )
    sandbox.set_faults(rate_301=1.0)
    run("no_code", send_sms(list_id=1, recipient=PHONE_00, content="Hi"), "succeeded")
    sandbox.set_faults()
    run(
        "opted_out",
        send_sms(list_id=1, recipient=OPTED_OUT, content="Code 3", campaign_code="otp"),
        "failed",
    )
    sandbox.force(500, "300", operation="send_sms", after_processing=True)
    run(
        "doubt",
        send_sms(list_id=1, recipient=PHONE, content="Code 4", campaign_code="otp"),
        "in_doubt",
    )
    sandbox.set_faults(drop_before_rate=1.0)
    run("dropped", send_sms(list_id=1, recipient=PHONE_00, content="Code 5"), "in_doubt")
    sandbox.set_faults()
    filled.jobs["queued"] = send_sms(list_id=1, recipient=PHONE, content="Later")
    for name in ("otp", "otp_earlier", "promo", "no_code"):
        outcome = job(filled.jobs[name])["outcome"]
        filled.deliveries[name] = (outcome["delivery_id"], outcome["cost"])
    _move_to(filled.jobs["otp_earlier"], filled.earlier)

    email = send_email(
        sender="Shop <sender@example.com>",
        to=["Ada Lovelace <ADA@Example.com>"],
        cc=[BOB],
        subject="Your order, Ada",
        text="Thanks for your order, Ada Lovelace",
        attachments=[Attachment("invoice.pdf", PDF)],
        campaign_code="orders",
    )
    run("email", email, "succeeded")
    run(
        "template",
        send_email_template(template_id=999, sender="sender@example.com", to=[ADA]),
        "failed",
    )

    run(
        "message", create_message(list_id=1, subject="December news", html="<p>Hi</p>"), "succeeded"
    )
    message = job(filled.jobs["message"])["outcome"]["message_id"]
    sandbox.add_recipient(1, GONE, status="unsubscribed")
    with pytest.warns(TransactionalIsBetterWarning):
        one = send_campaign(message, list_id=1, to=GONE)
    run("campaign_one", one, "succeeded")
    sandbox.add_recipient(1, ADA)
    sandbox.add_recipient(1, CAROL)
    sandbox.set_account(1234, trial=True, trial_recipients=1)
    run("campaign_list", send_campaign(message, list_id=1), "succeeded")
    sandbox.set_account(1234, trial=False)
    run("message3", create_message(list_id=3, subject="No sender", html="<p>Hi</p>"), "succeeded")
    message3 = job(filled.jobs["message3"])["outcome"]["message_id"]
    run("campaign_failed", send_campaign(message3, list_id=3), "failed")  # list 3: no sender
    return filled


@pytest.fixture
def filled(env: Env, sandbox: Sandbox) -> Filled:
    return fill_ledger(sandbox)


def test_sms_costs_by_campaign_day_and_list_in_every_format(env: Env, filled: Filled) -> None:
    cost = {name: c for name, (_, c) in filled.deliveries.items()}
    assert cost == {"otp": 1.0, "otp_earlier": 1.0, "promo": 2.0, "no_code": 1.0}

    shown, rows, data = formats(env, "ledger", "costs", "--by", "campaign")
    expected = [
        {"account": "default", "campaign_code": "otp", "sms": 2, "credits": 2.0},
        {"account": "default", "campaign_code": "promo", "sms": 1, "credits": 2.0},
        {"account": "default", "campaign_code": None, "sms": 1, "credits": 1.0},
    ]
    assert data == expected  # the failed and in_doubt SMS cost nothing the ledger knows of
    assert rows == [{k: "" if v is None else str(v) for k, v in e.items()} for e in expected]
    assert shown == [{k: "-" if v is None else str(v) for k, v in e.items()} for e in expected]
    assert [c.as_dict() for c in api.sms_costs("campaign")] == expected

    _, rows, data = formats(env, "ledger", "costs", "--by", "day")
    assert data == [
        {"account": "default", "day": filled.earlier.isoformat(), "sms": 1, "credits": 1.0},
        {"account": "default", "day": filled.today.isoformat(), "sms": 3, "credits": 4.0},
    ]
    assert [r["day"] for r in rows] == [filled.earlier.isoformat(), filled.today.isoformat()]

    shown, _, data = formats(env, "ledger", "costs", "--by", "list")
    assert [(d["list_id"], d["sms"], d["credits"]) for d in data] == [(1, 3, 3.0), (2, 1, 2.0)]
    assert [(s["list_id"], s["sms"], s["credits"]) for s in shown] == [
        ("1", "3", "3.0"),
        ("2", "1", "2.0"),
    ]

    # A period: from today on, and up to the earlier day included
    since = filled.today.isoformat()
    today = json.loads(run_cli(env, "ledger", "costs", "--since", since, "--format", "json").stdout)
    assert [(d["campaign_code"], d["sms"]) for d in today] == [("otp", 1), ("promo", 1), (None, 1)]
    until = api.sms_costs("day", until=filled.earlier)
    assert [(c.group, c.sms) for c in until] == [(filled.earlier.isoformat(), 1)]
    assert api.sms_costs("campaign", account="other") == []


def test_sends_per_day_and_status_with_kind_and_status_filters(env: Env, filled: Filled) -> None:
    _, rows, data = formats(env, "ledger", "sends", "--by", "day", "--kind", "send_sms")
    assert [d["day"] for d in data] == [filled.earlier.isoformat(), filled.today.isoformat()]
    earlier, today = data
    assert (earlier["succeeded"], earlier["total"]) == (1, 1)
    counts = {s: today[s] for s in ("succeeded", "failed", "in_doubt", "queued", "running")}
    assert counts == {"succeeded": 3, "failed": 1, "in_doubt": 2, "queued": 1, "running": 0}
    assert today["total"] == 7
    assert rows[1]["in_doubt"] == "2" and rows[1]["total"] == "7"

    everything = api.sends_by_day()
    assert sum(day.total for day in everything) == job_count() == len(filled.jobs)
    shown, _, data = formats(env, "ledger", "sends", "--status", "failed")
    # opted out SMS, unknown template, campaign on a list without sender
    assert data == [{"day": filled.today.isoformat(), "failed": 3, "total": 3}]
    assert shown == [{"day": filled.today.isoformat(), "failed": "3", "total": "3"}]
    assert api.sends_by_day(since=filled.today, kind="send_template")[0].jobs == {"failed": 1}

    refused = run_cli(env, "ledger", "sends", "--status", "lost", code=2)
    assert "status: must be one of" in refused.stderr


def test_failures_by_code_with_what_each_code_means(env: Env, filled: Filled) -> None:
    shown, rows, data = formats(env, "ledger", "failures", "--by", "code")
    found = {(d["api"], d["code"]): d for d in data}
    assert set(found) == {
        ("sms", "206"),
        ("sms", "300"),
        ("sms", "network"),
        ("email", "111"),
        ("console", "list_has_no_sender"),
    }
    assert (found["sms", "206"]["failed"], found["sms", "206"]["in_doubt"]) == (1, 0)
    assert found["sms", "206"]["meaning"].startswith("SMS number [recipient] is in optout state")
    assert (found["sms", "300"]["in_doubt"], found["sms", "300"]["kinds"]) == (1, "send_sms")
    assert found["sms", "300"]["meaning"] == "Operation failed: a generic error occur"
    assert "connection was refused, dropped or timed out" in found["sms", "network"]["meaning"]
    assert found["email", "111"]["meaning"] == "The template cannot be found."
    assert found["email", "111"]["kinds"] == "send_template"
    assert found["console", "list_has_no_sender"]["meaning"].startswith("The list has no sender")
    assert {(r["api"], r["code"], r["failed"], r["in_doubt"]) for r in rows} == {
        (api_, code, str(d["failed"]), str(d["in_doubt"])) for (api_, code), d in found.items()
    }
    assert {(s["api"], s["code"]) for s in shown} == set(found)
    assert sorted((f.api, f.code, f.total) for f in api.failures_by_code()) == sorted(
        (a, c, d["failed"] + d["in_doubt"]) for (a, c), d in found.items()
    )
    assert api.failures_by_code(until=filled.earlier) == []


def test_everything_sent_to_a_number_or_an_address(env: Env, filled: Filled) -> None:
    ids = filled.jobs
    _, rows, data = formats(env, "ledger", "recipient", PHONE)
    assert [(d["job_id"], d["role"], d["outcome"]) for d in data] == [
        (ids["otp"], "sms", "sent"),
        (ids["promo"], "sms", "sent"),
        (ids["doubt"], "sms", "in_doubt"),
        (ids["queued"], "sms", "queued"),
    ]
    otp = data[0]
    assert (otp["delivery_id"], otp["cost"], otp["campaign_code"]) == (
        filled.deliveries["otp"][0],
        1.0,
        "otp",
    )
    assert data[2]["code"] == "300" and data[2]["delivery_id"] is None
    assert [r["job_id"] for r in rows] == [d["job_id"] for d in data]

    # 00 or +, spaces: the same number
    spaced = [a.job_id for a in api.sent_to("0039 335 000 0002")]
    assert spaced == [ids["otp_earlier"], ids["no_code"], ids["dropped"]]
    assert [a.outcome for a in api.sent_to("+393350000002")] == ["sent", "sent", "in_doubt"]
    assert [a.code for a in api.sent_to(OPTED_OUT)] == ["206"]

    # Addresses, whatever their case: to, cc, a campaign to one address, a list send
    ada = {(d["kind"], d["role"], d["outcome"]) for d in _json(env, "recipient", "Ada@EXAMPLE.com")}
    assert ada == {("send_message", "to", "sent"), ("send_template", "to", "failed")}
    assert [(a.role, a.outcome) for a in api.sent_to(BOB)] == [("cc", "sent")]
    [gone] = api.sent_to(GONE)
    assert (gone.kind, gone.role, gone.outcome) == ("campaign_send", "campaign", "unprocessed")
    assert gone.sending_id == job(ids["campaign_one"])["outcome"]["sending_id"]
    [carol] = _json(env, "recipient", CAROL)
    # MailUp's answer names whom it skipped, not why
    assert (carol["role"], carol["outcome"], carol["reason"]) == ("list", "unprocessed", "")
    assert api.sent_to("nobody@example.com") == []
    assert api.sent_to(PHONE, until=filled.earlier) == []

    refused = run_cli(env, "ledger", "recipient", "not-a-recipient", code=2)
    assert "recipient: give a phone number" in refused.stderr
    bad = run_cli(env, "ledger", "recipient", PHONE, "--since", "yesterday", code=2)
    assert "--since" in bad.stderr and "not an ISO date" in bad.stderr


def _json(env: Env, *args: str) -> Any:
    return json.loads(run_cli(env, "ledger", *args, "--format", "json").stdout)


def test_in_doubt_jobs_are_resolved_sent_or_sent_again_and_each_resolution_is_kept(
    env: Env, sandbox: Sandbox, filled: Filled
) -> None:
    doubt, dropped = filled.jobs["doubt"], filled.jobs["dropped"]
    _, rows, data = formats(env, "jobs", "in-doubt")
    assert [(d["id"], d["code"]) for d in data] == [(doubt, "300"), (dropped, "network")]
    assert [r["id"] for r in rows] == [doubt, dropped]

    # The operator found the first on MailUp's side (it went out before the 500)
    [sent] = [d for d in sandbox.deliveries() if d["content"] == "Code 4"]
    delivery = str(sent["delivery_id"])
    run_cli(env, "jobs", "resolve", doubt, "--sent", "--delivery-id", delivery, "--by", "alice")
    shown = json.loads(run_cli(env, "jobs", "show", doubt, "--json").stdout)
    assert shown["status"] == "succeeded" and shown["finished_at"]
    [resolution] = shown["resolutions"]
    assert (resolution["resolution"], resolution["resolved_by"]) == ("sent", "alice")
    assert resolution["delivery_id"] == int(delivery) and resolution["resolved_at"]
    assert "resolved sent by alice" in run_cli(env, "jobs", "show", doubt).stdout
    [resolved] = [a for a in api.sent_to(PHONE) if a.job_id == doubt]
    assert (resolved.outcome, resolved.delivery_id) == ("sent", int(delivery))

    # ... and not the second: it is queued again, runs, and is sent once
    deliveries = len(sandbox.deliveries())
    run_cli(env, "jobs", "resolve", dropped, "--not-sent")
    assert job(dropped)["status"] == "queued"
    assert run_once(dropped) == "succeeded"
    assert run_once(dropped) is None
    assert len(sandbox.deliveries()) == deliveries + 1
    [again] = job(dropped)["resolutions"]
    assert again["resolution"] == "not_sent" and again["resolved_by"]  # the OS user
    assert [a["outcome"] for a in job(dropped)["attempts"]] == ["in_doubt", "succeeded"]
    assert api.in_doubt_jobs() == []
    assert json.loads(run_cli(env, "jobs", "in-doubt", "--format", "json").stdout) == []

    # Only an in_doubt job is resolved, and only one way
    assert "not in_doubt" in run_cli(env, "jobs", "resolve", doubt, "--sent", code=1).stderr
    assert "--sent or --not-sent" in run_cli(env, "jobs", "resolve", doubt, code=2).stderr
    refused = run_cli(env, "jobs", "resolve", doubt, "--not-sent", "--delivery-id", "1", code=2)
    assert "delivery_id: only a job that was sent" in refused.stderr
    assert len(job(doubt)["resolutions"]) == 1


def test_a_period_is_checked_and_a_date_until_is_included_whole(env: Env) -> None:
    with pytest.raises(ValueError, match="until: must be later than since"):
        api.sms_costs(since="2026-02-01", until="2026-01-31T23:00Z")
    with pytest.raises(ValueError, match="since: 'last week' is not an ISO date"):
        api.sends_by_day(since="last week")
    with pytest.raises(ValueError, match="by: must be one of"):
        api.sms_costs("month")  # type: ignore[arg-type]
    refused = run_cli(
        env, "ledger", "costs", "--since", "2026-02-01", "--until", "2026-01-01", code=2
    )
    assert "until: must be later than since" in refused.stderr
