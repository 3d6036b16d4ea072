"""MailUp OAuth2 token endpoint (``https://services.mailup.com/Authorization/OAuth/Token``),
served at ``/services/Authorization/OAuth/Token``: the password and refresh_token grants.

A form-encoded POST; the client's credentials come in the form or as HTTP Basic. Answers
``{"access_token", "expires_in", "refresh_token"}`` with opaque random tokens; errors are RFC
6749's ``{"error", "error_description"}``: 401 ``invalid_client`` for a bad client, 400 otherwise.
A refresh token works once (each refresh answers a new one), so a client that refreshes twice
with the same token, or in parallel, finds out here rather than in production.

The journal names the operation after the grant (``token_password``, ``token_refresh``, or
``token`` for anything else) and never holds a token, password or client secret.
"""

from __future__ import annotations

from sandbox.http import ApiFamily, Reply, Request

DESCRIPTIONS = {
    "invalid_request": "The request is missing the grant_type parameter.",
    "invalid_client": "Client authentication failed.",
    "invalid_grant": "The provided authorization grant is invalid, expired or revoked.",
    "unsupported_grant_type": "The authorization grant type is not supported.",
    "server_error": "The authorization server encountered an unexpected condition.",
}
GRANT_OPERATIONS = {"password": "token_password", "refresh_token": "token_refresh"}


def error_body(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


OAUTH = ApiFamily(
    "oauth",
    "/services/Authorization/OAuth/Token",
    error_body,
    DESCRIPTIONS,
    code_field="error",
    server_error_code="server_error",
)


def _error(status: int, code: str, description: str = "", **headers: str) -> Reply:
    return Reply(status, error_body(code, description or DESCRIPTIONS[code]), headers)


def _operation(req: Request) -> str:
    return GRANT_OPERATIONS.get(req.form().get("grant_type", ""), "token")


@OAUTH.route("POST", r"/?", "token", operation_of=_operation)
def token(req: Request) -> Reply:
    state = req.state
    assert state is not None
    form, basic = req.form(), req.basic_credentials()
    client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    grant_type = form.get("grant_type", "")
    req.details.update(grant_type=grant_type, client_id=client_id)
    with state.lock:
        client = state.oauth_clients.get(client_id)
        req.details["client_valid"] = client is not None and client.client_secret == client_secret
        if client is None or not req.details["client_valid"]:
            # RFC 6749 5.2: a client that tried Basic gets the challenge back
            challenge = {"WWW-Authenticate": 'Basic realm="MailUp"'} if basic else {}
            return _error(401, "invalid_client", **challenge)
        if grant_type == "password":
            req.details["username"] = form.get("username", "")
            account = state.account_by_username(form.get("username", ""))
            if account is None or account.password != form.get("password"):
                return _error(400, "invalid_grant", "The user name or password is incorrect.")
        elif grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            grant = state.refresh_tokens.get(refresh)
            if grant is None or grant.client_id != client.client_id:
                return _error(400, "invalid_grant", "The refresh token is unknown or was used.")
            del state.refresh_tokens[refresh]  # single use: the answer carries its successor
            account = state.accounts[grant.account_id]
        elif not grant_type:
            return _error(400, "invalid_request")
        else:
            return _error(400, "unsupported_grant_type")
        access, refresh = state.issue_tokens(account.id, client.client_id)
        expires_in = state.token_lifetime
    req.processed = True
    req.details["account_id"] = account.id
    body = {"access_token": access, "expires_in": expires_in, "refresh_token": refresh}
    return Reply(200, body, {"Cache-Control": "no-store"})
