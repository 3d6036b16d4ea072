"""MailUp's OAuth2 token endpoint (console API): password grant and refresh."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from requests.auth import HTTPBasicAuth

from worker.mailup.errors import Api
from worker.mailup.http import Timeouts, call


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float  # epoch seconds

    def fresh(self, margin: float = 60.0) -> bool:
        """Still good for at least ``margin`` seconds: refresh before expiry, not after."""
        return time.time() + margin < self.expires_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }


class OAuthClient:
    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        timeouts: Timeouts,
    ) -> None:
        self._url = token_url
        self._client = HTTPBasicAuth(client_id, client_secret)
        self._user = {"username": username, "password": password}
        self._timeouts = timeouts

    def password_grant(self) -> Token:
        return self._token({"grant_type": "password", **self._user}, "OAuth2 password grant")

    def refresh(self, refresh_token: str) -> Token:
        grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token(grant, "OAuth2 refresh")

    def _token(self, form: dict[str, str], operation: str) -> Token:
        # Asking for a token twice is harmless, so a lost answer may be retried.
        reply = call(
            "POST",
            self._url,
            api=Api.OAUTH,
            operation=operation,
            timeouts=self._timeouts,
            idempotent=True,
            data={**form, "client_id": self._client.username},
            auth=self._client,
        )
        body = reply.body
        return Token(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=time.time() + float(body.get("expires_in") or 900),
        )
