"""Fixtures: a fresh Sandbox per test on an ephemeral port, talked to over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from sandbox import Sandbox
from sandbox.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SMTP_SECRET,
    DEFAULT_SMTP_USER,
    DEFAULT_USERNAME,
    list_guid,
)

AUTH = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
GUIDS = {n: list_guid(n) for n in (1, 2, 3)}
CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
SMTP_USER = {"Username": DEFAULT_SMTP_USER, "Secret": DEFAULT_SMTP_SECRET}
# A minimal SendMessage body that the sandbox accepts.
SEND_MESSAGE = {
    "User": SMTP_USER,
    "Subject": "hi",
    "Html": {"Body": "<p>hi</p>"},
    "From": {"Email": "sender@example.com"},
    "To": [{"Email": "rcpt@example.org"}],
}

SENDER_DETAILS = {  # the doc's "mandatory sender details", as the doc's example sends them
    "Name": "New Arrivals",
    "Business": True,
    "Customer": True,
    "OwnerEmail": "jane@example.com",
    "NLSenderName": "Your sender name",
    "CompanyName": "Your company",
    "ContactName": "Your name",
    "Address": "Your address",
    "City": "Your city",
    "CountryCode": "IT",
    "PermissionReminder": "Your permission reminder",
    "WebSiteUrl": "Your site",
}


def password_grant(sb: Sandbox, **overrides: str) -> requests.Response:
    """POST the token URL with the seeded console user and client (form fields overridable)."""
    form = {"grant_type": "password", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}
    return requests.post(sb.token_url, data=form | CLIENT | overrides, timeout=5)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def console_error(r: requests.Response, status: int) -> str:
    """Assert the Console error shape and status; return the description."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"ErrorCode", "ErrorDescription", "ErrorName", "ErrorStack"}
    assert (body["ErrorCode"], body["ErrorStack"]) == (str(status), "")
    assert body["ErrorName"] and body["ErrorDescription"]
    return str(body["ErrorDescription"])


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def ctl(sb: Sandbox) -> Callable[..., Any]:
    """ctl("GET", "journal", params=...) -> decoded JSON of a control route, asserting 200."""

    def call(method: str, route: str, **kwargs: Any) -> Any:
        r = requests.request(method, f"{sb.url}/_sandbox/{route}", timeout=5, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    return call


@pytest.fixture
def secrets(sb: Sandbox) -> dict[int, str]:
    """Create a ListSecret on every seeded list, over the API."""
    out = {}
    for n, guid in GUIDS.items():
        r = requests.post(f"{sb.sms_url}/lists/{n}/listsecret", json={"ListGUID": guid}, auth=AUTH)
        out[n] = r.json()["Data"]["ListSecret"]
    return out


@pytest.fixture
def payload(secrets: dict[int, str]) -> Callable[..., dict[str, Any]]:
    """A valid send body for list 1, with overrides (value None removes the field)."""

    def build(list_id: int = 1, **overrides: Any) -> dict[str, Any]:
        body = {
            "Content": "Hello",
            "ListGuid": GUIDS[list_id],
            "ListSecret": secrets[list_id],
            "Recipient": "+393350000001",
            "CampaignCode": "tests",
            "isUnicode": 0,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    return build


@pytest.fixture
def send(sb: Sandbox, payload: Callable[..., dict[str, Any]]) -> Callable[..., requests.Response]:
    """send(list_id=1, **overrides) -> the Response of POST sms/1234/{list_id}."""

    def post(list_id: int = 1, **overrides: Any) -> requests.Response:
        body = payload(list_id, **overrides)
        return requests.post(f"{sb.sms_url}/sms/1234/{list_id}", json=body, timeout=5)

    return post


@pytest.fixture
def tokens(sb: Sandbox) -> dict[str, Any]:
    """A password grant's answer: access_token, expires_in, refresh_token."""
    r = password_grant(sb)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture
def uncapped(sb: Sandbox) -> None:
    """No per-second Console cap: for tests that make more calls than MailUp's 5/s allows."""
    sb.set_limits(console_per_second=0)


@pytest.fixture
def console(sb: Sandbox, tokens: dict[str, Any]) -> Callable[..., requests.Response]:
    """console("GET", "Console/SmtpPlusPriorities", ...) with the fixture's Bearer token."""

    def call(method: str, route: str, **kwargs: Any) -> requests.Response:
        headers = bearer(tokens["access_token"]) | kwargs.pop("headers", {})
        url = f"{sb.console_url}/{route}"
        return requests.request(method, url, headers=headers, timeout=5, **kwargs)

    return call
