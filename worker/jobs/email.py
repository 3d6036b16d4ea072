"""Job kinds ``send_message`` and ``send_template``: one transactional email (SendMessage or
SendTemplate) to its To / Cc / Bcc recipients.

Attachment and embedded-image bytes are stored beside the job (``job_parts``); the payload
holds only their names and sizes. The SMTP+ user comes from the account's settings.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import EmailStr, Field, PositiveInt, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.jobs import pauses
from worker.jobs.base import FieldError, JobContext, JobKind, Payload, Result
from worker.jobs.clients import transactional_client
from worker.ledger.db import connection
from worker.ledger.models import EmailRecipient, Job, JobPart
from worker.mailup.errors import SMTP_USER_CANNOT_SEND, PermanentError

MAX_PARTS = 5  # attachments, and embedded images, per message
MAX_TOTAL_BYTES = 10 * 2**20

Filename = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
]


class Address(Payload):
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)

    def dto(self) -> dict[str, str]:
        return {"Name": self.name or "", "Email": str(self.email)}


class Part(Payload):
    """An attachment or embedded image; its bytes are in ``job_parts``."""

    filename: Filename
    content_id: str | None = Field(default=None, max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Html(Payload):
    body: str
    doc_type: str | None = None
    head: str | None = None
    body_tag: str | None = None


class Campaign(Payload):
    """XSmtpAPI: aggregation, tracking, priority, schedule and merge tags."""

    campaign_name: str | None = None
    campaign_code: str | None = None
    campaign_report: str | None = None
    header: bool | None = None
    footer: bool | None = None
    click_tracking: bool | None = None
    view_tracking: bool | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    schedule: datetime | None = None
    skip_dynamic_fields: bool | None = None
    dynamic_fields: dict[str, str] = Field(default_factory=dict)

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
            "Schedule": self.schedule.isoformat() if self.schedule else None,
            "SkipDynamicFields": self.skip_dynamic_fields,
            "DynamicFields": [{"N": n, "V": v} for n, v in self.dynamic_fields.items()],
        }


class Email(Payload):
    """What SendMessage and SendTemplate share."""

    subject: str = Field(default="", max_length=998)
    sender: Address
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: EmailStr | None = None
    charset: str = "utf-8"
    extended_headers: dict[str, str] = Field(default_factory=dict)
    attachments: list[Part] = Field(default_factory=list, max_length=MAX_PARTS)
    embedded_images: list[Part] = Field(default_factory=list, max_length=MAX_PARTS)
    campaign: Campaign | None = None

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if not (self.to or self.cc or self.bcc):
            raise FieldError("to", "at least one recipient is required (to, cc or bcc)")
        total = sum(p.size for p in (*self.attachments, *self.embedded_images))
        if total > MAX_TOTAL_BYTES:
            raise FieldError(
                "attachments", f"attachments total {total} bytes; at most {MAX_TOTAL_BYTES}"
            )
        return self

    def recipients(self) -> list[tuple[str, Address]]:
        return [(role, a) for role in ("to", "cc", "bcc") for a in getattr(self, role)]

    def dto(self, parts: dict[tuple[str, int], bytes]) -> dict[str, Any]:
        def encoded(role: str, items: list[Part]) -> list[dict[str, Any]]:
            return [
                {
                    "Filename": part.filename,
                    "ContentId": part.content_id,
                    # MessagePartDTO.Body is an array of bytes: base64 in JSON, no line breaks.
                    "Body": base64.b64encode(parts[(role, n)]).decode(),
                }
                for n, part in enumerate(items)
            ]

        return {
            "Subject": self.subject,
            "From": self.sender.dto(),
            "To": [a.dto() for a in self.to],
            "Cc": [a.dto() for a in self.cc],
            "Bcc": [a.dto() for a in self.bcc],
            "ReplyTo": str(self.reply_to) if self.reply_to else None,
            "CharSet": self.charset,
            "ExtendedHeaders": [{"N": n, "V": v} for n, v in self.extended_headers.items()] or None,
            "Attachments": encoded("attachment", self.attachments) or None,
            "EmbeddedImages": encoded("embedded", self.embedded_images) or None,
            "XSmtpAPI": self.campaign.dto() if self.campaign else None,
        }


class SendMessage(Email):
    html: Html | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _content(self) -> Self:
        if self.html is None and self.text is None:
            raise FieldError("html", "give html, text or both")
        return self

    def dto(self, parts: dict[tuple[str, int], bytes]) -> dict[str, Any]:
        html = None
        if self.html is not None:
            html = {
                "DocType": self.html.doc_type,
                "Head": self.html.head,
                "Body": self.html.body,
                "BodyTag": self.html.body_tag or "<body>",
            }
        return {**super().dto(parts), "Html": html, "Text": self.text}


class SendTemplate(Email):
    template_id: PositiveInt

    def dto(self, parts: dict[tuple[str, int], bytes]) -> dict[str, Any]:
        return {**super().dto(parts), "TemplateId": self.template_id}


def _parts(context: JobContext) -> dict[tuple[str, int], bytes]:
    """The job's attachment and image bytes, kept beside it in the ledger."""
    with connection(context.settings.ledger_url) as db:
        rows = db.execute(
            select(JobPart.role, JobPart.position, JobPart.body).where(
                JobPart.job_id == context.claim.job_id
            )
        )
        return {(row.role, row.position): row.body for row in rows}


def execute(context: JobContext, payload: Email) -> Result:
    mailup = transactional_client(context.settings, context.claim.account)
    message = payload.dto(_parts(context) if payload.attachments or payload.embedded_images else {})
    send = mailup.send_template if isinstance(payload, SendTemplate) else mailup.send_message
    context.calling()
    try:
        reply = send(message)
    except PermanentError as exc:
        if exc.code in SMTP_USER_CANNOT_SEND:
            pauses.pause_for_smtp_user(context, mailup, exc)
        raise
    outcome = {
        "status": reply.body.get("Status"),
        "code": reply.code,
        "message": reply.body.get("Message"),
    }
    return Result(outcome=outcome, http_status=reply.http_status, code=reply.code)


def describe(session: Session, job: Job) -> dict[str, Any]:
    recipients = session.execute(
        select(EmailRecipient.role, EmailRecipient.email, EmailRecipient.name)
        .where(EmailRecipient.job_id == job.id)
        .order_by(EmailRecipient.id)
    )
    result = dict(job.outcome or {})
    if job.last_error_code and not result:
        result = {"status": "error", "code": job.last_error_code, "message": job.last_error}
    result["recipients"] = [{"role": r.role, "email": r.email, "name": r.name} for r in recipients]
    return result


MESSAGE = JobKind("send_message", SendMessage, execute, describe, channel="email")
TEMPLATE = JobKind("send_template", SendTemplate, execute, describe, channel="email")
