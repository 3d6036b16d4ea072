"""Console sendings (doc 003): send to a list (inGroups / notInGroups), a group, one recipient;
sender, datetime and replyto; queues, first date, history; start, stop (30 s), delete (30 s)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import console_error

pytestmark = pytest.mark.usefixtures("uncapped")

DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z")
QUEUE_KEYS = {"Id", "IdList", "IdMessage", "Notes", "StartDate", "State", "Subject", "Type"}
HISTORY_KEYS = {  # MailUp's help page: no sending Id, no Sent
    "EndDate", "Kb_transferred", "Recipients", "SenderEmail", "SenderName", "StartDate",
    "idMessage",
}  # fmt: skip


@pytest.fixture
def world(sb: Sandbox, console) -> dict[str, int]:
    """Message 1 on list 1, message 2 on list 2; list 1: a, b, c subscribed, d unsubscribed,
    e pending; group 3 (list 1) = {a, d}, group 4 (list 1) = {b}; group 1 (TEST) = {c}."""
    for email, status in (("a", "subscribed"), ("b", "subscribed"), ("c", "subscribed")):
        sb.add_recipient(1, f"{email}@example.com", status)
    sb.add_recipient(1, "d@example.com", "unsubscribed")
    sb.add_recipient(1, "e@example.com", "pending")
    for name in ("G3", "G4"):
        assert console("POST", "Console/List/1/Group", json={"Name": name}).ok
    sb.add_recipient(1, "a@example.com", group_id=3)
    sb.add_recipient(1, "d@example.com", "unsubscribed", group_id=3)
    sb.add_recipient(1, "b@example.com", group_id=4)
    sb.add_recipient(1, "c@example.com", group_id=1)
    for list_id, subject in ((1, "Weekly"), (2, "Promo")):
        r = console("POST", f"Console/List/{list_id}/Email", json={"Subject": subject})
        assert r.status_code == 200, r.text
    return {"message": 1}


@pytest.fixture
def send(console, world) -> Callable[..., requests.Response]:
    def post(route: str = "Console/List/1/Email/1/Send", **params: str) -> requests.Response:
        return console("POST", route, params=params)

    return post


def recipients_of(sb: Sandbox, sending_id: int) -> list[str]:
    return next(s["recipients"] for s in sb.sendings() if s["id"] == sending_id)


def queue(console, name: str) -> list[dict]:
    r = console("GET", f"Console/Email/Sendings/{name}")
    assert r.status_code == 200, r.text
    return list(r.json()["Items"])


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- sending to a list, a group, a recipient ---------------------------------------------------


def test_send_to_list_runs_and_lands_in_history(sb: Sandbox, console, send, ctl) -> None:
    sb.set_sending_duration(0.3)
    r = send()
    assert r.status_code == 200, r.text
    assert r.json() == {
        "Id": 1,
        "Sent": 3,
        "InvalidRecipients": [],
        "UnprocessedRecipients": [],
        "idMessage": 1,
    }
    assert recipients_of(sb, 1) == ["a@example.com", "b@example.com", "c@example.com"]
    [item] = queue(console, "Immediate")
    assert set(item) == QUEUE_KEYS and DATE.fullmatch(item["StartDate"])
    assert (item["Id"], item["IdList"], item["IdMessage"], item["State"], item["Type"]) == (
        1,
        1,
        1,
        "Immediate",
        "Email",
    )
    assert (item["Subject"], item["Notes"]) == ("Weekly", "")
    assert console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"] == []
    last_sent = console("GET", "Console/List/1/Emails").json()["Items"][-1]["LastSendDate"]
    assert last_sent != "0001-01-01 00:00:00Z" and DATE.fullmatch(last_sent)
    time.sleep(0.4)
    assert queue(console, "Immediate") == []
    [done] = console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"]
    assert set(done) == HISTORY_KEYS
    assert (done["idMessage"], done["Recipients"]) == (1, 3)
    assert (done["SenderName"], done["SenderEmail"]) == ("Sandbox", "sender@example.com")
    assert DATE.fullmatch(done["StartDate"]) and DATE.fullmatch(done["EndDate"])
    assert ctl("GET", "sendings")["sendings"][0]["state"] == "Finished"
    entry = ctl("GET", "journal", params={"operation": "send_list"})["entries"][0]
    assert (entry["processed"], entry["sending_id"], entry["recipients"]) == (True, 1, 3)
    console_error(send("Console/List/2/Email/1/Send"), 404)  # not that list's message
    console_error(send("Console/List/1/Email/9/Send"), 404)


def test_group_filters(sb: Sandbox, send) -> None:
    def sent_to(**params: str) -> list[str]:
        r = send(**params)
        assert r.status_code == 200, r.text
        return [e.split("@")[0] for e in recipients_of(sb, r.json()["Id"])]

    assert sent_to(inGroups="3") == ["a"]  # d is in group 3 but unsubscribed
    assert sent_to(inGroups="3,4") == ["a", "b"]
    assert sent_to(inGroups="3,2,99") == ["a"]  # one of the list's is enough
    assert sent_to(inGroups="") == ["a", "b", "c"]  # empty: ignored
    assert sent_to(inGroups='"3, 4"') == ["a", "b"]
    assert sent_to(notInGroups="3") == ["b", "c"]
    assert sent_to(notInGroups="3,4") == ["c"]
    assert sent_to(notInGroups="3,2") == ["a", "b", "c"]  # group 2 is list 2's: none excluded
    assert sent_to(inGroups="3,4", notInGroups="4") == ["a"]
    assert sent_to(inGroups="3,4", notInGroups="4,99") == ["a", "b"]
    assert "inGroups" in console_error(send(inGroups="2"), 500)  # none of the list's
    console_error(send(inGroups="2,99"), 500)
    console_error(send(inGroups="x"), 400)
    console_error(send(notInGroups="3;4"), 400)


def test_send_to_group(sb: Sandbox, send) -> None:
    r = send("Console/Group/3/Email/1/Send")
    assert r.status_code == 200, r.text
    assert (r.json()["Sent"], r.json()["InvalidRecipients"]) == (1, [])
    assert recipients_of(sb, 1) == ["a@example.com"]  # subscribed members only
    console_error(send("Console/Group/3/Email/2/Send"), 404)  # list 2's message
    console_error(send("Console/Group/99/Email/1/Send"), 404)
    assert send("Console/Group/2/Email/2/Send").json()["Sent"] == 0  # an empty group


def test_send_to_one_recipient(sb: Sandbox, console, world) -> None:
    def post(email: object, message: object = 1) -> requests.Response:
        return console("POST", "Console/Email/Send", json={"Email": email, "idMessage": message})

    ok = post("new@example.org")
    assert ok.json() == {
        "Id": 1,
        "Sent": 1,
        "InvalidRecipients": [],
        "UnprocessedRecipients": [],
        "idMessage": 1,
    }
    assert recipients_of(sb, 1) == ["new@example.org"]
    bad = post("not-an-email").json()
    assert (bad["Sent"], bad["InvalidRecipients"]) == (
        1,
        ["not-an-email"],
    )
    assert recipients_of(sb, 2) == []
    out = post("d@example.com").json()  # unsubscribed from list 1
    assert out["UnprocessedRecipients"] == ["d@example.com"]
    assert post("b@example.com", 2).json()["Sent"] == 1  # message 2 is list 2's
    console_error(post("a@example.com", 99), 404)
    console_error(post(None), 400)
    console_error(post("a@example.com", "1"), 400)


def test_trial_account_leaves_recipients_unprocessed(sb: Sandbox, send, ctl) -> None:
    account = ctl("POST", "accounts/1234", json={"trial": True, "trial_recipients": 2})
    assert (account["trial"], account["trial_recipients"]) == (True, 2)
    body = send().json()
    assert body["Sent"] == 3
    assert body["UnprocessedRecipients"] == ["c@example.com"]
    assert recipients_of(sb, 1) == ["a@example.com", "b@example.com"]
    for bad in ({"trial": "yes"}, {"trial_recipients": -1}, {"trial_recipients": 2.5}):
        r = requests.post(f"{sb.control_url}/accounts/1234", json=bad, timeout=5)
        assert r.status_code == 400
    sb.set_account(1234, trial=False, trial_recipients=25)
    assert set(sb.accounts()[0]) == {"id", "username", "credits", "status"}


# --- sender, datetime, replyto -----------------------------------------------------------------


def test_sender_rules(sb: Sandbox, console, send) -> None:
    quoted = send(SenderName="'John Smith'", SenderAddress='"sender@example.com"')
    assert quoted.status_code == 200, quoted.text
    with sb.state.lock:
        sending = sb.state.sendings[1]
        assert (sending.sender_name, sending.sender_address) == ("John Smith", "sender@example.com")
    assert "SenderAddress" in console_error(send(SenderName="John"), 400)
    console_error(send(SenderAddress="sender@example.com"), 400)
    untrusted = send(SenderName="X", SenderAddress="stranger@example.com")
    assert "verified" in console_error(untrusted, 500)
    sb.add_trusted_sender("pending@example.com")  # not confirmed
    console_error(send(SenderName="X", SenderAddress="pending@example.com"), 500)
    sb.confirm_trusted_sender("pending@example.com")
    assert send(SenderName="X", SenderAddress="pending@example.com").status_code == 200
    r = console("POST", "Console/List/3/Email", json={"Subject": "Alert"})
    alert = r.json()["idMessage"]
    no_sender = send(f"Console/List/3/Email/{alert}/Send")
    assert "sender" in console_error(no_sender, 500)  # list 3 has no sender details
    ok = send(
        f"Console/List/3/Email/{alert}/Send", SenderName="A", SenderAddress="sender@example.com"
    )
    assert ok.status_code == 200
    console_error(send(replyto="nobody"), 400)
    assert send(replyto='"replyto@yourdomain.it"').status_code == 200
    before = len(sb.sendings())
    console_error(send(datetime="tomorrow"), 400)
    console_error(send(datetime="2014-10-20T05:00:00Z"), 400)
    console_error(send(datetime="2014-13-40 05:00:00Z"), 400)
    console_error(send(datetime=""), 400)
    assert len(sb.sendings()) == before  # nothing made


def test_deferred_then_immediate_then_finished(sb: Sandbox, console, send) -> None:
    sb.set_sending_duration(0.5)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    stamp = f"{at:%Y-%m-%d %H:%M:%S}Z"
    r = send(datetime=f'"{stamp}"')
    assert r.status_code == 200, r.text
    [item] = queue(console, "Deferred")
    assert (item["State"], item["StartDate"]) == ("Deferred", stamp)
    assert queue(console, "Immediate") == []
    first = console("GET", "Console/Email/Sending/1/Deferred")
    assert first.json() == stamp  # a bare JSON string
    console_error(console("GET", "Console/Email/Sending/9/Deferred"), 404)
    wait_for(lambda: bool(queue(console, "Immediate")))
    [item] = queue(console, "Immediate")
    assert (item["State"], item["StartDate"]) == ("Immediate", stamp)
    assert queue(console, "Deferred") == []
    wait_for(lambda: not queue(console, "Immediate"))
    [done] = console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"]
    assert done["StartDate"] == stamp
    assert DATE.fullmatch(console("GET", "Console/Email/Sending/1/Deferred").json())


def test_undefined_waits_for_start(sb: Sandbox, console, send) -> None:
    sb.set_sending_duration(0.2)
    assert send(datetime="undefined").status_code == 200
    assert send(datetime="'UNDEFINED'").status_code == 200
    items = queue(console, "Undefined")
    assert [(i["Id"], i["State"], i["StartDate"]) for i in items] == [
        (1, "Undefined", ""),
        (2, "Undefined", ""),
    ]
    time.sleep(0.3)
    assert len(queue(console, "Undefined")) == 2  # it stays
    r = console("POST", "Console/Email/Sendings/1/Immediate")
    assert (r.status_code, r.content) == (200, b"")
    assert [i["Id"] for i in queue(console, "Immediate")] == [1]
    time.sleep(0.3)
    [done] = console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"]
    assert done["Recipients"] == 3
    console_error(console("POST", "Console/Email/Sendings/1/Immediate"), 400)  # finished
    console_error(console("POST", "Console/Email/Sendings/9/Immediate"), 404)


def test_control_moves_sendings(sb: Sandbox, console, send, ctl) -> None:
    send(datetime="undefined")
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    moved = ctl("POST", "sendings/1", json={"state": "Deferred", "at": at.isoformat()})
    assert moved["state"] == "Deferred"
    assert queue(console, "Deferred")[0]["StartDate"] == f"{at:%Y-%m-%d %H:%M:%S}Z"
    ctl("POST", "sendings/1", json={"state": "Immediate"})
    assert [i["Id"] for i in queue(console, "Immediate")] == [1]
    ctl("POST", "sendings/1", json={"state": "Finished"})
    assert len(console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"]) == 1
    assert ctl("POST", "sendings/duration", json={"duration": 0.1}) == {"duration": 0.1}
    for bad in ({"state": "Paused"}, {"state": "Deferred", "at": "soon"}, {}):
        r = requests.post(f"{sb.control_url}/sendings/1", json=bad, timeout=5)
        assert r.status_code == 400
    assert (
        requests.post(
            f"{sb.control_url}/sendings/9", json={"state": "Finished"}, timeout=5
        ).status_code
        == 404
    )
    with pytest.raises(ValueError):
        sb.set_sending_duration(-1)


# --- stop and delete ---------------------------------------------------------------------------


def test_stop_then_delete_and_the_30_second_rule(sb: Sandbox, console, send, ctl) -> None:
    sb.set_sending_duration(60)
    send()  # 1: Immediate
    send(datetime="undefined")  # 2: Undefined
    r = console("DELETE", "Console/Email/Sendings/1")
    assert (r.status_code, r.json()) == (200, {"IsDeleted": False})  # not stopped first
    r = console("POST", "Console/Email/Sendings/1/Stop")
    assert (r.status_code, r.content) == (200, b"")
    assert queue(console, "Immediate") == []
    stopped = console("POST", "Console/Email/Sendings/2/Stop")
    assert stopped.status_code == 429
    assert "30 seconds" in console_error(stopped, 429)
    assert 29 <= int(stopped.headers["Retry-After"]) <= 30
    again = console("DELETE", "Console/Email/Sendings/1")
    assert int(again.headers["Retry-After"]) >= 29 and again.json()["ErrorCode"] == "429"
    assert [s["state"] for s in sb.sendings()] == ["Stopped", "Undefined"]  # not processed
    entry = ctl("GET", "journal", params={"operation": "stop_sending"})["entries"][-1]
    assert (entry["fault"], entry["processed"], entry["http_status"]) == ("limit", False, 429)

    # a setting left out is MailUp's: the per-second cap has to be lifted again
    ctl("POST", "limits", json={"console_per_second": 0, "stop_delete_interval": 0})
    assert ctl("GET", "limits")["stop_delete_interval"] == 0
    assert console("DELETE", "Console/Email/Sendings/1").json() == {"IsDeleted": True}
    assert console("POST", "Console/Email/Sendings/2/Stop").status_code == 200
    assert queue(console, "Undefined")[0]["Id"] == 2  # stop leaves standby sendings alone
    assert console("DELETE", "Console/Email/Sendings/2").json() == {"IsDeleted": True}
    assert sb.sendings() == []
    console_error(console("DELETE", "Console/Email/Sendings/1"), 404)
    console_error(console("POST", "Console/Email/Sendings/1/Stop"), 404)
    ctl("POST", "reset")
    assert ctl("GET", "limits") == {"sms_per_second": 30, "console_per_second": 5}


def test_deferred_needs_a_stop_before_delete(sb: Sandbox, console, send) -> None:
    sb.set_limits(console_per_second=0, stop_delete_interval=1)
    send(datetime="2099-01-01 00:00:00Z")
    assert console("DELETE", "Console/Email/Sendings/1").json() == {"IsDeleted": False}
    assert console("POST", "Console/Email/Sendings/1/Stop").ok  # its own window
    retry = console("DELETE", "Console/Email/Sendings/1")
    assert (retry.status_code, retry.headers["Retry-After"]) == (429, "1")
    time.sleep(1.05)
    assert console("DELETE", "Console/Email/Sendings/1").json() == {"IsDeleted": True}
    assert queue(console, "Deferred") == []


def test_stop_counts_against_the_per_second_cap_too(sb: Sandbox, console, send) -> None:
    send(datetime="undefined")
    sb.set_limits(console_per_second=1)
    assert console("GET", "Console/Email/Sendings/Undefined").status_code == 200
    r = console("POST", "Console/Email/Sendings/1/Stop")
    assert "per second" in console_error(r, 429) and r.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert console("POST", "Console/Email/Sendings/1/Stop").status_code == 200


def test_faults_apply_to_sending_routes(sb: Sandbox, console, send) -> None:
    sb.force(504, None, operation="send_list", after_processing=True)
    assert send().status_code == 504
    assert len(sb.sendings()) == 1  # it was made anyway
    sb.force(500, "500", operation="stop_sending")
    console_error(console("POST", "Console/Email/Sendings/1/Stop"), 500)
    assert sb.sendings()[0]["state"] == "Immediate"
    sb.force(500, "500", operation="send_recipient")
    r = console("POST", "Console/Email/Send", json={"Email": "x@example.com", "idMessage": 1})
    console_error(r, 500)
    assert len(sb.sendings()) == 1


# --- MailUp verifying a new sending, and other applications of the account ----------------------


def test_a_new_sending_is_listed_nowhere_while_mailup_verifies_it(
    sb: Sandbox, console, send, ctl
) -> None:
    assert ctl("POST", "sendings/listing-delay", json={"delay": 0.5}) == {"delay": 0.5}
    sb.set_sending_duration(0.1)
    made = send().json()["Id"]
    time.sleep(0.2)  # finished by now, but still being verified
    assert [s["state"] for s in sb.sendings()] == ["Finished"]
    assert queue(console, "Immediate") == []
    assert console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"] == []
    time.sleep(0.4)
    [done] = console("GET", "Console/List/1/Email/1/SendHistory").json()["Items"]
    assert done["Recipients"] == len(recipients_of(sb, made)) == 3


def test_another_application_sends_a_message_on_the_same_account(
    sb: Sandbox, console, world, ctl
) -> None:
    made = ctl("POST", "messages/1/send-elsewhere")
    [item] = queue(console, "Immediate")
    assert (item["Id"], item["IdMessage"], made["id"]) == (1, 1, 1)
    assert recipients_of(sb, 1) == ["a@example.com", "b@example.com", "c@example.com"]
    assert ctl("GET", "journal", params={"operation": "send_list"})["entries"] == []
    r = requests.post(f"{sb.control_url}/messages/99/send-elsewhere", timeout=5)
    assert r.status_code == 404
