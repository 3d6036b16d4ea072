"""MailUp's transactional email API: SendMessage, SendTemplate, ListUserInfo.

The SMTP+ user's credentials travel in the JSON body (``"User": {"Username", "Secret"}``),
so the body is built here, at the last moment, and never stored or logged. Sends are
limited by the purchased speed, not per second; ListUserInfo counts against the account's
5 calls per second (LIMITS.md).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.mailup.dates import from_mailup, to_mailup
from worker.mailup.errors import Api
from worker.mailup.http import Reply, Throttle, Timeouts, call, no_throttle


@dataclass(frozen=True)
class SmtpUser:
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None

    def dto(self) -> dict[str, str]:
        return {"Name": self.name or "", "Email": self.email}


@dataclass(frozen=True)
class Part:
    """An attachment or embedded image (its ContentId is what ``cid:`` refers to)."""

    filename: str
    body: bytes = field(repr=False)
    content_id: str | None = None

    def dto(self) -> dict[str, Any]:
        # MessagePartDTO.Body is an array of bytes: base64 in JSON, no line breaks.
        return {
            "Filename": self.filename,
            "ContentId": self.content_id,
            "Body": base64.b64encode(self.body).decode(),
        }


@dataclass(frozen=True)
class Html:
    body: str
    doc_type: str | None = None
    head: str | None = None
    body_tag: str | None = None

    def dto(self) -> dict[str, Any]:
        return {
            "DocType": self.doc_type,
            "Head": self.head,
            "Body": self.body,
            "BodyTag": self.body_tag or "<body>",
        }


@dataclass(frozen=True)
class XSmtpApi:
    """Aggregation, tracking, priority, schedule and merge tags of a message."""

    campaign_name: str | None = None
    campaign_code: str | None = None
    campaign_report: str | None = None
    header: bool | None = None
    footer: bool | None = None
    click_tracking: bool | None = None
    view_tracking: bool | None = None
    priority: int | None = None
    schedule: datetime | None = None
    skip_dynamic_fields: bool | None = None
    dynamic_fields: dict[str, str] = field(default_factory=dict)

    def dto(self) -> dict[str, Any]:
        return {
            "CampaignName": self.campaign_name,
            "CampaignCode": self.campaign_code,
            "CampaignReport": self.campaign_report,
            "Header": self.header,
            "Footer": self.footer,
            "ClickTracking": self.click_tracking,
            "ViewTracking": self.view_tracking,
            "Priority": self.priority,
            "Schedule": to_mailup(self.schedule) if self.schedule else None,
            "SkipDynamicFields": self.skip_dynamic_fields,
            "DynamicFields": [{"N": n, "V": v} for n, v in self.dynamic_fields.items()],
        }


@dataclass(frozen=True)
class Message:
    """A MessageDTO (``html``/``text``) or, with ``template_id``, a TemplateDTO."""

    sender: Address
    subject: str = ""
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: str | None = None
    charset: str = "utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Part, ...] = ()
    embedded_images: tuple[Part, ...] = ()
    xsmtp: XSmtpApi | None = None
    html: Html | None = None
    text: str | None = None
    template_id: int | None = None

    def dto(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Subject": self.subject,
            "From": self.sender.dto(),
            "To": [a.dto() for a in self.to],
            "Cc": [a.dto() for a in self.cc],
            "Bcc": [a.dto() for a in self.bcc],
            "ReplyTo": self.reply_to,
            "CharSet": self.charset,
            "ExtendedHeaders": [{"N": n, "V": v} for n, v in self.headers.items()] or None,
            "Attachments": [p.dto() for p in self.attachments] or None,
            "EmbeddedImages": [p.dto() for p in self.embedded_images] or None,
            "XSmtpAPI": self.xsmtp.dto() if self.xsmtp else None,
        }
        if self.template_id is not None:
            return {**body, "TemplateId": self.template_id}
        return {**body, "Html": self.html.dto() if self.html else None, "Text": self.text}


@dataclass(frozen=True)
class SendResult:
    """SendResponseDTO of an accepted message."""

    status: str | None
    code: str | None
    message: str | None
    http_status: int


@dataclass(frozen=True)
class UserInfo:
    """What ListUserInfo says of one SMTP+ user."""

    username: str
    is_enabled: bool | None
    admin_block: bool | None
    block_until: datetime | None

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> UserInfo:
        return cls(
            username=str(dto.get("Username") or ""),
            is_enabled=dto.get("IsEnabled"),
            admin_block=dto.get("AdminBlock"),
            block_until=from_mailup(dto.get("BlockUntil")),
        )


class TransactionalClient:
    def __init__(
        self,
        base_url: str,
        *,
        user: SmtpUser,
        timeouts: Timeouts,
        api_throttle: Throttle = no_throttle,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._user = user
        self._timeouts = timeouts
        self._api_throttle = api_throttle

    def send(self, message: Message) -> SendResult:
        """SendMessage, or SendTemplate for a message with a template. Not idempotent."""
        path, operation = "messages/sendmessage", "SendMessage"
        if message.template_id is not None:
            path, operation = "messages/sendtemplate", "SendTemplate"
        reply = self._post(path, message.dto(), operation=operation)
        body = reply.body
        return SendResult(body.get("Status"), reply.code, body.get("Message"), reply.http_status)

    def list_user_info(self, username: str | None = None) -> list[UserInfo]:
        """Status of one SMTP+ user of the list (or all of them)."""
        body = {"Username": username} if username else {}
        reply = self._post(
            "users/listuserinfo",
            body,
            operation="ListUserInfo",
            idempotent=True,
            throttle=self._api_throttle,
        )
        return [UserInfo.from_dto(dto) for dto in reply.body.get("UserList") or []]

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        idempotent: bool = False,
        throttle: Throttle = no_throttle,
    ) -> Reply:
        user = {"Username": self._user.username, "Secret": self._user.secret}
        return call(
            "POST",
            f"{self._base}/{path}",
            api=Api.EMAIL,
            operation=operation,
            timeouts=self._timeouts,
            idempotent=idempotent,
            throttle=throttle,
            json={**body, "User": user},
        )
