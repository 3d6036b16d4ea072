"""MailUp's Console API (OAuth2 Bearer): the client every Console family calls through, and
the SMTP+ user and trusted-sender methods. Lists and groups are in ``lists``, recipients
and imports in ``recipients``.

A 401 means the token expired: the client asks for a new one and retries once. Every call
counts against the account's 5 calls per second (LIMITS.md), through ``throttle``. Lists of
things come in pages whose size MailUp chooses: ``pages`` follows the envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.mailup.dates import from_mailup
from worker.mailup.errors import Api, PermanentError
from worker.mailup.http import Reply, Throttle, Timeouts, call, no_throttle

NOT_CONFIRMED, CONFIRMED, BLOCKED = 0, 1, 2  # a trusted sender's StatusCode
# Asked of MailUp; it may answer smaller pages, and ``pages`` follows whatever it answers.
PAGE_SIZE = 50


def trusted(status_code: int) -> bool:
    """Doc 004: "consider trusted a sender with StatusCode different from 0" — 2 is one
    disabled. Codes past 2 are the undocumented outcomes of MailUp's checks after the click.
    (Creating an SMTP+ user wants exactly CONFIRMED: doc 000.)"""
    return status_code not in (NOT_CONFIRMED, BLOCKED)


@dataclass(frozen=True)
class TrustedSender:
    id: str  # IdTrustedSender
    email: str  # EmailAddress, as MailUp stores it (If-Match must repeat it)
    status_code: int
    status: str
    authorized_at: datetime | None

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> TrustedSender:
        return cls(
            id=str(dto["IdTrustedSender"]),
            email=str(dto["EmailAddress"]),
            status_code=int(dto["StatusCode"]),
            status=str(dto.get("StatusDescription") or ""),
            authorized_at=from_mailup(dto.get("AuthorizationDate")),
        )


@dataclass(frozen=True)
class NewSmtpUser:
    trusted_senders: tuple[str, ...] = ()
    trusted_domains: tuple[str, ...] = ()
    is_enabled: bool = True
    note: str = ""
    priority_code: int | None = None

    def dto(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "IsEnabled": self.is_enabled,
            "Note": self.note,
            "TrustedDomains": list(self.trusted_domains),
            "TrustedSenders": list(self.trusted_senders),
        }
        if self.priority_code:
            body["PriorityCode"] = self.priority_code
        return body


@dataclass(frozen=True)
class SmtpPlusUser:
    """An SMTP+ user as creation and password reset answer it, password included."""

    username: str
    password: str = field(repr=False)
    list_id: int | None = None
    is_enabled: bool | None = None
    priority_code: int | None = None
    trusted_senders: tuple[str, ...] = ()
    trusted_domains: tuple[str, ...] = ()
    server: str | None = None

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> SmtpPlusUser:
        return cls(
            username=str(dto["Username"]),
            password=str(dto["Password"]),
            list_id=dto.get("IdList"),
            is_enabled=dto.get("IsEnabled"),
            priority_code=dto.get("PriorityCode"),
            trusted_senders=tuple(dto.get("TrustedSenders") or ()),
            trusted_domains=tuple(dto.get("TrustedDomains") or ()),
            server=dto.get("SmtpPlusServer"),
        )

    def summary(self) -> dict[str, Any]:
        """Everything but the password."""
        return {
            "username": self.username,
            "list_id": self.list_id,
            "is_enabled": self.is_enabled,
            "priority_code": self.priority_code,
            "trusted_senders": list(self.trusted_senders),
            "trusted_domains": list(self.trusted_domains),
            "server": self.server,
        }


@dataclass(frozen=True)
class Priority:
    code: int
    name: str


class ConsoleClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str],
        renew: Callable[[str], str],
        timeouts: Timeouts,
        throttle: Throttle = no_throttle,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._renew = renew
        self._timeouts = timeouts
        self._throttle = throttle

    # --- SMTP+ users --------------------------------------------------------------------

    def smtp_priorities(self) -> list[Priority]:
        reply = self.call("GET", "Console/SmtpPlusPriorities", "read SMTP+ priorities")
        return [Priority(int(p["PriorityCode"]), str(p["PriorityName"])) for p in reply.data]

    def create_smtp_user(self, list_id: int, user: NewSmtpUser) -> SmtpPlusUser:
        """Not idempotent: a lost answer may have created a user."""
        reply = self.call(
            "POST",
            f"Console/List/{list_id}/SmtpPlus",
            "create SMTP+ user",
            json=user.dto(),
            idempotent=False,
        )
        return SmtpPlusUser.from_dto(reply.body)

    def reset_smtp_password(self, list_id: int, username: str) -> SmtpPlusUser:
        """Safe to repeat: once a reset's answer is lost, its password is unknown and the old
        one invalid either way; a repeat only makes another new one, which the caller keeps."""
        reply = self.call(
            "POST",
            f"Console/List/{list_id}/SmtpPlus/Reset",
            "reset SMTP+ password",
            json={"Username": username},
            idempotent=True,
        )
        return SmtpPlusUser.from_dto(reply.body)

    # --- trusted senders ----------------------------------------------------------------

    def trust_sender(self, email: str) -> TrustedSender:
        # Asking again re-sends the verification email and resets the status (the caller
        # decides whether that is wanted): the end state is the same, so retrying is safe.
        reply = self.call("POST", "Console/TrustedSenders", "trust sender", json={"Email": email})
        return TrustedSender.from_dto(reply.body)

    def trusted_senders(self) -> list[TrustedSender]:
        items = self.pages("Console/TrustedSenders", "list trusted senders")
        return [TrustedSender.from_dto(item) for item in items]

    def disable_trusted_sender(self, sender: TrustedSender) -> TrustedSender:
        """If-Match carries the address exactly as MailUp stores it."""
        reply = self.call(
            "DELETE",
            f"Console/TrustedSenders/{sender.id}",
            "disable trusted sender",
            headers={"If-Match": sender.email},
        )
        return TrustedSender.from_dto(reply.body)

    # --- plumbing -----------------------------------------------------------------------

    def pages(
        self,
        path: str,
        operation: str,
        *,
        filterby: str | None = None,
        orderby: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, page by page, in pages of the size MailUp chooses.

        ``PageNumber`` counts from 0; the envelope's ``Skipped``, ``PageSize`` and
        ``TotalElementsCount`` say where the next page starts and when to stop.
        ``filterby`` and ``orderby`` take MailUp's syntax (``Name=='News'``, ``idList desc``).
        """
        params = {"filterby": filterby, "orderby": orderby}
        page = 0
        while True:
            query = {
                **{k: v for k, v in params.items() if v},
                "PageNumber": page,
                "PageSize": PAGE_SIZE,
            }
            body = self.call("GET", path, operation, params=query).body
            items = list(body.get("Items") or [])
            yield from items
            seen = int(body.get("Skipped") or 0) + len(items)
            if not items or seen >= int(body.get("TotalElementsCount") or 0):
                return
            page += 1

    def call(
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
            api=Api.CONSOLE,
            operation=operation,
            timeouts=self._timeouts,
            idempotent=idempotent,
            throttle=self._throttle,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            **kwargs,
        )
