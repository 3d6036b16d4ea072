"""Job kind ``send_sms``: one transactional SMS to one recipient."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveInt, ValidationInfo, field_validator
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from worker.jobs import list_credentials
from worker.jobs.base import JobContext, JobKind, Payload, Result
from worker.jobs.clients import sms_client
from worker.jobs.fields import ListId, PhoneNumber, SmsSender
from worker.ledger.models import Job, SmsDelivery, utcnow
from worker.mailup.errors import PermanentError, TransientError
from worker.mailup.sms import SMS_MAX_CHARS, SmsClient, SmsMessage

LIST_SECRET_INVALID = "103"
_INSERT_DELIVERY = insert(SmsDelivery)


class SendSms(Payload):
    list_id: ListId
    recipient: PhoneNumber
    content: str | None = Field(default=None, min_length=1)
    template_id: PositiveInt | None = Field(default=None, validate_default=True)
    campaign_code: str | None = Field(default=None, max_length=200)
    dynamic_fields: dict[str, str] = Field(default_factory=dict)
    is_unicode: bool = False
    sender: SmsSender | None = None

    @field_validator("template_id")
    @classmethod
    def _content_xor_template(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "content" in info.data and (info.data["content"] is None) == (value is None):
            raise ValueError("give exactly one of content and template_id")
        return value

    @property
    def truncated(self) -> bool:
        """MailUp cuts the text past 670 characters (before merge tags are filled)."""
        return self.content is not None and len(self.content) > SMS_MAX_CHARS


def execute(context: JobContext, payload: SendSms) -> Result:
    settings, account = context.settings, context.claim.account
    client = sms_client(settings, account)
    list_guid, secret = list_credentials.for_sending(settings, account, payload.list_id, client)
    message = SmsMessage(
        list_id=payload.list_id,
        list_guid=list_guid,
        list_secret=secret,
        recipient=payload.recipient,
        content=payload.content,
        template_id=payload.template_id,
        campaign_code=payload.campaign_code,
        dynamic_fields=payload.dynamic_fields,
        is_unicode=payload.is_unicode,
        sender=payload.sender,
    )
    context.calling()
    try:
        sent = client.send(message)
    except PermanentError as exc:
        if exc.code == LIST_SECRET_INVALID:
            _raise_if_rotated(context, client, payload.list_id, list_guid, secret, exc)
        raise
    delivery = {
        "job_id": context.claim.job_id,
        "account": account,
        "list_id": payload.list_id,
        "recipient": payload.recipient,
        "campaign_code": payload.campaign_code,
        "delivery_id": sent.delivery_id,
        "cost": sent.cost,
        "truncated": payload.truncated,
        "statistics_unavailable": sent.statistics_unavailable,
        "sent_at": utcnow(),
    }
    return Result(
        outcome=None,
        record=lambda db: db.execute(_INSERT_DELIVERY, delivery),
        http_status=sent.http_status,
        code=sent.code,
    )


def _raise_if_rotated(
    context: JobContext,
    client: SmsClient,
    list_id: int,
    list_guid: str,
    used: str,
    exc: PermanentError,
) -> None:
    """A 103 after the ListSecret was rotated elsewhere is worth one more try, with the new one."""
    fresh = list_credentials.refresh_secret(
        context.settings, context.claim.account, list_id, client, list_guid
    )
    if fresh and fresh != used:
        raise TransientError(
            "ListSecret was changed on MailUp; retrying with the new one",
            http_status=exc.http_status,
            code=exc.code,
        ) from None


def describe(session: Session, job: Job) -> dict[str, Any]:
    delivery = session.scalar(select(SmsDelivery).where(SmsDelivery.job_id == job.id))
    if delivery is None:
        return {}
    return {
        "delivery_id": delivery.delivery_id,
        "cost": float(delivery.cost),
        "recipient": delivery.recipient,
        "list_id": delivery.list_id,
        "campaign_code": delivery.campaign_code,
        "truncated": delivery.truncated,
        "statistics_unavailable": delivery.statistics_unavailable,
        "sent_at": delivery.sent_at.isoformat(),
    }


KIND = JobKind("send_sms", SendSms, execute, describe, channel="sms")
