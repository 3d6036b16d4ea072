"""Console API: Bearer auth, SMTP+ priorities, users and password reset, trusted senders."""

from __future__ import annotations

import json
import re

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import SMTP_USER, console_error

UNAUTHORIZED = {
    "ErrorCode": "401",
    "ErrorDescription": "Unauthorized",
    "ErrorName": "Unauthorized",
    "ErrorStack": "",
}
SMTP_USER_KEYS = {
    "CreationDate", "IdList", "IsEnabled", "Note", "Password", "PriorityCode",
    "SmtpPlusEncryption", "SmtpPlusPort", "SmtpPlusServer", "TrustedDomains", "TrustedSenders",
    "UpdateDate", "Username",
}  # fmt: skip
SENDER_KEYS = {
    "AuthorizationDate", "CreationDate", "EmailAddress", "IdTrustedSender", "StatusCode",
    "StatusDescription", "UpdateDate",
}  # fmt: skip
CONSOLE_DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")


def trust(console, email: str) -> dict:
    r = console("POST", "Console/TrustedSenders", json={"Email": email})
    assert r.status_code == 200, r.text
    return dict(r.json())


def send_as(sb: Sandbox, username: str, secret: str) -> requests.Response:
    body = {
        "User": {"Username": username, "Secret": secret},
        "Subject": "hi",
        "Html": {"Body": "<p>hi</p>"},
        "From": {"Email": "sender@example.com"},
        "To": [{"Email": "rcpt@example.org"}],
    }
    return requests.post(f"{sb.send_url}/messages/sendmessage", json=body, timeout=5)


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}, {"Authorization": "x"}],
)
def test_missing_or_invalid_token_is_401(sb: Sandbox, ctl, headers) -> None:
    r = requests.get(f"{sb.console_url}/Console/SmtpPlusPriorities", headers=headers, timeout=5)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["api"], entry["token_valid"], entry["processed"]) == ("console", False, False)


def test_basic_auth_is_not_enough(sb: Sandbox) -> None:
    url = f"{sb.console_url}/Console/SmtpPlusPriorities"
    r = requests.get(url, auth=("m1234", "sandbox-password"), timeout=5)
    assert r.status_code == 401


