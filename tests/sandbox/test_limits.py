"""MailUp's per-account caps: 30 SMS sends and 5 other REST calls per second, answered 429."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import Sandbox
from sandbox.limits import CONSOLE, SMS, Limits, LimitSettings, Refusal
from tests.sandbox.conftest import AUTH, SEND_MESSAGE, SMTP_USER, password_grant


def console_429(calls: int, cap: int = 5) -> dict[str, str]:
    return {
        "ErrorCode": "429",
        "ErrorDescription": f"Max:{cap} calls per second, actual:{calls}",
        "ErrorName": "TooManyRequests",
        "ErrorStack": "",
    }


def test_sliding_window_counts_refused_calls() -> None:
    limits = Limits()
    assert [limits.arrive(1234, CONSOLE, at=t / 10) for t in range(5)] == [None] * 5
    assert limits.arrive(1234, CONSOLE, at=0.5) == Refusal(5, 6)
    assert limits.arrive(1234, CONSOLE, at=0.99) == Refusal(5, 7)
    # At 1.0 the call of 0.0 has left the window, but the refused ones of 0.5 and 0.99 count.
    assert limits.arrive(1234, CONSOLE, at=1.0) == Refusal(5, 7)
    assert limits.arrive(1234, CONSOLE, at=1.95) is None  # the window holds 0.99, 1.0, 1.95
    assert limits.arrive(1234, CONSOLE, at=1.96) is None


def test_caps_are_per_account_and_bucket() -> None:
    limits = Limits()
    for _ in range(5):
        assert limits.arrive(1, CONSOLE, at=0.0) is None
    assert limits.arrive(2, CONSOLE, at=0.0) is None  # another account
    assert all(limits.arrive(1, SMS, at=0.0) is None for _ in range(30))  # another bucket
    assert limits.arrive(1, SMS, at=0.0) == Refusal(30, 31)
    assert Refusal(30, 31).description == "Max:30 calls per second, actual:31"
    limits.configure(LimitSettings(sms_per_second=0))
    assert all(limits.arrive(1, SMS, at=0.0) is None for _ in range(100))  # 0: no cap
    assert limits.arrive(1, CONSOLE, at=0.0) == Refusal(5, 6)


def test_console_burst_gets_429_and_nothing_is_done(sb: Sandbox, console, ctl) -> None:
    for _ in range(5):
        assert console("GET", "Console/SmtpPlusPriorities").status_code == 200
    r = console("POST", "Console/TrustedSenders", json={"Email": "late@shop.example"})
    assert (r.status_code, r.json()) == (429, console_429(6))
    assert r.headers["Retry-After"] == "1"
    assert "late@shop.example" not in [s["email"] for s in sb.trusted_senders()]
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["operation"], entry["fault"], entry["processed"]) == (
        "trusted_sender_create",
        "limit",
        False,
    )
    assert (entry["http_status"], entry["code"], entry["account_id"]) == (429, "429", 1234)
    assert entry["calls_in_window"] == 6
    assert ctl("GET", "stats") == {"requests": 7, "deliveries": 0, "limited": 1}  # 1 token
    time.sleep(1.05)
    assert console("POST", "Console/TrustedSenders", json={"Email": "late@shop.example"}).ok


def test_listsecret_console_and_list_user_info_share_the_5_per_second(sb: Sandbox, console) -> None:
    listsecret = f"{sb.sms_url}/lists/1/listsecret"
    userinfo = f"{sb.send_url}/users/listuserinfo"
    assert requests.get(listsecret, auth=AUTH, timeout=5).status_code == 200
    assert requests.get(listsecret, auth=("m1234", "wrong"), timeout=5).status_code == 401
    assert console("GET", "Console/List/1").status_code == 200
    assert requests.post(userinfo, json={"User": SMTP_USER}, timeout=5).status_code == 200
    assert requests.get(f"{sb.sms_url}/lists/2/listsecret", timeout=5).status_code == 401
    r = requests.get(listsecret, auth=AUTH, timeout=5)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "1")
    assert r.json() == {
        "Data": None,
        "Code": "429",
        "Description": "Max:5 calls per second, actual:6",
        "State": "ERROR",
    }
    r = requests.post(userinfo, json={"User": SMTP_USER}, timeout=5)
    assert (r.status_code, r.json()) == (
        429,
        {"Status": "error", "Code": "429", "Message": "Max:5 calls per second, actual:7"},
    )
    assert (r := console("GET", "Console/List/1")).json() == console_429(8)
    assert r.status_code == 429


def test_sms_sends_capped_at_30_per_second(sb: Sandbox, payload, ctl) -> None:
    with requests.Session() as session:
        url = f"{sb.sms_url}/sms/1234/1"
        answers = [session.post(url, json=payload(), timeout=5) for _ in range(31)]
    assert [r.status_code for r in answers] == [200] * 30 + [429]
    assert answers[-1].headers["Retry-After"] == "1"
    assert answers[-1].json() == {
        "Data": None,
        "Code": "429",
        "Description": "Max:30 calls per second, actual:31",
        "State": "ERROR",
    }
    assert len(ctl("GET", "deliveries")["deliveries"]) == 30
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 30
    listsecret = f"{sb.sms_url}/lists/1/listsecret"  # sends leave the 5/s bucket alone
    assert requests.get(listsecret, auth=AUTH, timeout=5).status_code == 200


def test_uncounted_calls(sb: Sandbox, ctl) -> None:
    body = SEND_MESSAGE
    for _ in range(8):  # purchased speed, not a per-second cap
        r = requests.post(f"{sb.send_url}/messages/sendmessage", json=body, timeout=5)
        assert r.status_code == 200
    assert all(password_grant(sb).status_code == 200 for _ in range(8))  # OAuth: not counted
    url = f"{sb.console_url}/Console/SmtpPlusPriorities"
    for _ in range(8):  # no token, no account to count against: 401 each time
        assert (
            requests.get(url, headers={"Authorization": "Bearer x"}, timeout=5).status_code == 401
        )
    assert ctl("GET", "stats")["limited"] == 0


def test_a_refused_call_draws_no_fault(sb: Sandbox, console, ctl) -> None:
    sb.set_limits(console_per_second=1)
    assert console("GET", "Console/SmtpPlusPriorities").status_code == 200
    sb.force(500, "500")
    r = console("GET", "Console/SmtpPlusPriorities")
    assert (r.status_code, r.json()) == (429, console_429(2, cap=1))
    assert len(sb.faults.pending_forced()) == 1  # still waiting for a call that gets through


def test_limits_control_route_and_reset(sb: Sandbox, console, ctl) -> None:
    assert ctl("GET", "limits") == {"sms_per_second": 30, "console_per_second": 5}
    assert ctl("POST", "limits", json={"console_per_second": 2}) == {
        "sms_per_second": 30,  # a missing cap is MailUp's
        "console_per_second": 2,
    }
    statuses = [console("GET", "Console/SmtpPlusPriorities").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert console("GET", "Console/List/1").json() == console_429(5, cap=2)  # refused ones count
    ctl("POST", "limits", json={"console_per_second": 0})
    assert all(console("GET", "Console/List/1").ok for _ in range(10))
    for bad in (
        {"console_per_second": -1},
        {"sms_per_second": "30"},
        {"sms_per_second": True},
        {"sms_per_second": 1.5},
        {"per_minute": 5},
        [5],
    ):
        assert requests.post(f"{sb.control_url}/limits", json=bad, timeout=5).status_code == 400
    ctl("POST", "reset")
    assert ctl("GET", "limits") == {"sms_per_second": 30, "console_per_second": 5}
    with pytest.raises(ValueError):
        sb.set_limits(sms_per_second=-1)
    sb.set_limits(sms_per_second=10)
    assert ctl("GET", "limits") == {"sms_per_second": 10, "console_per_second": 5}
    sb.set_limits()
    assert ctl("GET", "limits") == {"sms_per_second": 30, "console_per_second": 5}


def test_lists_groups_recipients_and_imports_count_against_the_5_per_second(
    sb: Sandbox, console, ctl
) -> None:
    for route in ("List/Countries", "TimeZones", "List", "List/1/Groups", "Imports"):
        assert console("GET", f"Console/{route}").status_code == 200
    r = console("POST", "Console/List/1/Recipient", json={"Email": "late@example.com"})
    assert (r.status_code, r.json()) == (429, console_429(6))
    assert sb.recipients(1) == []  # refused: nothing done
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["operation"], entry["fault"], entry["account_id"]) == (
        "recipient_add",
        "limit",
        1234,
    )


def test_calls_count_by_when_they_arrived_not_when_they_were_handled() -> None:
    # A busy sandbox may get to a call after later ones: it counts where it arrived
    limits = Limits()
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        assert limits.arrive(1234, CONSOLE, at=t) is None
    assert limits.arrive(1234, CONSOLE, at=0.05) is None  # nothing in the second before it
    assert limits.arrive(1234, CONSOLE, at=0.45) == Refusal(5, 6)  # 0.05 … 0.4 and itself


def test_an_added_account_sends_on_its_own_list_under_its_own_cap(
    sb: Sandbox, payload, ctl
) -> None:
    # Given a second account with its list and ListSecret, and the first one's cap spent
    added = ctl("POST", "accounts", json={"account_id": 5678})
    body = {**payload(), "ListGuid": added["list_guid"], "ListSecret": added["list_secret"]}
    with requests.Session() as session:
        for _ in range(30):
            session.post(f"{sb.sms_url}/sms/1234/1", json=payload(), timeout=5)
        # When it sends 31 SMS at once: its own 30 go, the 31st is refused
        url = f"{sb.sms_url}/sms/5678/{added['list_id']}"
        answers = [session.post(url, json=body, timeout=5) for _ in range(31)]
        # And another account's list is not its to send on
        foreign = session.post(f"{sb.sms_url}/sms/5678/1", json=payload(), timeout=5)
    assert [r.status_code for r in answers] == [200] * 30 + [429]
    assert foreign.status_code != 200
    assert added["username"] == "m5678"
    refused = requests.post(f"{sb.url}/_sandbox/accounts", json={"account_id": 5678}, timeout=5)
    assert refused.status_code == 400
