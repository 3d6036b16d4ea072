"""POST sms/{accountId}/{idList}: validation codes, delivery, cost, truncation, templates."""

from __future__ import annotations

import uuid

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import GUIDS

DROP = None  # an override value that removes the field


@pytest.mark.parametrize(
    ("url_ids", "overrides", "raw", "status", "code"),
    [
        ((1234, 1), {}, b"not json", 400, "100"),
        ((1234, 1), {}, b"", 400, "100"),
        ((1234, 1), {}, b"[1, 2]", 400, "100"),
        ((1234, 1), {"ListGuid": DROP}, None, 400, "101"),
        ((1234, 1), {"ListSecret": ""}, None, 400, "101"),
        ((1234, 1), {"Recipient": "  "}, None, 400, "101"),
        ((1234, 1), {"Content": DROP}, None, 400, "101"),
        ((1234, 1), {"TemplateId": 1}, None, 400, "101"),  # both Content and TemplateId
        ((1234, 1), {"Content": DROP, "TemplateId": 99}, None, 400, "101"),
        ((1234, 1), {"DynamicFields": "Name=John"}, None, 400, "101"),
        ((9999, 1), {}, None, 403, "201"),
        ((1234, 99), {}, None, 403, "201"),
        ((1234, 1), {"ListGuid": "xxxxxxxx-aaa-bbbb-cccc-e3a98b626156"}, None, 403, "202"),
        ((1234, 1), {"ListGuid": GUIDS[2]}, None, 400, "102"),
        ((1234, 1), {"ListSecret": "secret"}, None, 403, "203"),
        ((1234, 1), {"ListSecret": str(uuid.uuid4())}, None, 400, "103"),
        ((1234, 1), {"Recipient": "3350000001"}, None, 400, "105"),
        ((1234, 1), {"Recipient": "+39335abc0001"}, None, 400, "106"),
        ((1234, 1), {"Recipient": "+3933"}, None, 400, "106"),  # too few digits
        ((1234, 1), {"Recipient": "+3933500000011234"}, None, 400, "106"),  # 16 digits
        ((1234, 1), {"Recipient": "+1 202 555 0123"}, None, 403, "204"),
        ((1234, 1), {"Recipient": "0012025550123"}, None, 403, "204"),
        ((1234, 1), {"Sender": "Not-Certified"}, None, 403, "207"),
        ((1234, 1), {"Sender": "ABCDEFGHIJKL"}, None, 403, "207"),  # 12 chars
        ((1234, 1), {"Recipient": "0039 333 0000 666"}, None, 403, "206"),
    ],
)
def test_validation(sb: Sandbox, payload, ctl, url_ids, overrides, raw, status, code) -> None:
    url = f"{sb.sms_url}/sms/{url_ids[0]}/{url_ids[1]}"
    if raw is None:
        r = requests.post(url, json=payload(**overrides))
    else:
        r = requests.post(url, data=raw, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["Code"]) == (status, code), r.text
    assert r.json()["Data"] is None and r.json()["State"] == "ERROR"
    assert r.json()["Description"]
    assert ctl("GET", "deliveries")["deliveries"] == []
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000
    entry = ctl("GET", "journal", params={"operation": "send_sms"})["entries"][-1]
    assert (entry["processed"], entry["http_status"], entry["code"]) == (False, status, code)


def test_no_sender_on_list_without_default(send) -> None:
    r = send(3)
    assert (r.status_code, r.json()["Code"]) == (400, "104")
    assert r.json()["Description"] == "SMS sender name is empty for list nr. 3"
    assert send(3, Sender="Shop42").json()["Code"] == "0"


def test_optout_description_names_number_and_list(send) -> None:
    r = send(Recipient="+393330000666")
    assert r.json()["Description"] == "SMS number +393330000666 is in optout state for list nr.1."


def test_no_credits(sb: Sandbox, send, ctl) -> None:
    ctl("POST", "accounts/1234/credits", json={"credits": 1.5})
    assert send(Content="x" * 161).json()["Code"] == "205"  # needs 2 credits
    assert send().json()["Data"]["Cost"] == 1.0
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 0.5
    r = send()
    assert (r.status_code, r.json()["Code"]) == (403, "205")
    assert r.json()["Description"] == "Sending denied: NO CREDITS"


def test_delivery_ids_increment_and_credits_are_charged(send, ctl) -> None:
    replies = [send(Recipient=f"+39335000000{i}").json() for i in range(3)]
    assert [r["Data"]["DeliveryId"] for r in replies] == [1, 2, 3]
    assert all(r == {**r, "Code": "0", "Description": "", "State": "DONE"} for r in replies)
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 3
    delivered = ctl("GET", "deliveries")["deliveries"]
    assert [d["recipient"] for d in delivered] == [f"+39335000000{i}" for i in range(3)]
    assert delivered[0]["sender"] == "MailUp"  # the list's default sender


@pytest.mark.parametrize(
    ("length", "unicode", "cost"),
    [
        (160, 0, 1.0),
        (161, 0, 2.0),
        (306, False, 2.0),
        (307, "false", 3.0),
        (70, 1, 1.0),
        (71, 1, 2.0),
        (134, True, 2.0),
        (135, "true", 3.0),
    ],
)
def test_cost_per_segment(send, length: int, unicode, cost: float) -> None:
    r = send(Content="é" * length if unicode else "a" * length, isUnicode=unicode)
    assert r.json()["Data"]["Cost"] == cost


def test_truncated_past_670_chars(send, ctl) -> None:
    r = send(Content="b" * 700)
    assert r.json()["Data"]["Cost"] == 5.0  # ceil(670 / 153)
    entry = ctl("GET", "deliveries")["deliveries"][0]
    assert entry["truncated"] is True and entry["content"] == "b" * 670
    send(Content="c" * 670)
    assert ctl("GET", "deliveries")["deliveries"][1]["truncated"] is False


def test_template_with_dynamic_fields(send, ctl) -> None:
    fields = [{"N": "Name", "V": "John"}, {"N": "City", "V": "Cremona"}]
    assert send(Content=None, TemplateId=1, DynamicFields=fields).json()["Code"] == "0"
    assert send(Content="[Name]! [Name]? [Other]", DynamicFields=fields).json()["Code"] == "0"
    assert send(Content=None, TemplateId="2", DynamicFields=[{"n": "Code", "v": 42}]).ok
    contents = [d["content"] for d in ctl("GET", "deliveries")["deliveries"]]
    assert contents == ["Hi John, welcome to Cremona", "John! John? [Other]", "Your code is 42"]


def test_recipient_normalized_and_fields_case_insensitive(sb: Sandbox, payload, ctl) -> None:
    body = {k.lower(): v for k, v in payload(Recipient="0039 335 000 0001").items()}
    assert requests.post(f"{sb.sms_url}/sms/1234/1", json=body).json()["Code"] == "0"
    entry = ctl("GET", "deliveries")["deliveries"][0]
    assert (entry["recipient"], entry["campaign_code"]) == ("+393350000001", "tests")
