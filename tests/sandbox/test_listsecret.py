"""ListSecret GET/POST/DELETE: lifecycle, Basic auth, GUID validation."""

from __future__ import annotations

import uuid

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import AUTH, GUIDS


def secret_url(sb: Sandbox, list_id: int = 1) -> str:
    return f"{sb.sms_url}/lists/{list_id}/listsecret"


def create(url: str) -> str:
    return requests.post(url, json={"ListGUID": GUIDS[1]}, auth=AUTH).json()["Data"]["ListSecret"]


def test_lifecycle(sb: Sandbox) -> None:
    sb.set_limits(console_per_second=0)  # 8 ListSecret calls in a burst: over MailUp's 5/s
    url = secret_url(sb)
    assert requests.get(url, auth=AUTH).json() == {
        "Data": {"ListSecret": None},
        "Code": "0",
        "Description": "",
        "State": "DONE",
    }
    created = requests.post(url, json={"ListGUID": GUIDS[1]}, auth=AUTH).json()["Data"][
        "ListSecret"
    ]
    assert str(uuid.UUID(created)) == created
    assert requests.get(url, auth=AUTH).json()["Data"]["ListSecret"] == created
    assert create(url) == created  # an existing secret is returned unchanged
    assert requests.get(secret_url(sb, 2), auth=AUTH).json()["Data"]["ListSecret"] is None

    deleted = requests.delete(url, params={"listGUID": GUIDS[1]}, auth=AUTH)
    assert deleted.status_code == 200
    assert deleted.json() == {"Data": None, "Code": "0", "Description": "", "State": "DONE"}
    assert requests.get(url, auth=AUTH).json()["Data"]["ListSecret"] is None

    body = {"Content": "x", "ListGuid": GUIDS[1], "ListSecret": created, "Recipient": "+3933512345"}
    r = requests.post(f"{sb.sms_url}/sms/1234/1", json=body)
    assert (r.status_code, r.json()["Code"]) == (400, "103")

    renewed = requests.post(url, json={"ListGUID": GUIDS[1]}, auth=AUTH).json()["Data"][
        "ListSecret"
    ]
    assert renewed != created


@pytest.mark.parametrize(
    "auth", [None, ("m1234", "wrong"), ("m9999", "sandbox-password"), "Basic !!notbase64"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_basic_auth_required(sb: Sandbox, auth, method: str) -> None:
    headers = {"Authorization": auth} if isinstance(auth, str) else {}
    r = requests.request(
        method,
        secret_url(sb),
        auth=auth if isinstance(auth, tuple) else None,
        headers=headers,
        json={"ListGUID": GUIDS[1]},
        params={"listGUID": GUIDS[1]},
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert r.json() == {
        "Data": None,
        "Code": "250",
        "Description": "Access denied",
        "State": "ERROR",
    }
    lists = requests.get(f"{sb.url}/_sandbox/state/lists").json()["lists"]
    assert lists[0]["list_secret"] is None  # nothing was created


@pytest.mark.parametrize(
    ("method", "list_id", "kwargs", "status", "code"),
    [
        ("GET", 99, {}, 403, "201"),
        ("POST", 99, {"json": {"ListGUID": GUIDS[1]}}, 403, "201"),
        ("POST", 1, {"data": "not json"}, 400, "100"),
        ("POST", 1, {}, 400, "100"),
        ("POST", 1, {"json": {}}, 400, "101"),
        ("POST", 1, {"json": {"ListGUID": "not-a-guid"}}, 403, "202"),
        ("POST", 1, {"json": {"ListGUID": GUIDS[2]}}, 400, "102"),
        ("DELETE", 1, {}, 400, "101"),
        ("DELETE", 1, {"params": {"listGUID": "zzz"}}, 403, "202"),
        ("DELETE", 1, {"params": {"listGUID": GUIDS[3]}}, 400, "102"),
        ("DELETE", 99, {"params": {"listGUID": GUIDS[1]}}, 403, "201"),
    ],
)
def test_listsecret_errors(sb: Sandbox, method, list_id, kwargs, status, code) -> None:
    r = requests.request(method, secret_url(sb, list_id), auth=AUTH, **kwargs)
    assert (r.status_code, r.json()["Code"], r.json()["State"]) == (status, code, "ERROR")
    assert r.json()["Data"] is None


def test_guid_and_query_key_are_case_insensitive(sb: Sandbox, secrets) -> None:
    r = requests.delete(secret_url(sb), params={"LISTGUID": GUIDS[1].upper()}, auth=AUTH)
    assert r.json()["Code"] == "0"
    assert requests.get(secret_url(sb), auth=AUTH).json()["Data"]["ListSecret"] is None
