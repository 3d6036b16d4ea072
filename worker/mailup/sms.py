"""MailUp's transactional SMS API: send, and the per-list ListSecret (GET / POST / DELETE).

ListSecret calls use HTTP Basic with the console user; sends carry ListGuid and ListSecret
in the body and no auth header. Sends count against MailUp's 30 calls per second, ListSecret
calls against the account's 5 per second for every other method (LIMITS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from requests.auth import HTTPBasicAuth

from worker.mailup.errors import SMS_SENT_CODES, SMS_SENT_WITHOUT_STATISTICS, Api
from worker.mailup.http import Reply, Throttle, Timeouts, call, no_throttle

# Past this many characters MailUp's sending engine truncates the text.
SMS_MAX_CHARS = 670
# The GSM 03.38 alphabet (basic set and extension table): what an SMS without isUnicode
# can carry. Anything else is lost or replaced on the way to the phone.
GSM_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "\f^{}\\[~]|€"
)


def merged_text(content: str, dynamic_fields: dict[str, str]) -> str:
    """The text MailUp sends: each ``[Name]`` replaced by its DynamicFields value."""
    for name, value in dynamic_fields.items():
        content = content.replace(f"[{name}]", value)
    return content


def outside_gsm(text: str) -> str:
    """The characters of ``text`` an SMS without isUnicode cannot carry, in order, once each."""
    return "".join(dict.fromkeys(c for c in text if c not in GSM_CHARACTERS))


@dataclass(frozen=True)
class SmsMessage:
    """One SMS to one recipient: Content or TemplateId, never both."""

    list_id: int
    list_guid: str
    list_secret: str = field(repr=False)
    recipient: str
    content: str | None = None
    template_id: int | None = None
    campaign_code: str | None = None
    dynamic_fields: dict[str, str] = field(default_factory=dict)
    is_unicode: bool = False
    sender: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ListGuid": self.list_guid,
            "ListSecret": self.list_secret,
            "Recipient": self.recipient,
            "isUnicode": int(self.is_unicode),
        }
        if self.content is not None:
            body["Content"] = self.content
        if self.template_id is not None:
            body["TemplateId"] = self.template_id
        if self.campaign_code:
            body["CampaignCode"] = self.campaign_code
        if self.dynamic_fields:
            body["DynamicFields"] = [{"N": n, "V": v} for n, v in self.dynamic_fields.items()]
        if self.sender:
            body["Sender"] = self.sender
        return body


@dataclass(frozen=True)
class SmsSent:
    delivery_id: int
    cost: float
    http_status: int
    code: str

    @property
    def statistics_unavailable(self) -> bool:
        """MailUp's 301: sent and charged, but no delivery report can ever be fetched."""
        return self.code == SMS_SENT_WITHOUT_STATISTICS


# Waits for an SMS send's slot under MailUp's limit, running ``ready`` (what must be done
# before the request leaves) as the slot comes.
SendPace = Callable[[Throttle], None]


def no_pace(ready: Throttle) -> None:
    ready()


class SmsClient:
    def __init__(
        self,
        base_url: str,
        *,
        account_id: int,
        username: str,
        password: str,
        timeouts: Timeouts,
        send_pace: SendPace = no_pace,
        api_throttle: Throttle = no_throttle,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._account_id = account_id
        self._auth = HTTPBasicAuth(username, password)
        self._timeouts = timeouts
        self._send_pace = send_pace
        self._api_throttle = api_throttle

    def send(self, message: SmsMessage, *, leaving: Throttle = no_throttle) -> SmsSent:
        """POST sms/{account}/{list}. Not idempotent: a lost answer is ambiguous.

        ``leaving`` runs as the call's slot under MailUp's limit comes, before the request
        leaves (a worker killed while the call waits for its slot sent nothing)."""

        def throttle() -> None:
            self._send_pace(leaving)

        reply = call(
            "POST",
            f"{self._base}/sms/{self._account_id}/{message.list_id}",
            api=Api.SMS,
            operation="send SMS",
            timeouts=self._timeouts,
            idempotent=False,
            throttle=throttle,
            success_codes=SMS_SENT_CODES,
            json=message.body(),
        )
        data = reply.data or {}
        return SmsSent(
            delivery_id=int(data.get("DeliveryId") or 0),
            cost=float(data.get("Cost") or 0),
            http_status=reply.http_status,
            code=reply.code or "0",
        )

    def get_list_secret(self, list_id: int) -> tuple[str | None, Reply]:
        """The list's ListSecret, or None when none is configured."""
        reply = self._list_secret("GET", list_id, operation="read ListSecret")
        data = reply.data or {}
        return data.get("ListSecret") or None, reply

    def create_list_secret(self, list_id: int, list_guid: str) -> tuple[str, Reply]:
        reply = self._list_secret(
            "POST", list_id, operation="create ListSecret", json={"ListGUID": list_guid}
        )
        secret = (reply.data or {}).get("ListSecret")
        if not secret:
            # Not documented: some answers omit it; reading it back is always allowed.
            secret, reply = self.get_list_secret(list_id)
        return str(secret), reply

    def delete_list_secret(self, list_id: int, list_guid: str) -> Reply:
        return self._list_secret(
            "DELETE", list_id, operation="delete ListSecret", params={"listGUID": list_guid}
        )

    def _list_secret(self, method: str, list_id: int, *, operation: str, **kwargs: Any) -> Reply:
        # Reading, creating (POST answers the existing secret) and deleting a ListSecret
        # reach the same end state when repeated, so a lost answer is safe to retry.
        return call(
            method,
            f"{self._base}/lists/{list_id}/listsecret",
            api=Api.SMS,
            operation=operation,
            timeouts=self._timeouts,
            idempotent=True,
            throttle=self._api_throttle,
            auth=self._auth,
            **kwargs,
        )
