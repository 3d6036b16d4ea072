"""OAuth2 token endpoint: password and refresh grants, rotation, errors, expiry, faults, journal."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import CLIENT, bearer, password_grant

UNAUTHORIZED = {
    "ErrorCode": "401",
    "ErrorDescription": "Unauthorized",
    "ErrorName": "Unauthorized",
    "ErrorStack": "",
}


def refresh(sb: Sandbox, refresh_token: str, **overrides: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return requests.post(sb.token_url, data=form | CLIENT | overrides, timeout=5)


def priorities(sb: Sandbox, access_token: str) -> requests.Response:
    url = f"{sb.console_url}/Console/SmtpPlusPriorities"
    return requests.get(url, headers=bearer(access_token), timeout=5)


def test_token_url_is_the_documented_path(sb: Sandbox) -> None:
    assert sb.token_url == f"{sb.url}/services/Authorization/OAuth/Token"


def test_password_grant_answers_tokens_that_work(sb: Sandbox, ctl) -> None:
    r = password_grant(sb)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token"}
    assert body["expires_in"] == 900
    assert len(body["access_token"]) >= 32 and body["access_token"] != body["refresh_token"]
    assert priorities(sb, body["access_token"]).status_code == 200
    assert password_grant(sb).json()["access_token"] != body["access_token"]  # random each time
    entries = ctl("GET", "journal", params={"operation": "token_password"})["entries"]
    assert len(entries) == 2
    assert (entries[0]["api"], entries[0]["processed"]) == ("oauth", True)
    assert (entries[0]["username"], entries[0]["client_id"]) == ("m1234", "sandbox-client")


def test_client_credentials_as_http_basic(sb: Sandbox) -> None:
    form = {"grant_type": "password", "username": "m1234", "password": "sandbox-password"}
    basic = (CLIENT["client_id"], CLIENT["client_secret"])
    r = requests.post(sb.token_url, data=form, auth=basic, timeout=5)
    assert r.status_code == 200 and r.json()["expires_in"] == 900
    r = requests.post(sb.token_url, data=form, auth=(CLIENT["client_id"], "nope"), timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_refresh_rotates_and_refresh_tokens_are_single_use(sb: Sandbox, tokens, ctl) -> None:
    r = refresh(sb, tokens["refresh_token"])
    assert r.status_code == 200
    renewed = r.json()
    assert set(renewed) == {"access_token", "expires_in", "refresh_token"}
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["access_token"] != tokens["access_token"]
    assert priorities(sb, renewed["access_token"]).status_code == 200

    again = refresh(sb, tokens["refresh_token"])  # the used one
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.json()["error_description"]
    done = ctl("GET", "journal", params={"operation": "token_refresh", "processed": "true"})
    assert len(done["entries"]) == 1  # exactly one refresh went through
    assert len(ctl("GET", "journal", params={"operation": "token_refresh"})["entries"]) == 2
    assert refresh(sb, renewed["refresh_token"]).status_code == 200  # the successor works


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"password": "wrong"}, 400, "invalid_grant"),
        ({"username": "m9999"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"client_secret": ""}, 401, "invalid_client"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ],
)
def test_password_grant_errors(sb: Sandbox, ctl, overrides, status, error) -> None:
    r = password_grant(sb, **overrides)
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error
    assert body["error_description"]
    entry = ctl("GET", "journal")["entries"][-1]
    assert (entry["processed"], entry["http_status"], entry["code"]) == (False, status, error)


def test_refresh_errors(sb: Sandbox, tokens) -> None:
    r = refresh(sb, "not-a-token")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    r = refresh(sb, "")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    r = refresh(sb, tokens["refresh_token"], client_secret="wrong")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    assert refresh(sb, tokens["refresh_token"]).status_code == 200  # a refused try used nothing


def test_expired_token_gets_401_then_a_refreshed_one_works(sb: Sandbox, tokens, ctl) -> None:
    assert priorities(sb, tokens["access_token"]).status_code == 200
    assert ctl("POST", "oauth/expire") == {"expired": 1}
    r = priorities(sb, tokens["access_token"])
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    renewed = refresh(sb, tokens["refresh_token"]).json()
    assert priorities(sb, renewed["access_token"]).status_code == 200
    assert priorities(sb, tokens["access_token"]).status_code == 401  # still expired
    entries = ctl("GET", "journal", params={"operation": "smtpplus_priorities"})["entries"]
    assert [e["token_valid"] for e in entries] == [True, False, True, False]


def test_token_lifetime_is_configurable(sb: Sandbox, ctl) -> None:
    assert ctl("GET", "oauth") == {"expires_in": 900}
    assert ctl("POST", "oauth", json={"expires_in": 0}) == {"expires_in": 0}
    born_dead = password_grant(sb).json()
    assert born_dead["expires_in"] == 0
    assert priorities(sb, born_dead["access_token"]).status_code == 401
    ctl("POST", "oauth", json={"expires_in": 60})
    fresh = password_grant(sb).json()
    assert fresh["expires_in"] == 60 and priorities(sb, fresh["access_token"]).status_code == 200
    for bad in ({"expires_in": -1}, {"expires_in": "soon"}, {"expires_in": True}, {}):
        assert requests.post(f"{sb.control_url}/oauth", json=bad, timeout=5).status_code == 400


def test_faults_apply_to_the_token_endpoint(sb: Sandbox, tokens, ctl) -> None:
    ctl("POST", "force", json={"http_status": 503, "operation": "token_refresh"})
    assert password_grant(sb).status_code == 200  # not the forced operation
    r = refresh(sb, tokens["refresh_token"])
    assert (r.status_code, r.content) == (503, b"")
    assert refresh(sb, tokens["refresh_token"]).status_code == 200  # not consumed by the fault
    ctl("POST", "force", json={"http_status": 400, "code": "invalid_grant"})
    r = password_grant(sb)
    assert r.json() == {
        "error": "invalid_grant",
        "error_description": "The provided authorization grant is invalid, expired or revoked.",
    }
    ctl("POST", "faults", json={"error_rate": 1.0})
    answers = [password_grant(sb) for _ in range(12)]
    assert {r.status_code for r in answers} == {500, 503}
    for r in answers:
        if r.status_code == 500:
            assert r.json()["error"] == "server_error" and r.json()["error_description"]


def test_journal_never_holds_tokens_or_credentials(sb: Sandbox, tokens, ctl) -> None:
    renewed = refresh(sb, tokens["refresh_token"]).json()
    refresh(sb, tokens["refresh_token"])  # a used token must not leak either
    password_grant(sb, password="wrong-password-xyz")
    basic = (CLIENT["client_id"], CLIENT["client_secret"])
    requests.post(sb.token_url, data={"grant_type": "password"}, auth=basic, timeout=5)
    priorities(sb, renewed["access_token"])
    text = json.dumps(ctl("GET", "journal"))
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
        "sandbox-client-secret",
        "sandbox-password",
        "wrong-password-xyz",
        base64.b64encode(b"sandbox-client:sandbox-client-secret").decode(),  # the Basic header
        '"Authorization"',  # no header is recorded (the URL path does contain the word)
        "Bearer",
    ):
        assert secret not in text
    assert "token_password" in text and "token_refresh" in text


def test_python_helpers(sb: Sandbox, tokens) -> None:
    assert sb.expire_tokens() == 1
    assert priorities(sb, tokens["access_token"]).status_code == 401
    sb.set_token_lifetime(5)
    assert password_grant(sb).json()["expires_in"] == 5
    with pytest.raises(ValueError):
        sb.set_token_lifetime(-5)
