"""Campaign sends, the sending queue, stop and delete, and schedules, through jobs against
the sandbox over HTTP, on SQLite and PostgreSQL: every skipped recipient a row, a lost
answer reconciled rather than sent again, each queue state with its time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from producers import InvalidJob
from producers.campaigns import (
    cancel_schedule,
    delete_sending,
    list_schedules,
    list_sendings,
    schedule_campaign,
    send_campaign,
    sending_details,
    stop_sending,
)
from producers.console import list_trusted_senders
from producers.errors import TransactionalIsBetterWarning
from producers.lists import create_group
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, job_count, make_due, run_once
from worker.engine.clients import console_client
from worker.jobs import schedules, sendings
from worker.ledger.db import connection
from worker.ledger.models import Creation, utcnow
from worker.mailup.sendings import Audience, Sendings, SendOptions
from worker.settings import get_settings

SEND_OPERATIONS = {"send_list", "send_group", "send_recipient"}


def _message(list_id: int = 1, subject: str = "December news") -> int:
    job_id = create_message(list_id=list_id, subject=subject, html="<p>Hello</p>")
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    return int(job(job_id)["outcome"]["message_id"])


def _group(name: str, list_id: int = 1) -> int:
    job_id = create_group(list_id=list_id, name=name)
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    return int(job(job_id)["outcome"]["group_id"])


def _sends(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.journal() if e["operation"] in SEND_OPERATIONS]


@pytest.fixture
def audience(sandbox: Sandbox, env: Env) -> dict[str, int]:
    """List 1 with three VIPs (one also staff) and one other subscriber."""
    vip, staff = _group("VIP"), _group("Staff")
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        sandbox.add_recipient(1, email, group_id=vip)
    sandbox.add_recipient(1, "cy@example.com", group_id=staff)
    sandbox.add_recipient(1, "dee@example.com")
    return {"vip": vip, "staff": staff, "message": _message()}


def test_a_list_send_with_group_filters_records_the_sending_and_each_unprocessed_recipient(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.set_account(1234, trial=True, trial_recipients=1)  # a trial account's limit

    job_id = send_campaign(
        audience["message"],
        list_id=1,
        in_groups=[audience["vip"]],
        not_in_groups=[audience["staff"]],
    )
    assert run_once(job_id) == "succeeded"

    [made] = sandbox.sendings()
    outcome = job(job_id)["outcome"]
    assert outcome["sending_id"] == made["id"] and outcome["message_id"] == audience["message"]
    assert outcome["sent"] == made["sent"] == 2  # the VIPs less staff, the skipped one counted
    assert made["recipients"] == ["ada@example.com"]
    assert outcome["unprocessed_recipients"] == ["bob@example.com"]
    assert outcome["invalid_recipients"] == [] and outcome["reconciled"] is False
    # Who was not sent it: a row each (MailUp's answer gives bare addresses, no reason)
    details = sending_details(made["id"])
    assert details is not None and details["job_id"] == job_id
    assert details["unprocessed_recipients"] == [{"email": "bob@example.com", "reason": ""}]
    assert [s["state"] for s in details["states"]] == ["Immediate"]


def test_one_recipient_send_warns_that_the_transactional_api_is_the_better_tool(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.add_recipient(1, "gone@example.com", status="unsubscribed")
    with pytest.warns(TransactionalIsBetterWarning, match="send_email"):
        job_id = send_campaign(audience["message"], list_id=1, to="gone@example.com")
    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["unprocessed_recipients"] == ["gone@example.com"]
    assert sandbox.sendings()[0]["recipients"] == []


def _verified(job_id: str) -> str | None:
    """Run the job until it stops looking at MailUp (each look made due at once)."""
    while True:
        make_due(job_id)
        status = run_once(job_id)
        if status not in ("retrying", "queued"):
            return status


def test_the_same_message_sent_twice_makes_two_sendings_each_jobs_own(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.set_sending_duration(0.05)  # the first is only in the SendHistory (no Id) by then
    first = send_campaign(audience["message"], list_id=1)
    assert run_once(first) == "succeeded"
    time.sleep(0.2)
    second = send_campaign(audience["message"], list_id=1)
    assert run_once(second) == "succeeded"

    made = [s["id"] for s in sandbox.sendings()]
    ids = [job(j)["outcome"]["sending_id"] for j in (first, second)]
    assert ids == made and len(set(ids)) == 2
    assert [job(j)["outcome"]["reconciled"] for j in (first, second)] == [False, False]


def test_a_send_applied_but_whose_answer_was_lost_is_reconciled_not_sent_again(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.force(504, operation="send_list", after_processing=True)

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "succeeded"  # its first look, at once, found it

    [made] = sandbox.sendings()
    outcome = job(job_id)["outcome"]
    assert outcome["sending_id"] == made["id"] and outcome["reconciled"] is True
    # Nobody knows whom it skipped: null, not "nobody".
    assert outcome["invalid_recipients"] is None and outcome["unprocessed_recipients"] is None
    assert len(_sends(sandbox)) == 1
    assert sending_details(made["id"])["job_id"] == job_id  # type: ignore[index]


def test_a_sending_listed_late_is_found_within_the_window_and_not_sent_again(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.set_listing_delay(5)  # MailUp still verifying the new sending
    sandbox.set_sending_duration(60)  # still queued when listed: found with its Id
    sandbox.force(504, operation="send_list", after_processing=True)

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"  # its call's outcome unknown: it looks again later
    assert "looking at MailUp for a sending of message" in job(job_id)["last_error"]
    make_due(job_id)
    assert run_once(job_id) == "queued"  # looked, nothing listed yet: no attempt spent
    time.sleep(5)
    assert _verified(job_id) == "succeeded"

    [made] = sandbox.sendings()
    assert job(job_id)["outcome"]["sending_id"] == made["id"]
    assert len(_sends(sandbox)) == 1


def test_a_sending_that_left_the_queues_before_it_was_seen_is_recorded_without_an_id(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.set_sending_duration(0.05)
    sandbox.force(504, operation="send_list", after_processing=True)

    sandbox.set_listing_delay(3)
    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    time.sleep(3.1)  # listed now, and finished: only the SendHistory shows it, with no Id
    assert _verified(job_id) == "succeeded"

    outcome = job(job_id)["outcome"]
    assert outcome["sending_id"] is None and outcome["reconciled"] is True
    assert "SendHistory" in outcome["note"]
    assert len(_sends(sandbox)) == 1
    [listed] = list_sendings(state="finished")  # and `sendings list` says so
    assert (listed["sending_id"], listed["job_id"]) == (None, job_id)
    assert listed["message_id"] == audience["message"] and "no Id" in listed["note"]


def test_a_lost_answer_with_nothing_made_is_in_doubt_when_the_window_ends_never_sent_again(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    env.set(MAILUP_JOBS_VERIFY_WINDOW=0.5)
    sandbox.force(502, operation="send_list")  # a gateway's answer: the request never got in

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    time.sleep(0.6)
    assert _verified(job_id) == "in_doubt"

    found = job(job_id)
    assert found["last_error_code"] == "creation_not_found"
    assert "HTTP 502" in found["last_error"] or "502" in found["last_error"]
    assert sandbox.sendings() == [] and len(_sends(sandbox)) == 1


def test_at_least_once_sends_again_once_the_window_ends_with_nothing_found(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    env.set(
        MAILUP_JOBS_VERIFY_WINDOW=0.5, MAILUP_JOBS_DELIVERY='{"campaign_send": "at_least_once"}'
    )
    sandbox.force(502, operation="send_list")

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    time.sleep(0.6)
    assert _verified(job_id) == "succeeded"

    [made] = sandbox.sendings()
    assert job(job_id)["outcome"]["sending_id"] == made["id"]
    assert len(_sends(sandbox)) == 2


def test_a_429_while_another_application_sends_the_message_ends_with_the_jobs_own_sending(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.force(429, operation="send_list")  # proves nothing was made: no looking for it

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    theirs = sandbox.send_elsewhere(audience["message"])["id"]
    make_due(job_id)
    assert run_once(job_id) == "succeeded"

    outcome = job(job_id)["outcome"]
    assert outcome["sending_id"] != theirs and outcome["reconciled"] is False
    assert {s["id"] for s in sandbox.sendings()} == {theirs, outcome["sending_id"]}


def test_another_applications_sending_during_the_window_cannot_be_told_apart(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.force(504, operation="send_list", after_processing=True)
    sandbox.set_listing_delay(3)
    sandbox.set_sending_duration(0.05)  # both only in the SendHistory, maybe the same second

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    sandbox.send_elsewhere(audience["message"])
    time.sleep(3.5)
    assert _verified(job_id) == "in_doubt"

    found = job(job_id)
    assert found["last_error_code"] == "creation_unclear" and "2 candidates" in found["last_error"]
    assert len(_sends(sandbox)) == 1


def _crashed_mid_call(sandbox: Sandbox, job_id: str, message_id: int, made: int) -> None:
    """What a worker killed mid-call leaves: the job's record of the message's sendings
    before its call, and ``made`` new sendings on MailUp that its call (and perhaps
    another's) made."""
    settings = get_settings()
    mailup = Sendings(console_client(settings, "default"))
    before = [f"sending:{s.id}" for s in mailup.queued() if s.message_id == message_id]
    with connection(settings.ledger_url) as db:
        db.execute(
            insert(Creation).values(
                job_id=job_id, account="default", before=before, left_at=utcnow(), looks=0
            )
        )
    for _ in range(made):
        mailup.send(message_id, Audience(list_id=1), SendOptions())


def test_a_job_whose_worker_died_mid_call_finds_its_sending_before_anything_else(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    earlier = send_campaign(audience["message"], list_id=1)  # a sending made before: not it
    assert run_once(earlier) == "succeeded"
    job_id = send_campaign(audience["message"], list_id=1)
    _crashed_mid_call(sandbox, job_id, audience["message"], made=1)

    assert run_once(job_id) == "succeeded"

    outcome = job(job_id)["outcome"]
    assert outcome["reconciled"] is True
    assert outcome["sending_id"] == sandbox.sendings()[-1]["id"]
    assert len(sandbox.sendings()) == 2  # nothing sent again


def test_two_new_sendings_cannot_be_told_apart_and_the_job_is_in_doubt(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    job_id = send_campaign(audience["message"], list_id=1)
    _crashed_mid_call(sandbox, job_id, audience["message"], made=2)

    assert run_once(job_id) == "in_doubt"
    found = job(job_id)
    assert found["last_error_code"] == "creation_unclear" and "2 candidates" in found["last_error"]
    assert len(sandbox.sendings()) == 2


def test_a_sender_with_a_status_code_mailups_doc_does_not_list_is_trusted(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sandbox.add_trusted_sender("news@example.com", status_code=3)  # doc 004: not 0, trusted
    list_trusted_senders(refresh=True)  # the ledger reads MailUp's

    job_id = send_campaign(
        audience["message"], list_id=1, sender_name="News", sender_address="news@example.com"
    )
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    [made] = sandbox.sendings()
    assert made["sender_address"] == "news@example.com"


def test_a_list_without_a_sender_is_refused_before_mailup_answers_500(
    sandbox: Sandbox, env: Env
) -> None:
    message = _message(list_id=3)  # list 3 has no sender: MailUp would answer 500

    job_id = send_campaign(message, list_id=3)
    assert run_once(job_id) == "failed"

    found = job(job_id)
    assert found["last_error_code"] == "list_has_no_sender" and "list 3" in found["last_error"]
    assert _sends(sandbox) == [] and sandbox.sendings() == []


def test_a_500_that_made_nothing_is_in_doubt_with_mailups_words_never_sent_again(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    env.set(MAILUP_JOBS_VERIFY_WINDOW=0.3)
    sandbox.force(500, "500", description="Something went wrong.", operation="send_list")

    job_id = send_campaign(audience["message"], list_id=1)
    assert run_once(job_id) == "retrying"
    time.sleep(0.4)
    assert _verified(job_id) == "in_doubt"

    found = job(job_id)
    assert found["last_error_code"] == "creation_not_found"
    assert "Something went wrong." in found["last_error"]  # MailUp's own words
    assert found["attempts"][0]["http_status"] == 500
    assert len(_sends(sandbox)) == 1 and sandbox.sendings() == []


def test_bad_sends_are_refused_at_the_door_naming_the_field_and_nothing_is_written(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    other_list_group = _group("Elsewhere", list_id=2)
    message = audience["message"]
    before = job_count()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"list_id": 1, "sender_name": "Shop"}, "sender_address"),
        ({"list_id": 1, "sender_address": "sender@example.com"}, "sender_name"),
        ({"list_id": 1, "in_groups": [other_list_group]}, "group_id"),
        ({"group_id": 999}, "group_id"),
        ({"list_id": 2}, "message_id"),  # the ledger knows the message is in list 1
        ({"list_id": 1, "sender_name": "X", "sender_address": "who@example.org"}, "sender_address"),
        ({"list_id": 1, "when": "2020-01-01 00:00:00Z"}, "when"),
        ({"list_id": 1, "when": "2030-01-01 00:00:00"}, "when"),  # no zone
        ({"list_id": 1, "when": "tomorrow"}, "when"),
        ({"to": "ada@example.com"}, "list_id"),
        ({"list_id": 1, "reply_to": "not an address"}, "reply_to"),
    ]
    for send, field in cases:
        with pytest.raises(InvalidJob) as refused:
            send_campaign(message, **send)
        assert refused.value.field == field, (send, refused.value.errors)
    assert job_count() == before


def test_the_queue_poll_follows_a_deferred_sending_to_immediate_then_finished(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    when = datetime.now(UTC) + timedelta(hours=2)
    job_id = send_campaign(audience["message"], list_id=1, when=when)
    assert run_once(job_id) == "succeeded"
    sending_id = job(job_id)["outcome"]["sending_id"]
    settings = get_settings()

    sendings.poll(settings)  # Deferred: its first possible date read from MailUp
    details = sending_details(sending_id)
    assert details is not None and details["state"] == "Deferred"
    assert details["first_available_at"] == when.replace(microsecond=0).isoformat()

    sandbox.set_sending(sending_id, "Immediate")  # its date came
    assert sendings.poll(settings) == 1
    sandbox.set_sending(sending_id, "Finished")
    assert sendings.poll(settings) == 1
    assert sendings.poll(settings) == 0  # nothing changed since

    details = sending_details(sending_id)
    assert details is not None and details["state"] == "finished" and details["finished_at"]
    states = details["states"]
    assert [s["state"] for s in states] == ["Deferred", "Immediate", "finished"]
    assert states[0]["at"] <= states[1]["at"] <= states[2]["at"]


def test_the_queue_poll_records_sendings_made_elsewhere(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    mailup = Sendings(console_client(get_settings(), "default"))
    made = mailup.send(audience["message"], Audience(list_id=1), SendOptions(when="undefined"))

    assert sendings.poll(get_settings()) == 1
    details = sending_details(made.sending_id)
    assert details is not None and details["state"] == "Undefined" and details["job_id"] is None
    assert details["message_id"] == audience["message"] and details["subject"] == "December news"


def test_delete_stops_a_planned_sending_first(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    sent = send_campaign(audience["message"], list_id=1, when=when)
    assert run_once(sent) == "succeeded"
    sending_id = job(sent)["outcome"]["sending_id"]

    job_id = delete_sending(sending_id)
    assert run_once(job_id) == "succeeded"

    operations = [e["operation"] for e in sandbox.journal()]
    assert operations.index("stop_sending") < operations.index("delete_sending")
    assert sandbox.sendings() == []
    details = sending_details(sending_id)
    assert details is not None and details["state"] == "deleted"
    assert [s["state"] for s in details["states"]] == ["Deferred", "stopped", "deleted"]


def test_isdeleted_false_fails_the_delete_with_the_reason(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    sent = send_campaign(
        audience["message"], list_id=1, when=datetime.now(UTC) + timedelta(hours=1)
    )
    assert run_once(sent) == "succeeded"
    sending_id = job(sent)["outcome"]["sending_id"]
    sandbox.force(200, operation="stop_sending")  # answered, but the sending was not stopped

    job_id = delete_sending(sending_id)
    assert run_once(job_id) == "failed"

    found = job(job_id)
    assert found["last_error_code"] == "not_deleted" and "IsDeleted: false" in found["last_error"]
    assert [s["id"] for s in sandbox.sendings()] == [sending_id]


def test_a_second_stop_within_30_s_waits_its_turn_without_calling_mailup(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    ids = []
    for _ in range(2):
        sent = send_campaign(audience["message"], list_id=1, when="undefined")
        assert run_once(sent) == "succeeded"
        ids.append(job(sent)["outcome"]["sending_id"])
    first, second = stop_sending(ids[0]), stop_sending(ids[1])

    assert run_once(first) == "succeeded"
    broker = Recorder()
    assert run_once(second, broker) == "queued"  # back in the queue, due in about 31 s

    waiting = job(second)
    assert waiting["attempts"] == [] and "one stop per account every 30 s" in waiting["last_error"]
    [(_, _, countdown)] = broker.published
    assert countdown is not None and 29 < countdown <= 31
    assert [e["operation"] for e in sandbox.journal()].count("stop_sending") == 1


def test_a_schedule_is_dispatched_once_and_a_cancelled_one_never(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    kept = schedule_campaign(audience["message"], list_id=1, at=soon)
    dropped = schedule_campaign(audience["message"], group_id=audience["vip"], at=soon)
    assert cancel_schedule(dropped) == "cancelled"
    assert [s["id"] for s in list_schedules(due=True)] == []
    settings = get_settings()
    assert schedules.dispatch_due(settings) == 0  # not due yet

    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    assert [s["id"] for s in list_schedules(due=True)] == [kept]
    assert schedules.dispatch_due(settings) == 1
    assert schedules.dispatch_due(settings) == 0  # once

    [dispatched] = list_schedules(state="dispatched")
    assert dispatched["id"] == kept and dispatched["job_id"]
    assert run_once(dispatched["job_id"]) == "succeeded"
    assert len(sandbox.sendings()) == 1
    assert cancel_schedule(kept) == "dispatched"  # too late: stop the sending instead
    with pytest.raises(InvalidJob):
        cancel_schedule("no-such-schedule")


def test_a_schedule_at_a_past_or_naive_time_is_refused(
    sandbox: Sandbox, env: Env, audience: dict[str, int]
) -> None:
    with pytest.raises(InvalidJob, match="not in the future"):
        schedule_campaign(audience["message"], list_id=1, at=datetime.now(UTC) - timedelta(1))
    with pytest.raises(InvalidJob, match="zone"):
        schedule_campaign(audience["message"], list_id=1, at=datetime(2030, 1, 1))
    assert list_schedules() == []