def test_priorities_and_case_insensitive_paths(sb: Sandbox, console, tokens) -> None:
    assert sb.console_url == f"{sb.url}/services/API/v1.1/Rest/ConsoleService.svc"
    expected = [
        {"PriorityCode": 1, "PriorityName": "VeryHigh"},
        {"PriorityCode": 2, "PriorityName": "High"},
        {"PriorityCode": 3, "PriorityName": "Normal"},
        {"PriorityCode": 4, "PriorityName": "Low"},
        {"PriorityCode": 5, "PriorityName": "VeryLow"},
    ]
    r = console("GET", "Console/SmtpPlusPriorities")
    assert (r.status_code, r.json()) == (200, expected)
    lower = f"{sb.url}/services/api/v1.1/rest/ConsoleService.svc/Console/SmtpPlusPriorities"
    r = requests.get(lower, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.json() == expected


def test_unknown_console_route_is_404(sb: Sandbox, console) -> None:
    assert console("GET", "Console/Nowhere").status_code == 404


# --- lists -------------------------------------------------------------------------------------


def test_list_details_carry_the_list_guid(sb: Sandbox, console) -> None:
    from sandbox.state import list_guid

    r = console("GET", "Console/List/2")
    assert r.status_code == 200, r.text
    assert (r.json()["IdList"], r.json()["ListGuid"]) == (2, list_guid(2))
    assert console_error(console("GET", "Console/List/99"), 404) == "List 99 not found."
    r = requests.get(f"{sb.console_url}/Console/List/2", timeout=5)
    assert r.status_code == 401


# --- trusted senders -----------------------------------------------------------------------------


def test_trusted_sender_lifecycle(sb: Sandbox, console, ctl) -> None:
    sb.set_limits(console_per_second=0)  # a dozen Console calls in a burst: over MailUp's 5/s
    record = trust(console, "owner@shop.example")
    assert set(record) == SENDER_KEYS
    assert (record["EmailAddress"], record["StatusCode"]) == ("owner@shop.example", 0)
    assert record["StatusDescription"] == "Not confirmed (status: NotConfirmed)"
    assert record["AuthorizationDate"] == ""
    assert CONSOLE_DATE.fullmatch(record["CreationDate"])
    sender_id = record["IdTrustedSender"]
    assert re.fullmatch(r"[A-Za-z0-9]{16}", sender_id)
    assert console("GET", f"Console/TrustedSenders/{sender_id}").json() == record

    confirmed = ctl("POST", "trusted-senders/confirm", json={"email": "Owner@Shop.example"})
    assert (confirmed["status_code"], confirmed["id"]) == (1, sender_id)
    details = console("GET", f"Console/TrustedSenders/{sender_id}").json()
    assert (details["StatusCode"], details["StatusDescription"]) == (
        1,
        "Confirmed (status: Confirmed)",
    )
    assert CONSOLE_DATE.fullmatch(details["AuthorizationDate"])

    again = trust(console, "owner@shop.example")  # the doc: a re-request resets the status
    assert (again["IdTrustedSender"], again["StatusCode"]) == (sender_id, 0)
    assert again["AuthorizationDate"] == ""

    url = f"Console/TrustedSenders/{sender_id}"
    r = console("DELETE", url)
    assert r.json() == {
        "ErrorCode": "403",
        "ErrorDescription": "Missing If-Match header.",
        "ErrorName": "Forbidden",
        "ErrorStack": "",
    }
    assert r.status_code == 403
    r = console("DELETE", url, headers={"If-Match": "someone@shop.example"})
    assert r.status_code == 412
    assert r.json() == {
        "ErrorCode": "412",
        "ErrorDescription": "Invalid [EmailAddress] from If-Match header field.",
        "ErrorName": "PreconditionFailed",
        "ErrorStack": "",
    }
    assert console("GET", url).json()["StatusCode"] == 0  # the refusals changed nothing
    r = console("DELETE", url, headers={"If-Match": "owner@shop.example"})
    assert r.status_code == 200
    assert (r.json()["StatusCode"], r.json()["StatusDescription"]) == (
        2,
        "Blocked (status: Blocked)",
    )
    assert console("GET", url).json()["StatusCode"] == 2
    r = console("POST", "Console/TrustedSenders", json={"Email": "owner@shop.example"})
    assert "owner@shop.example" in console_error(r, 400)  # blocked: cannot be trusted again
    ops = [e["operation"] for e in ctl("GET", "journal", params={"processed": "true"})["entries"]]
    assert ops.count("trusted_sender_delete") == 1 and ops.count("trusted_sender_create") == 2


def test_unknown_trusted_sender_is_404(sb: Sandbox, console) -> None:
    console_error(console("GET", "Console/TrustedSenders/NoSuchSender0001"), 404)
    r = console("DELETE", "Console/TrustedSenders/NoSuchSender0001", headers={"If-Match": "a@b.c"})
    console_error(r, 404)
    assert console("GET", "Console/TrustedSenders/SandboxSender001").status_code == 200


@pytest.mark.parametrize("body", [{"Email": "not-an-address"}, {"Email": ""}, {}, [1]])
def test_trusting_garbage_is_400(sb: Sandbox, console, body) -> None:
    console_error(console("POST", "Console/TrustedSenders", json=body), 400)


def test_trusted_senders_paging(sb: Sandbox, console) -> None:
    for n in range(4):
        sb.add_trusted_sender(f"sender{n}@example.org")
    everything = console("GET", "Console/TrustedSenders").json()
    assert {k: v for k, v in everything.items() if k != "Items"} == {
        "IsPaginated": False,
        "PageNumber": 0,
        "PageSize": 20,
        "Skipped": 0,
        "TotalElementsCount": 5,
    }
    emails = [i["EmailAddress"] for i in everything["Items"]]
    assert emails == ["sender@example.com"] + [f"sender{n}@example.org" for n in range(4)]
    assert all(set(i) == SENDER_KEYS for i in everything["Items"])

    page = console("GET", "Console/TrustedSenders", params={"PageNumber": 1, "PageSize": 2})
    body = page.json()
    assert [i["EmailAddress"] for i in body["Items"]] == emails[2:4]
    assert (body["PageNumber"], body["PageSize"], body["Skipped"]) == (1, 2, 2)
    assert body["TotalElementsCount"] == 5
    last = console("GET", "Console/TrustedSenders", params={"pagenumber": 2, "pagesize": 2})
    assert [i["EmailAddress"] for i in last.json()["Items"]] == emails[4:]
    beyond = console("GET", "Console/TrustedSenders", params={"PageNumber": 9, "PageSize": 2})
    assert beyond.json()["Items"] == [] and beyond.json()["TotalElementsCount"] == 5


@pytest.mark.parametrize("params", [{"PageSize": 0}, {"PageNumber": -1}, {"PageSize": "many"}])
def test_trusted_senders_bad_paging_is_400(sb: Sandbox, console, params) -> None:
    console_error(console("GET", "Console/TrustedSenders", params=params), 400)


def test_mailup_caps_the_page_size(sb: Sandbox, console, ctl) -> None:
    for n in range(25):
        sb.add_trusted_sender(f"sender{n:02d}@example.org")
    emails = ["sender@example.com"] + [f"sender{n:02d}@example.org" for n in range(25)]

    def page(**params: int) -> dict:
        r = console("GET", "Console/TrustedSenders", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def envelope(body: dict) -> tuple:
        return body["PageNumber"], body["PageSize"], body["Skipped"], body["TotalElementsCount"]

    first = page(PageSize=100)  # asked for 100, got MailUp's 20
    assert envelope(first) == (0, 20, 0, 26)
    assert [i["EmailAddress"] for i in first["Items"]] == emails[:20]
    second = page(PageNumber=1, PageSize=100)  # Skipped counts pages of the size used
    assert envelope(second) == (1, 20, 20, 26)
    assert [i["EmailAddress"] for i in second["Items"]] == emails[20:]
    assert envelope(page()) == (0, 20, 0, 26)  # no PageSize: 20

    assert ctl("POST", "paging", json={"max_page_size": 5}) == {"max_page_size": 5}
    assert envelope(page()) == (0, 5, 0, 26)
    small = page(PageNumber=2, PageSize=3)  # under the cap: as asked
    assert envelope(small) == (2, 3, 6, 26)
    assert [i["EmailAddress"] for i in small["Items"]] == emails[6:9]

    for bad in ({"max_page_size": 0}, {"max_page_size": "5"}, {"max_page_size": True}, {}):
        assert requests.post(f"{sb.control_url}/paging", json=bad, timeout=5).status_code == 400
    sb.set_max_page_size(7)
    assert ctl("GET", "paging") == {"max_page_size": 7}
    ctl("POST", "reset")
    assert ctl("GET", "paging") == {"max_page_size": 20}


def test_disabling_needs_the_exact_email_address(sb: Sandbox, console) -> None:
    sender = sb.add_trusted_sender("Owner@Shop.example", status_code=1)
    url = f"Console/TrustedSenders/{sender['id']}"
    for wrong in ("owner@shop.example", "OWNER@SHOP.EXAMPLE", "Owner@Shop.example.", '"Owner"'):
        r = console("DELETE", url, headers={"If-Match": wrong})
        assert (r.status_code, r.json()) == (
            412,
            {
                "ErrorCode": "412",
                "ErrorDescription": "Invalid [EmailAddress] from If-Match header field.",
                "ErrorName": "PreconditionFailed",
                "ErrorStack": "",
            },
        )
    r = console("DELETE", url, headers={"If-Match": '"Owner@Shop.example"'})  # ETag-style
    assert (r.status_code, r.json()["StatusCode"]) == (200, 2)


def test_trusting_again_in_another_case_resets_the_same_sender(sb: Sandbox, console) -> None:
    sender = sb.add_trusted_sender("owner@shop.example", status_code=1)
    again = trust(console, "OWNER@Shop.Example")  # the lookup ignores case
    assert (again["IdTrustedSender"], again["StatusCode"]) == (sender["id"], 0)
    assert again["EmailAddress"] == "owner@shop.example"  # the stored address is kept
    assert again["AuthorizationDate"] == ""


def test_add_trusted_sender(sb: Sandbox, console, ctl) -> None:
    fresh = sb.add_trusted_sender("new@shop.example")
    assert (fresh["email"], fresh["status_code"], fresh["authorized"]) == (
        "new@shop.example",
        0,
        None,
    )
    confirmed = ctl("POST", "trusted-senders", json={"email": "ok@shop.example", "status_code": 1})
    assert confirmed["status_code"] == 1 and confirmed["authorized"] is not None
    blocked = sb.add_trusted_sender("no@shop.example", status_code=2)
    assert sb.add_trusted_sender("NEW@shop.example", status_code=2) == fresh  # already there
    details = console("GET", f"Console/TrustedSenders/{blocked['id']}").json()
    assert (details["EmailAddress"], details["StatusCode"]) == ("no@shop.example", 2)
    assert set(details) == SENDER_KEYS
    checked = sb.add_trusted_sender("checked@shop.example", status_code=3)  # doc 004: trusted
    assert checked["status_code"] == 3 and checked["authorized"] is not None
    for bad in (-1, True, "1"):
        with pytest.raises(ValueError):
            sb.add_trusted_sender("x@shop.example", status_code=bad)
    with pytest.raises(KeyError):
        sb.add_trusted_sender("x@shop.example", account_id=999)
    r = requests.post(f"{sb.control_url}/trusted-senders", json={"status_code": 1}, timeout=5)
    assert r.status_code == 400
    assert len(sb.trusted_senders()) == 5  # the seeded one and four added


def test_a_click_may_give_a_code_past_2_which_is_trusted_but_not_for_smtp_users(
    sb: Sandbox, console, ctl
) -> None:
    sender_id = trust(console, "shop@shop.example")["IdTrustedSender"]
    for untrusted in (0, 2):
        r = requests.post(
            f"{sb.control_url}/trusted-senders/confirm",
            json={"email": "shop@shop.example", "status_code": untrusted},
            timeout=5,
        )
        assert r.status_code == 400
    confirmed = ctl(
        "POST", "trusted-senders/confirm", json={"email": "shop@shop.example", "status_code": 3}
    )
    assert (confirmed["id"], confirmed["status_code"]) == (sender_id, 3)

    details = console("GET", f"Console/TrustedSenders/{sender_id}").json()
    assert (details["StatusCode"], details["StatusDescription"]) == (3, "Trusted (status code 3)")
    assert CONSOLE_DATE.fullmatch(details["AuthorizationDate"])
    body = {"TrustedSenders": ["shop@shop.example"]}
    refused = console("POST", "Console/List/1/SmtpPlus", json=body)  # doc 000: StatusCode 1 only
    assert "not confirmed: Trusted (status code 3)" in console_error(refused, 400)
    assert trust(console, "shop@shop.example")["StatusCode"] == 0  # a re-request resets it


# --- SMTP+ users ---------------------------------------------------------------------------------


def test_smtp_user_refused_until_sender_confirmed(sb: Sandbox, console, ctl) -> None:
    trust(console, "shop@shop.example")
    body = {
        "IsEnabled": True,
        "Note": "shop",
        "PriorityCode": 2,
        "TrustedDomains": ["shop.example"],
        "TrustedSenders": ["shop@shop.example", "sender@example.com"],
    }
    refused = console("POST", "Console/List/1/SmtpPlus", json=body)
    description = console_error(refused, 400)
    assert "shop@shop.example" in description and "not confirmed" in description
    assert [u["username"] for u in ctl("GET", "smtp-users")["smtp_users"]] == ["s1234_1"]

    ctl("POST", "trusted-senders/confirm", json={"email": "shop@shop.example"})
    r = console("POST", "Console/List/1/SmtpPlus", json=body)
    assert r.status_code == 200, r.text
    user = r.json()
    assert set(user) == SMTP_USER_KEYS
    assert (user["Username"], user["IdList"], user["IsEnabled"]) == ("s1234_2", 1, True)
    assert (user["Note"], user["PriorityCode"]) == ("shop", 2)
    assert user["TrustedDomains"] == ["shop.example"]
    assert user["TrustedSenders"] == ["shop@shop.example", "sender@example.com"]
    assert (user["SmtpPlusServer"], user["SmtpPlusPort"], user["SmtpPlusEncryption"]) == (
        "in.smtpok.com",
        "25, 80, 1025-5000",
        "NONE, STARTTLS",
    )
    assert CONSOLE_DATE.fullmatch(user["CreationDate"])
    assert len(user["Password"]) >= 8
    listed = {u["username"]: u for u in ctl("GET", "smtp-users")["smtp_users"]}
    assert listed["s1234_2"]["secret"] == user["Password"]
    assert listed["s1234_2"]["list_id"] == 1
    assert send_as(sb, "s1234_2", user["Password"]).json()["Code"] == "0"  # usable at once
    entry = ctl("GET", "journal", params={"operation": "smtpplus_create"})["entries"][-1]
    assert (entry["processed"], entry["username"]) == (True, "s1234_2")


def test_smtp_user_refused_for_blocked_or_unknown_sender(sb: Sandbox, console, ctl) -> None:
    ctl("POST", "trusted-senders/block", json={"email": "sender@example.com"})
    r = console("POST", "Console/List/1/SmtpPlus", json={"TrustedSenders": ["sender@example.com"]})
    description = console_error(r, 400)
    assert "sender@example.com" in description and "Blocked" in description
    r = console("POST", "Console/List/1/SmtpPlus", json={"TrustedSenders": ["who@nowhere.example"]})
    assert "who@nowhere.example" in console_error(r, 400)


@pytest.mark.parametrize(
    ("list_id", "body", "status"),
    [
        (99, {"TrustedDomains": ["example.com"]}, 404),
        (1, {}, 400),
        (1, {"TrustedSenders": [], "TrustedDomains": ["  "]}, 400),
        (1, {"TrustedDomains": "example.com"}, 400),
        (1, {"TrustedDomains": ["example.com"], "PriorityCode": 6}, 400),
        (1, {"TrustedDomains": ["example.com"], "IsEnabled": "yes"}, 400),
    ],
)
def test_smtp_user_creation_errors(sb: Sandbox, console, ctl, list_id, body, status) -> None:
    console_error(console("POST", f"Console/List/{list_id}/SmtpPlus", json=body), status)
    assert len(ctl("GET", "smtp-users")["smtp_users"]) == 1


def test_smtp_user_with_domains_only_on_another_list(sb: Sandbox, console) -> None:
    r = console("POST", "Console/List/2/SmtpPlus", json={"TrustedDomains": ["example.com"]})
    assert r.status_code == 200
    assert (r.json()["IdList"], r.json()["PriorityCode"], r.json()["Note"]) == (2, 3, "")


def test_reset_password(sb: Sandbox, console, ctl) -> None:
    r = console("POST", "Console/List/1/SmtpPlus/Reset", json={"Username": "s1234_1"})
    assert r.status_code == 200
    user = r.json()
    assert set(user) == SMTP_USER_KEYS | {"IsTrusted"}
    assert (user["Username"], user["IdList"]) == ("s1234_1", 1)
    assert user["Password"] != SMTP_USER["Secret"]
    assert send_as(sb, "s1234_1", SMTP_USER["Secret"]).json()["Code"] == "102"
    assert send_as(sb, "s1234_1", user["Password"]).json()["Code"] == "0"
    assert ctl("GET", "smtp-users")["smtp_users"][0]["secret"] == user["Password"]


@pytest.mark.parametrize(
    ("list_id", "username"), [(1, "s1234_99"), (2, "s1234_1"), (1, ""), (99, "s1234_1")]
)
def test_reset_unknown_user_is_404(sb: Sandbox, console, list_id, username) -> None:
    r = console("POST", f"Console/List/{list_id}/SmtpPlus/Reset", json={"Username": username})
    assert (r.status_code, r.json()) == (
        404,
        {
            "ErrorCode": "404",
            "ErrorDescription": "Account not found.",
            "ErrorName": "NotFound",
            "ErrorStack": "",
        },
    )
    assert send_as(sb, **{k.lower(): v for k, v in SMTP_USER.items()}).json()["Code"] == "0"


def test_faults_use_the_console_error_shape(sb: Sandbox, console, ctl) -> None:
    ctl("POST", "force", json={"http_status": 500, "code": "500"})
    r = console("GET", "Console/SmtpPlusPriorities")
    assert "Internal Server Error" in console_error(r, 500)
    ctl("POST", "force", json={"http_status": 401, "code": "401"})
    r = console("GET", "Console/SmtpPlusPriorities")
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    ctl("POST", "force", json={"http_status": 429, "retry_after": 4})
    assert console("GET", "Console/SmtpPlusPriorities").headers["Retry-After"] == "4"
    faults = [e["fault"] for e in ctl("GET", "journal")["entries"] if e["api"] == "console"]
    assert faults == ["forced"] * 3


def test_journal_never_holds_tokens_or_passwords(sb: Sandbox, console, tokens, ctl) -> None:
    created = console("POST", "Console/List/1/SmtpPlus", json={"TrustedDomains": ["a.example"]})
    reset = console("POST", "Console/List/1/SmtpPlus/Reset", json={"Username": "s1234_1"})
    text = json.dumps(ctl("GET", "journal"))
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        created.json()["Password"],
        reset.json()["Password"],
        "sandbox-smtp-secret",
        "sandbox-password",
        "sandbox-client-secret",
        "Bearer",
    ):
        assert secret not in text


def test_python_helpers_match_http(sb: Sandbox, console, ctl) -> None:
    sender_id = trust(console, "py@example.org")["IdTrustedSender"]
    confirmed = sb.confirm_trusted_sender("py@example.org")
    assert (confirmed["status_code"], confirmed["id"]) == (1, sender_id)
    assert confirmed["authorized"] is not None
    assert console("GET", f"Console/TrustedSenders/{sender_id}").json()["StatusCode"] == 1
    assert sb.block_trusted_sender("py@example.org")["status_code"] == 2
    assert sb.trusted_senders() == ctl("GET", "trusted-senders")["trusted_senders"]
    assert sb.smtp_users() == ctl("GET", "smtp-users")["smtp_users"]
    with pytest.raises(KeyError):
        sb.confirm_trusted_sender("nobody@example.org")
    r = requests.post(f"{sb.control_url}/trusted-senders/confirm", json={"email": "x@y.z"})
    assert r.status_code == 404
    assert requests.post(f"{sb.control_url}/trusted-senders/block", json={}).status_code == 400
