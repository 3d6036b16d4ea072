"""Fault injection: rates, forced answers, drops, determinism; control routes stay clean."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import AUTH, SEND_MESSAGE


def test_429_has_retry_after(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"rate_429": 1.0, "retry_after": 7})
    r = send()
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    ctl("POST", "faults", json={})  # {} clears
    assert send().json()["Data"]["DeliveryId"] == 1  # the 429 delivered nothing
    faults = [
        e["fault"] for e in ctl("GET", "journal", params={"operation": "send_sms"})["entries"]
    ]
    assert faults == ["429", None]


def test_error_rate_gives_500_code_300_or_empty_503_with_retry_after(
    sb: Sandbox, send, ctl
) -> None:
    ctl("POST", "faults", json={"error_rate": 1.0, "retry_after": 7})
    seen = set()
    for _ in range(20):
        r = send()
        if r.status_code == 500:
            assert r.json() == {
                "Data": None,
                "Code": "300",
                "Description": "Operation failed: a generic error occur",
                "State": "ERROR",
            }
            assert "Retry-After" not in r.headers
        else:
            assert (r.status_code, r.content) == (503, b"")
            assert r.headers["Retry-After"] == "7"  # a load balancer shedding load
        seen.add(r.status_code)
    assert seen == {500, 503}
    assert ctl("GET", "deliveries")["deliveries"] == []


def test_latency(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"latency_ms": 300})
    started = time.monotonic()
    assert send().json()["Code"] == "0"
    assert time.monotonic() - started >= 0.3
    entry = ctl("GET", "journal", params={"operation": "send_sms"})["entries"][0]
    assert (entry["fault"], entry["processed"]) == ("latency", True)


def test_drop_before_processing(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"drop_before_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        send()
    entry = ctl("GET", "journal", params={"operation": "send_sms"})["entries"][0]
    assert entry["fault"] == "drop_before"
    assert (entry["processed"], entry["http_status"], entry.get("delivery_id")) == (
        False,
        None,
        None,
    )
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000


def test_drop_after_processing(sb: Sandbox, payload, ctl) -> None:
    session = requests.Session()  # keep-alive pool: a dropped connection must not poison it
    url = f"{sb.sms_url}/sms/1234/1"
    assert session.post(url, json=payload()).json()["Data"]["DeliveryId"] == 1
    ctl("POST", "faults", json={"drop_after_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        session.post(url, json=payload())
    entry = ctl("GET", "deliveries")["deliveries"][-1]
    assert (entry["fault"], entry["processed"], entry["http_status"]) == ("drop_after", True, None)
    assert entry["delivery_id"] == 2 and entry["cost"] == 1.0
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 2
    ctl("POST", "faults", json={})
    assert session.post(url, json=payload()).json()["Data"]["DeliveryId"] == 3


def test_drop_applies_to_listsecret_too(sb: Sandbox, ctl) -> None:
    ctl("POST", "faults", json={"drop_after_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{sb.sms_url}/lists/2/listsecret",
            json={"ListGUID": "00000000-0000-4000-8000-000000000002"},
            auth=AUTH,
        )
    assert ctl("GET", "state/lists")["lists"][1]["list_secret"] is not None  # it was created


def test_301_delivers_and_charges_with_delivery_id_zero(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"rate_301": 1.0})
    r = send(Content="x" * 200)
    assert r.status_code == 200
    assert r.json() == {
        "Data": {"DeliveryId": 0, "Cost": 2.0},
        "Code": "301",
        "Description": "The message was sent but the statistics are incorrect due to an error",
        "State": "DONE",
    }
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 2
    (entry,) = ctl("GET", "deliveries")["deliveries"]
    assert (entry["fault"], entry["code"], entry["delivery_id"]) == ("301", "301", 1)
    assert send(Recipient="bad!").json()["Code"] == "106"  # validation still wins
    assert ctl("GET", "journal")["entries"][-1]["fault"] is None


def test_error_after_processes_then_answers_500_502_or_504(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"error_after_rate": 1.0})
    answers = [send(Recipient=f"+3933500000{n:02d}") for n in range(20)]
    assert {r.status_code for r in answers} == {500, 502, 504}
    for r in answers:
        if r.status_code == 500:
            assert r.json() == {
                "Data": None,
                "Code": "300",
                "Description": "Operation failed: a generic error occur",
                "State": "ERROR",
            }
        else:
            assert r.content == b""  # a gateway's answer: no MailUp body
    delivered = ctl("GET", "deliveries")["deliveries"]  # every one went out and was charged
    assert [d["recipient"] for d in delivered] == [f"+3933500000{n:02d}" for n in range(20)]
    assert [d["http_status"] for d in delivered] == [r.status_code for r in answers]
    assert {(d["fault"], d["processed"]) for d in delivered} == {("error_after", True)}
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 20
    r = send(Recipient="bad!")  # failed validation: still a 5xx, but nothing was done
    assert r.status_code in (500, 502, 504)
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["fault"], entry["processed"]) == ("error_after", False)
    assert len(ctl("GET", "deliveries")["deliveries"]) == 20


def test_error_after_applies_console_and_email_changes(sb: Sandbox, console, ctl) -> None:
    sb.set_faults(error_after_rate=1.0)
    r = console("POST", "Console/TrustedSenders", json={"Email": "late@shop.example"})
    assert r.status_code in (500, 502, 504)
    assert "late@shop.example" in [s["email"] for s in sb.trusted_senders()]
    body = SEND_MESSAGE
    r = requests.post(f"{sb.send_url}/messages/sendmessage", json=body, timeout=5)
    assert r.status_code in (500, 502, 504)
    assert len(sb.emails()) == 1
    entries = [e for e in ctl("GET", "journal")["entries"] if e["api"] != "oauth"]
    assert [(e["fault"], e["processed"]) for e in entries] == [("error_after", True)] * 2


def test_forced_answer_after_processing(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "force", json={"http_status": 503, "after_processing": True})
    r = send()
    assert (r.status_code, r.content) == (503, b"")
    (delivery,) = ctl("GET", "deliveries")["deliveries"]
    assert (delivery["fault"], delivery["processed"], delivery["http_status"]) == (
        "forced",
        True,
        503,
    )
    sb.force(500, "300", after_processing=True, operation="send_sms")
    r = send(Recipient="bad!")  # the handler refused it: the forced answer still replaces 106
    assert (r.status_code, r.json()["Code"]) == (500, "300")
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["fault"], entry["processed"], entry["code"]) == ("forced", False, "300")
    assert len(ctl("GET", "deliveries")["deliveries"]) == 1
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 1


def test_forced_answers_are_one_shot_and_match_operation(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "force", json={"http_status": 403, "code": "205"})
    assert ctl("POST", "force", json={"http_status": 503, "operation": "listsecret_get"}) == {
        "forced_pending": 2
    }
    r = send()
    assert (r.status_code, r.json()["Code"], r.json()["Description"]) == (
        403,
        "205",
        "Sending denied: NO CREDITS",
    )
    assert send().json()["Code"] == "0"  # the 503 waits for its operation
    r = requests.get(f"{sb.sms_url}/lists/1/listsecret", auth=AUTH)
    assert (r.status_code, r.content) == (503, b"")
    assert requests.get(f"{sb.sms_url}/lists/1/listsecret", auth=AUTH).status_code == 200
    faults = [(e["fault"], e["processed"]) for e in ctl("GET", "journal")["entries"]]
    assert faults[-4:] == [("forced", False), (None, True), ("forced", False), (None, True)]

    ctl("POST", "force", json={"http_status": 429, "retry_after": 3})
    assert send().headers["Retry-After"] == "3"
    ctl("POST", "force", json={"http_status": 500, "code": "302", "description": "boom"})
    assert send().json()["Description"] == "boom"


def test_faults_never_touch_control_routes(sb: Sandbox, ctl) -> None:
    ctl("POST", "faults", json={"drop_before_rate": 0.5, "error_rate": 0.5, "latency_ms": 0})
    for _ in range(20):
        assert ctl("GET", "state/lists")["lists"]
    assert ctl("GET", "journal")["entries"] == []


def test_invalid_fault_settings_rejected(sb: Sandbox) -> None:
    for bad in (
        {"nope": 1},
        {"error_rate": 2},
        {"error_rate": 0.6, "rate_429": 0.6},
        {"drop_after_rate": 0.5, "error_after_rate": 0.6},
        [1],
    ):
        assert requests.post(f"{sb.url}/_sandbox/faults", json=bad).status_code == 400
    assert requests.post(f"{sb.url}/_sandbox/force", json={"code": "205"}).status_code == 400


def test_reset_clears_state_journal_and_faults(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"rate_429": 1.0})
    ctl("POST", "force", json={"http_status": 500})
    send()
    ctl("POST", "reset")
    assert ctl("GET", "journal")["entries"] == []
    faults = ctl("GET", "faults")
    assert (faults["forced"], faults["faults"]["rate_429"]) == ([], 0)
    assert ctl("GET", "state/lists")["lists"][0]["list_secret"] is None
    r = requests.get(f"{sb.sms_url}/lists/1/listsecret", auth=AUTH)
    assert r.status_code == 200


def fault_sequence(seed: int) -> list[int | str]:
    with Sandbox(seed=seed) as box:
        # 30 ListSecret calls in a burst: over MailUp's 5 calls/s, whose 429s hang on timing.
        box.set_limits(console_per_second=0)
        faults = {"error_rate": 0.3, "rate_429": 0.2, "error_after_rate": 0.2}
        requests.post(f"{box.url}/_sandbox/faults", json=faults)
        url = f"{box.sms_url}/lists/1/listsecret"
        return [requests.get(url, auth=AUTH).status_code for _ in range(30)]


def test_same_seed_same_faults() -> None:
    first = fault_sequence(1)
    assert first == fault_sequence(1)
    assert set(first) == {200, 429, 500, 502, 503, 504}
    assert first != fault_sequence(2)


def test_new_console_routes_honour_faults(sb: Sandbox, console, ctl, uncapped) -> None:
    forced = {"http_status": 500, "code": "500", "operation": "group_create"}
    ctl("POST", "force", json=forced | {"after_processing": True})
    r = console("POST", "Console/List/1/Group", json={"Name": "vip"})
    assert r.status_code == 500 and r.json()["ErrorCode"] == "500"
    assert [g["name"] for g in sb.groups(1)] == ["TEST", "vip"]  # created all the same
    ctl("POST", "faults", json={"drop_before_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        console("POST", "Console/List/1/Recipients", json=[{"Email": "a@example.com"}])
    ctl("POST", "faults", json={"drop_after_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        console("POST", "Console/List/1/Recipient", json={"Email": "b@example.com"})
    ctl("POST", "faults", json={"error_after_rate": 1.0})
    r = console("DELETE", "Console/List/1/Group/3")
    assert r.status_code in (500, 502, 504)
    ctl("POST", "faults", json={})
    assert sb.imports() == []  # dropped before: never accepted
    assert [r["email"] for r in sb.recipients(1)] == ["b@example.com"]  # dropped after: added
    assert [g["name"] for g in sb.groups(1)] == ["TEST"]  # the lost answer deleted it
    entries = [e for e in ctl("GET", "journal")["entries"] if e["api"] == "console"]
    assert [(e["operation"], e["fault"], e["processed"]) for e in entries] == [
        ("group_create", "forced", True),
        ("recipients_import", "drop_before", False),
        ("recipient_add", "drop_after", True),
        ("group_delete", "error_after", True),
    ]
