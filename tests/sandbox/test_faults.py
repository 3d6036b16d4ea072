"""Fault injection: rates, forced answers, drops, determinism; control routes stay clean."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import AUTH


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


def test_error_rate_gives_500_code_300_or_empty_503(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "faults", json={"error_rate": 1.0})
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
        else:
            assert (r.status_code, r.content) == (503, b"")
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
    for bad in ({"nope": 1}, {"error_rate": 2}, {"error_rate": 0.6, "rate_429": 0.6}, [1]):
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
        requests.post(f"{box.url}/_sandbox/faults", json={"error_rate": 0.3, "rate_429": 0.3})
        url = f"{box.sms_url}/lists/1/listsecret"
        return [requests.get(url, auth=AUTH).status_code for _ in range(30)]


def test_same_seed_same_faults() -> None:
    first = fault_sequence(1)
    assert first == fault_sequence(1)
    assert set(first) == {200, 429, 500, 503}
    assert first != fault_sequence(2)
