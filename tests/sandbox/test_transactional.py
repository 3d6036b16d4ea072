"""Transactional email: SendMessage, SendTemplate (merge tags), ListUserInfo, error codes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import SMTP_USER

MESSAGES = {  # the doc's error table
    "1": "The operation failed.",
    "101": "The input is null.",
    "102": "The operation is not authorized.",
    "103": "The user is not enabled.",
    "104": "The user is blocked.",
    "106": "The MailUp account cannot be found.",
    "107": "The MailUp account has been suspended.",
    "108": "The MailUp account has been deleted.",
    "109": "At leastone recipient is required.",
    "110": "The sender is required.",
    "111": "The template cannot found.",
    "112": "The user has been deleted.",
}
OK = {"Status": "done", "Code": "0", "Message": "Ok"}
USER_INFO_KEYS = {
    "Username", "IdConsole", "IdList", "IsEnabled", "Priority", "Note", "CreationDate",
    "UpdateDate", "DomainList", "SenderList", "BlockUntil", "AdminBlock",
}  # fmt: skip


def message(**overrides: Any) -> dict[str, Any]:
    """A valid SendMessage body (value None removes a field)."""
    body: dict[str, Any] = {
        "Html": {"DocType": None, "Head": None, "Body": "<div>Hi [firstname]</div>"},
        "Text": "Hi [firstname]",
        "Subject": "Hello [firstname]",
        "From": {"Name": "Shop", "Email": "sender@example.com"},
        "To": [{"Name": "Mario", "Email": "mario@example.org"}],
        "Cc": [],
        "Bcc": [],
        "XSmtpAPI": {"DynamicFields": [{"N": "firstname", "V": "Mario"}]},
        "User": dict(SMTP_USER),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def template(template_id: Any = 7, **overrides: Any) -> dict[str, Any]:
    body = message(Html=None, Text=None, Subject=None, TemplateId=template_id)
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(sb: Sandbox, route: str, body: Any = None, raw: bytes | None = None) -> requests.Response:
    url = f"{sb.send_url}/{route}"
    if raw is not None:
        return requests.post(url, data=raw, headers={"Content-Type": "application/json"})
    return requests.post(url, json=body, timeout=5)


def assert_error(r: requests.Response, code: str) -> None:
    assert r.status_code == (400 if code == "1" else 403), r.text
    body = r.json()
    assert set(body) == {"Status", "Code", "Message"}
    assert (body["Status"], body["Code"]) == ("error", code)
    assert body["Message"].startswith(MESSAGES.get(code, "The user is blocked until this date"))


def test_send_url_is_the_documented_path(sb: Sandbox) -> None:
    assert sb.send_url == f"{sb.url}/send/API/v2.0"


def test_sendmessage_keeps_attachment_and_embedded_image_bytes(sb: Sandbox, ctl) -> None:
    pdf, png = os.urandom(3000) + b"\x00\xff", os.urandom(700)
    body = message(
        Cc=[{"Name": "", "Email": "cc@example.org"}],
        Bcc=[{"Email": "bcc@example.org"}],
        ReplyTo="replies@example.com",
        ExtendedHeaders=[{"N": "X-Order", "V": "42"}],
        Attachments=[{"Filename": "invoice.pdf", "Body": base64.b64encode(pdf).decode()}],
        EmbeddedImages=[
            {"Filename": "logo.png", "ContentId": "img001", "Body": base64.b64encode(png).decode()}
        ],
        XSmtpAPI={
            "CampaignName": "Orders",
            "CampaignCode": "1001",
            "DynamicFields": [{"N": "firstname", "V": "Mario"}],
        },
    )
    r = post(sb, "messages/sendmessage", body)
    assert (r.status_code, r.json()) == (200, OK)
    (email,) = ctl("GET", "emails")["emails"]
    (attachment,) = email["attachments"]
    assert attachment == {
        "filename": "invoice.pdf",
        "content_id": "",
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "size": len(pdf),
        "body_base64": base64.b64encode(pdf).decode(),
    }
    assert base64.b64decode(attachment["body_base64"]) == pdf
    (image,) = email["embedded_images"]
    assert (image["filename"], image["content_id"]) == ("logo.png", "img001")
    assert image["sha256"] == hashlib.sha256(png).hexdigest()
    assert base64.b64decode(image["body_base64"]) == png
    assert (email["id"], email["kind"], email["smtp_user"], email["list_id"]) == (
        1,
        "message",
        "s1234_1",
        1,
    )
    assert email["from"] == {"name": "Shop", "email": "sender@example.com"}
    assert email["to"] == [{"name": "Mario", "email": "mario@example.org"}]
    assert [a["email"] for a in email["cc"] + email["bcc"]] == ["cc@example.org", "bcc@example.org"]
    assert (email["subject"], email["rendered_subject"]) == ("Hello [firstname]", "Hello Mario")
    assert (email["html"], email["rendered_html"]) == (
        "<div>Hi [firstname]</div>",
        "<div>Hi Mario</div>",
    )
    assert (email["text"], email["rendered_text"]) == ("Hi [firstname]", "Hi Mario")
    assert (email["campaign_code"], email["campaign_name"]) == ("1001", "Orders")
    assert email["dynamic_fields"] == [{"N": "firstname", "V": "Mario"}]
    assert email["extended_headers"] == [{"N": "X-Order", "V": "42"}]
    assert email["reply_to"] == "replies@example.com" and email["template_id"] is None
    assert email["time"] > 0
    entry = ctl("GET", "journal", params={"operation": "send_message"})["entries"][0]
    assert (entry["api"], entry["processed"], entry["code"], entry["email_id"]) == (
        "transactional",
        True,
        "0",
        1,
    )
    assert entry["attachments"] == [hashlib.sha256(pdf).hexdigest()]
    assert entry["to"] == ["mario@example.org"] and entry["campaign_code"] == "1001"


def test_body_as_a_byte_array_and_case_insensitive_fields(sb: Sandbox) -> None:
    body = {k.lower(): v for k, v in message().items()}
    body["attachments"] = [{"filename": "a.bin", "body": [0, 1, 2, 255]}]
    assert post(sb, "messages/sendmessage", body).json() == OK
    (email,) = sb.emails()
    assert email["attachments"][0]["body_base64"] == base64.b64encode(b"\x00\x01\x02\xff").decode()
    assert email["rendered_html"] == "<div>Hi Mario</div>"


def test_sendtemplate_merges_lowercase_tags_only(sb: Sandbox) -> None:
    fields = [{"N": "firstname", "V": "Mario"}, {"N": "lastname", "V": "Rossi"}]
    r = post(sb, "messages/sendtemplate", template(7, XSmtpAPI={"DynamicFields": fields}))
    assert (r.status_code, r.json()) == (200, OK)
    # Template 9: "<p>Dear [FirstName] / [firstname]</p>", text "[FirstName]".
    named = [{"N": "FirstName", "V": "Luigi"}]  # the field's name case doesn't matter
    assert post(sb, "messages/sendtemplate", template(9, XSmtpAPI={"DynamicFields": named})).ok
    welcome, mixed = sb.emails()
    assert (welcome["kind"], welcome["template_id"], welcome["subject"]) == (
        "template",
        7,
        "Welcome",
    )
    assert welcome["html"] == "<p>Hello [firstname] [lastname]</p>"
    assert welcome["rendered_html"] == "<p>Hello Mario Rossi</p>"
    assert welcome["rendered_text"] == "Hello Mario"
    assert mixed["rendered_html"] == "<p>Dear [FirstName] / Luigi</p>"  # capitalised: untouched
    assert mixed["rendered_text"] == "[FirstName]"


def test_sendtemplate_subject_override_and_skip_dynamic_fields(sb: Sandbox) -> None:
    xsmtp = {"DynamicFields": [{"N": "firstname", "V": "Mario"}], "SkipDynamicFields": True}
    body = template("7", Subject="Custom subject", XSmtpAPI=xsmtp)
    assert post(sb, "messages/sendtemplate", body).json() == OK
    (email,) = sb.emails()
    assert email["subject"] == "Custom subject" and email["template_id"] == 7
    assert email["rendered_html"] == "<p>Hello [firstname] [lastname]</p>"


@pytest.mark.parametrize(
    ("route", "body", "raw", "code"),
    [
        ("messages/sendmessage", None, b"", "101"),
        ("messages/sendmessage", None, b"not json", "101"),
        ("messages/sendmessage", None, b"null", "101"),
        ("messages/sendtemplate", None, b"[1, 2]", "101"),
        ("users/listuserinfo", None, b"", "101"),
        ("messages/sendmessage", message(User=None), None, "102"),
        (
            "messages/sendmessage",
            message(User={"Username": "s1234_1", "Secret": "no"}),
            None,
            "102",
        ),
        ("messages/sendmessage", message(User={"Username": "s1234_9", "Secret": "x"}), None, "102"),
        ("messages/sendmessage", message(User={"Username": "s1234_1"}), None, "102"),
        ("users/listuserinfo", {"User": {"Username": "s1234_1", "Secret": ""}}, None, "102"),
        ("messages/sendmessage", message(To=[], Cc=None, Bcc=None), None, "109"),
        ("messages/sendmessage", message(To=[{"Name": "x", "Email": " "}]), None, "109"),
        ("messages/sendtemplate", template(To=None), None, "109"),
        ("messages/sendmessage", message(From=None), None, "110"),
        ("messages/sendmessage", message(From={"Name": "Shop", "Email": ""}), None, "110"),
        ("messages/sendtemplate", template(From={"Name": "Shop"}), None, "110"),
        ("messages/sendtemplate", template(12345), None, "111"),
        ("messages/sendtemplate", template(8), None, "111"),  # list 2's template
        ("messages/sendtemplate", template(None), None, "111"),
        ("messages/sendtemplate", template("seven"), None, "111"),
        ("messages/sendmessage", message(To="mario@example.org"), None, "1"),
        ("messages/sendmessage", message(Attachments=[{"Body": "%%% not base64"}]), None, "1"),
        ("messages/sendmessage", message(EmbeddedImages=[{"Body": [1, 256]}]), None, "1"),
        ("messages/sendmessage", message(User="s1234_1"), None, "1"),
    ],
)
def test_error_codes(sb: Sandbox, ctl, route, body, raw, code) -> None:
    assert_error(post(sb, route, body, raw), code)
    assert sb.emails() == []
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["api"], entry["processed"], entry["code"]) == ("transactional", False, code)


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        ({"is_enabled": False}, "103"),
        ({"admin_block": True}, "104"),
        ({"block_until": "2999-12-31T23:00:00"}, "105"),
        ({"block_until": "2999-12-31T23:00:00+02:00"}, "105"),
        ({"deleted": True}, "112"),
        ({"deleted": True, "is_enabled": False, "admin_block": True}, "112"),
    ],
)
def test_user_states(sb: Sandbox, ctl, settings, code) -> None:
    ctl("POST", "smtp-users/s1234_1", json=settings)
    for route, body in (("messages/sendmessage", message()), ("messages/sendtemplate", template())):
        assert_error(post(sb, route, body), code)
    assert sb.emails() == []
    if code == "105":
        assert "2999-12-31" in post(sb, "messages/sendmessage", message()).json()["Message"]


def test_user_states_can_be_lifted(sb: Sandbox, ctl) -> None:
    ctl("POST", "smtp-users/s1234_1", json={"is_enabled": False, "admin_block": True})
    assert_error(post(sb, "messages/sendmessage", message()), "103")
    ctl("POST", "smtp-users/s1234_1", json={"is_enabled": True})
    assert_error(post(sb, "messages/sendmessage", message()), "104")
    user = ctl("POST", "smtp-users/s1234_1", json={"admin_block": False, "block_until": None})
    assert (user["is_enabled"], user["admin_block"], user["block_until"]) == (True, False, None)
    ctl("POST", "smtp-users/s1234_1", json={"block_until": "2001-01-01T00:00:00"})  # past
    assert post(sb, "messages/sendmessage", message()).json() == OK


ROUTES = {
    "messages/sendmessage": message(),
    "messages/sendtemplate": template(),
    "users/listuserinfo": {"User": SMTP_USER},
}


@pytest.mark.parametrize(("status", "code"), [("suspended", "107"), ("deleted", "108")])
def test_closed_account_refuses_sends_and_user_info(sb: Sandbox, ctl, status, code) -> None:
    account = ctl("POST", "accounts/1234", json={"status": status})
    assert (account["id"], account["status"]) == (1234, status) and "password" not in account
    for route, body in ROUTES.items():
        assert_error(post(sb, route, body), code)
    sb.set_smtp_user("s1234_1", is_enabled=False, admin_block=True)  # 103/104 come after
    assert_error(post(sb, "messages/sendmessage", message()), code)
    wrong = message(User={"Username": "s1234_1", "Secret": "wrong"})  # 102 comes before
    assert_error(post(sb, "messages/sendmessage", wrong), "102")
    sb.set_smtp_user("s1234_1", deleted=True)  # and so does 112
    assert_error(post(sb, "messages/sendmessage", message()), "112")
    assert sb.emails() == []
    entries = ctl("GET", "journal")["entries"]
    assert [e["processed"] for e in entries] == [False] * 6


def test_reopened_account_sends_again(sb: Sandbox) -> None:
    assert sb.set_account(1234, status="suspended")["status"] == "suspended"
    assert_error(post(sb, "messages/sendmessage", message()), "107")
    sb.set_account(1234, status="active")
    assert post(sb, "messages/sendmessage", message()).json() == OK
    assert [a["status"] for a in sb.accounts()] == ["active"]
    sb.set_account(1234, status="deleted")
    sb.reset()
    assert sb.accounts()[0]["status"] == "active"


def test_smtp_user_of_an_unknown_account_is_106(sb: Sandbox) -> None:
    with sb.state.lock:  # an SMTP+ user whose account MailUp no longer knows
        sb.state.smtp_users["s1234_1"].account_id = 4321
    for route, body in ROUTES.items():
        assert_error(post(sb, route, body), "106")
    assert sb.emails() == []


def test_control_account_validation(sb: Sandbox, ctl) -> None:
    url = f"{sb.control_url}/accounts"
    assert requests.post(f"{url}/999", json={"status": "active"}, timeout=5).status_code == 404
    for bad in ({"status": "closed"}, {"status": None}, {"credits": "lots"}, {"banned": True}):
        assert requests.post(f"{url}/1234", json=bad, timeout=5).status_code == 400
    both = ctl("POST", "accounts/1234", json={"status": "suspended", "credits": 12})
    assert (both["status"], both["credits"]) == ("suspended", 12.0)
    assert ctl("POST", "accounts/1234/credits", json={"credits": 3}) == {"id": 1234, "credits": 3.0}
    assert ctl("GET", "state/accounts")["accounts"] == [
        {"id": 1234, "username": "m1234", "credits": 3.0, "status": "suspended"}
    ]
    with pytest.raises(ValueError):
        sb.set_account(1234, status="frozen")
    with pytest.raises(KeyError):
        sb.set_account(999, credits=1)


def test_control_smtp_user_validation(sb: Sandbox) -> None:
    url = f"{sb.control_url}/smtp-users"
    assert requests.post(f"{url}/s1234_77", json={"deleted": True}).status_code == 404
    assert requests.post(f"{url}/s1234_1", json={"banned": True}).status_code == 400
    assert requests.post(f"{url}/s1234_1", json={"deleted": "yes"}).status_code == 400
    assert requests.post(f"{url}/s1234_1", json={"block_until": "tomorrow"}).status_code == 400
    assert post(sb, "messages/sendmessage", message()).json() == OK  # nothing changed


def test_list_user_info(sb: Sandbox, console) -> None:
    created = console("POST", "Console/List/1/SmtpPlus", json={"TrustedDomains": ["a.example"]})
    assert created.status_code == 200
    console("POST", "Console/List/2/SmtpPlus", json={"TrustedDomains": ["b.example"]})
    r = post(sb, "users/listuserinfo", {"User": SMTP_USER})
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("Status", "Code", "Message")} == OK
    assert [u["Username"] for u in body["UserList"]] == ["s1234_1", "s1234_2"]  # list 1 only
    seeded, created_user = body["UserList"]
    assert set(seeded) == USER_INFO_KEYS
    assert {k: v for k, v in seeded.items() if not k.endswith("Date")} == {
        "Username": "s1234_1",
        "IdConsole": 1234,
        "IdList": 1,
        "IsEnabled": True,
        "Priority": 3,
        "Note": "seeded",
        "DomainList": "",
        "SenderList": "sender@example.com",
        "BlockUntil": "0001-01-01T00:00:00",
        "AdminBlock": False,
    }
    assert len(seeded["CreationDate"]) == 19 and seeded["CreationDate"][10] == "T"
    assert created_user["DomainList"] == "a.example"

    one = post(sb, "users/listuserinfo", {"User": SMTP_USER, "Username": "s1234_2"}).json()
    assert [u["Username"] for u in one["UserList"]] == ["s1234_2"]


def test_list_user_info_explains_blocks_and_deletions(sb: Sandbox, console, ctl) -> None:
    sb.set_limits(console_per_second=0)  # 6 ListUserInfo and Console calls: over MailUp's 5/s
    ctl(
        "POST",
        "smtp-users/s1234_1",
        json={"admin_block": True, "is_enabled": False, "block_until": "2999-01-02T03:04:05"},
    )
    r = post(sb, "users/listuserinfo", {"User": SMTP_USER})  # a blocked caller may still ask
    assert r.status_code == 200
    (info,) = r.json()["UserList"]
    assert (info["AdminBlock"], info["IsEnabled"], info["BlockUntil"]) == (
        True,
        False,
        "2999-01-02T03:04:05",
    )
    password = console(
        "POST", "Console/List/1/SmtpPlus", json={"TrustedDomains": ["a.example"]}
    ).json()["Password"]
    ctl("POST", "smtp-users/s1234_2", json={"deleted": True})
    other = {"Username": "s1234_2", "Secret": password}
    assert_error(post(sb, "users/listuserinfo", {"User": other}), "112")
    assert_error(post(sb, "users/listuserinfo", {"User": SMTP_USER, "Username": "s1234_2"}), "112")
    everyone = post(sb, "users/listuserinfo", {"User": SMTP_USER}).json()["UserList"]
    assert [u["Username"] for u in everyone] == ["s1234_1"]  # the deleted one is gone
    assert_error(post(sb, "users/listuserinfo", {"User": SMTP_USER, "Username": "s9_9"}), "1")


def test_forced_answers_use_the_send_shape(sb: Sandbox, ctl) -> None:
    ctl("POST", "force", json={"http_status": 403, "code": "104", "operation": "send_template"})
    assert post(sb, "messages/sendmessage", message()).json() == OK
    r = post(sb, "messages/sendtemplate", template())
    assert (r.status_code, r.json()) == (
        403,
        {"Status": "error", "Code": "104", "Message": "The user is blocked."},
    )
    ctl("POST", "faults", json={"error_rate": 1.0})
    answers = [post(sb, "messages/sendmessage", message()) for _ in range(10)]
    assert {r.status_code for r in answers} == {500, 503}
    assert all(r.json()["Code"] == "1" for r in answers if r.status_code == 500)
    assert len(sb.emails()) == 1  # only the first one went through
    ctl("POST", "faults", json={"drop_after_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        post(sb, "messages/sendmessage", message())
    assert len(sb.emails()) == 2  # accepted, then the answer was lost


def test_journal_never_holds_smtp_secrets(sb: Sandbox, console, ctl) -> None:
    new_secret = console(
        "POST", "Console/List/1/SmtpPlus", json={"TrustedDomains": ["a.example"]}
    ).json()["Password"]
    post(sb, "messages/sendmessage", message())
    wrong = message(User={"Username": "s1234_1", "Secret": new_secret})  # real, but not its own
    post(sb, "messages/sendmessage", wrong)
    post(sb, "users/listuserinfo", {"User": {"Username": "s1234_2", "Secret": new_secret}})
    text = json.dumps(ctl("GET", "journal"))
    for secret in ("sandbox-smtp-secret", new_secret, "sandbox-password", "sandbox-client-secret"):
        assert secret not in text
    sends = ctl("GET", "journal", params={"operation": "send_message"})["entries"]
    assert [e["secret_valid"] for e in sends] == [True, False]


def test_python_helpers(sb: Sandbox) -> None:
    user = sb.set_smtp_user("s1234_1", is_enabled=False)
    assert user["is_enabled"] is False and user["secret"] == SMTP_USER["Secret"]
    assert_error(post(sb, "messages/sendmessage", message()), "103")
    sb.set_smtp_user("s1234_1", is_enabled=True)
    assert post(sb, "messages/sendmessage", message()).json() == OK
    assert [e["rendered_text"] for e in sb.emails()] == ["Hi Mario"]
    with pytest.raises(KeyError):
        sb.set_smtp_user("nobody", deleted=True)
    with pytest.raises(ValueError):
        sb.set_smtp_user("s1234_1", secret="x")
    sb.reset()
    assert sb.emails() == []
