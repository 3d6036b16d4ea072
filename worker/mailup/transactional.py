"""MailUp's transactional email API: SendMessage, SendTemplate, ListUserInfo.

The SMTP+ user's credentials travel in the JSON body (``"User": {"Username", "Secret"}``),
so the body is built here, at the last moment, and never stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.mailup.http import Reply, Timeouts, call


@dataclass(frozen=True)
class SmtpUser:
    username: str
    secret: str = field(repr=False)


class TransactionalClient:
    def __init__(self, base_url: str, *, user: SmtpUser, timeouts: Timeouts) -> None:
        self._base = base_url.rstrip("/")
        self._user = user
        self._timeouts = timeouts

    def send_message(self, message: dict[str, Any]) -> Reply:
        """POST messages/sendmessage with a MessageDTO. Not idempotent."""
        return self._post("messages/sendmessage", message, operation="SendMessage")

    def send_template(self, message: dict[str, Any]) -> Reply:
        """POST messages/sendtemplate with a TemplateDTO. Not idempotent."""
        return self._post("messages/sendtemplate", message, operation="SendTemplate")

    def list_user_info(self, username: str | None = None) -> list[dict[str, Any]]:
        """Status of one SMTP+ user of the list (or all of them): UserInfoDTOs."""
        body = {"Username": username} if username else {}
        reply = self._post("users/listuserinfo", body, operation="ListUserInfo", idempotent=True)
        return list(reply.body.get("UserList") or [])

    def _post(
        self, path: str, body: dict[str, Any], *, operation: str, idempotent: bool = False
    ) -> Reply:
        user = {"Username": self._user.username, "Secret": self._user.secret}
        return call(
            "POST",
            f"{self._base}/{path}",
            operation=operation,
            timeouts=self._timeouts,
            idempotent=idempotent,
            json={**body, "User": user},
        )
