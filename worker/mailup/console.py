"""MailUp's Console API (OAuth2 Bearer): list details, SMTP+ users and trusted senders.

A 401 means the token expired: the client asks for a new one and retries once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.mailup.errors import PermanentError
from worker.mailup.http import Reply, Timeouts, call


class ConsoleClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str],
        renew: Callable[[str], str],
        timeouts: Timeouts,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._renew = renew
        self._timeouts = timeouts

    # --- lists -------------------------------------------------------------------------

    def list_guid(self, list_id: int) -> str:
        """The list's ListGuid, from its details (it never changes)."""
        reply = self._call("GET", f"Console/List/{list_id}", "read list details")
        guid = reply.body.get("ListGuid")
        if not isinstance(guid, str) or not guid:
            raise PermanentError(f"MailUp's details of list {list_id} carry no ListGuid")
        return guid

    # --- SMTP+ users --------------------------------------------------------------------

    def smtp_priorities(self) -> list[dict[str, Any]]:
        reply = self._call("GET", "Console/SmtpPlusPriorities", "read SMTP+ priorities")
        return list(reply.body.get("Data") or [])

    def create_smtp_user(self, list_id: int, user: dict[str, Any]) -> dict[str, Any]:
        """Not idempotent: a lost answer may have created a user."""
        reply = self._call(
            "POST",
            f"Console/List/{list_id}/SmtpPlus",
            "create SMTP+ user",
            json=user,
            idempotent=False,
        )
        return reply.body

    def reset_smtp_password(self, list_id: int, username: str) -> dict[str, Any]:
        reply = self._call(
            "POST",
            f"Console/List/{list_id}/SmtpPlus/Reset",
            "reset SMTP+ password",
            json={"Username": username},
            idempotent=False,
        )
        return reply.body

    # --- trusted senders ----------------------------------------------------------------

    def trust_sender(self, email: str) -> dict[str, Any]:
        # Asking again re-sends the verification email and resets the status: harmless.
        reply = self._call("POST", "Console/TrustedSenders", "trust sender", json={"Email": email})
        return reply.body

    def trusted_senders(self, page: int = 0, size: int = 20) -> dict[str, Any]:
        reply = self._call(
            "GET",
            "Console/TrustedSenders",
            "list trusted senders",
            params={"PageNumber": page, "PageSize": size},
        )
        return reply.body

    def disable_trusted_sender(self, sender_id: str, email: str) -> dict[str, Any]:
        reply = self._call(
            "DELETE",
            f"Console/TrustedSenders/{sender_id}",
            "disable trusted sender",
            headers={"If-Match": email},
        )
        return reply.body

    def _call(
        self, method: str, path: str, operation: str, *, idempotent: bool = True, **kwargs: Any
    ) -> Reply:
        token = self._token()
        try:
            return self._send(method, path, operation, token, idempotent, **kwargs)
        except PermanentError as exc:
            if exc.http_status != 401:
                raise
        # The token expired (or was revoked): once more with a new one.
        return self._send(method, path, operation, self._renew(token), idempotent, **kwargs)

    def _send(
        self,
        method: str,
        path: str,
        operation: str,
        token: str,
        idempotent: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        return call(
            method,
            f"{self._base}/{path}",
            operation=operation,
            timeouts=self._timeouts,
            idempotent=idempotent,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            **kwargs,
        )
