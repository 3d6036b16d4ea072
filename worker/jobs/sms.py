"""Job kind ``send_sms``: one transactional SMS to one recipient.

It sends on the account's ``sms`` channel: the purchased speed applies, and an answer that
means nothing of the account's SMS can go out (no credits, access denied) pauses the
channel; a list without a sender name pauses that list's SMS that name none. Beat then
lets one waiting SMS through per ``MAILUP_JOBS_PAUSE_PROBE`` as the probe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import Field, model_validator
from sqlalchemy import Connection, exists, insert, select, update
from sqlalchemy.orm import Session

from worker.engine.clients import sms_client
from worker.engine.kind import (
    Addressed,
    Channel,
    FieldError,
    JobContext,
    JobKind,
    Payload,
    Result,
    Waiting,
    in_period,
)
from worker.jobs import list_credentials, list_secret
from worker.jobs.fields import DynamicFields, ListId, MailUpId, PhoneNumber, SmsSender
from worker.ledger.crypto import recipient_hasher
from worker.ledger.models import Job, JobRecipient, JobStatus, SmsDelivery, table, utcnow
from worker.ledger.store import Statement
from worker.mailup.errors import Api, Condition, PermanentError, TransientError
from worker.mailup.sms import SMS_MAX_CHARS, SmsClient, SmsMessage, merged_text
from worker.settings import get_settings

# Longer content is refused at the door: MailUp sends at most 670 characters, and no merge
# tag brings a text this long back within reach.
MAX_CONTENT = 1000
# A ListSecret being rotated is missing on MailUp for a moment: retry this soon.
ROTATION_RETRY = 2.0
_INSERT_DELIVERY = insert(SmsDelivery)


class SendSms(Payload):
    list_id: ListId
    recipient: PhoneNumber
    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT)
    template_id: MailUpId | None = None
    campaign_code: str | None = Field(default=None, max_length=200)
    dynamic_fields: DynamicFields = Field(default_factory=dict)
    is_unicode: bool = False
    sender: SmsSender | None = None

    @model_validator(mode="after")
    def _content_xor_template(self) -> Self:
        if (self.content is None) == (self.template_id is None):
            raise FieldError("template_id", "give exactly one of content and template_id")
        return self

    @property
    def text(self) -> str | None:
        """The text MailUp will send, merge tags filled (unknown for a template)."""
        return None if self.content is None else merged_text(self.content, self.dynamic_fields)

    @property
    def truncated(self) -> bool:
        """MailUp cuts the text it sends past 670 characters."""
        return self.text is not None and len(self.text) > SMS_MAX_CHARS


def execute(context: JobContext, payload: SendSms) -> Result:
    settings, account = context.settings, context.claim.account
    client = sms_client(settings, account)
    list_guid, secret = _keys(context, payload.list_id, client)
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
    try:
        sent = client.send(message, leaving=context.calling)
    except PermanentError as exc:
        if exc.condition == Condition.LIST_SECRET_INVALID:
            _retry_if_rotated(context, client, payload.list_id, list_guid, secret, exc)
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
        rows=((_INSERT_DELIVERY, delivery),),
        http_status=sent.http_status,
        code=sent.code,
    )


def _keys(context: JobContext, list_id: int, client: SmsClient) -> tuple[str, str]:
    """The list's ListGuid and ListSecret; a list whose secret is being changed waits."""
    settings, account = context.settings, context.claim.account
    keys = list_credentials.for_sending(settings, account, list_id, client)
    if keys.secret is None:
        if list_secret.under_way(settings, account, list_id):
            raise Waiting(
                utcnow() + timedelta(seconds=ROTATION_RETRY),
                f"the ListSecret of list {list_id} is being changed",
            )
        list_credentials.missing_secret(account, list_id)
    assert keys.list_guid is not None and keys.secret is not None
    return keys.list_guid, keys.secret


def _retry_if_rotated(
    context: JobContext,
    client: SmsClient,
    list_id: int,
    list_guid: str,
    used: str,
    exc: PermanentError,
) -> None:
    """MailUp refused the ListSecret (nothing was sent): if it was changed meanwhile, or is
    being changed right now, try again shortly rather than fail."""
    settings, account = context.settings, context.claim.account
    fresh = list_credentials.refresh_secret(settings, account, list_id, client, list_guid)
    rotated = fresh is not None and fresh != used
    if rotated or list_secret.under_way(settings, account, list_id):
        raise TransientError(
            f"{exc.message} (the ListSecret was being changed: trying again)",
            http_status=exc.http_status,
            code=exc.code,
            retry_after=0 if rotated else ROTATION_RETRY,
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


_INSERT_RECIPIENT = insert(table(JobRecipient))


def stage(job_id: str, payload: SendSms, _extras: None) -> list[Statement]:
    """The recipient's keyed hash, so "what was sent to x" finds every SMS to x, sent or not,
    before and after a purge. (The producer's settings: staging is given no others.)"""
    hashed = recipient_hasher(get_settings())(payload.recipient)
    return [(_INSERT_RECIPIENT, {"job_id": job_id, "recipient_hash": hashed})]


def sent_to(
    session: Session,
    kinds: list[str],
    recipient_hash: str,
    since: datetime | None,
    until: datetime | None,
) -> list[Addressed]:
    rows = session.execute(
        select(Job, SmsDelivery)
        .join(JobRecipient, JobRecipient.job_id == Job.id)
        .outerjoin(SmsDelivery, SmsDelivery.job_id == Job.id)
        .where(
            JobRecipient.recipient_hash == recipient_hash,
            Job.kind.in_(kinds),
            in_period(Job.created_at, since, until),
        )
    )
    found = []
    for job, delivery in rows:
        sent = delivery is not None or job.status == JobStatus.SUCCEEDED
        found.append(
            Addressed(
                job_id=job.id,
                kind=job.kind,
                role="sms",
                outcome="sent" if sent else job.status,
                at=delivery.sent_at if delivery else job.finished_at or job.updated_at,
                created_at=job.created_at,
                code=job.last_error_code,
                delivery_id=delivery.delivery_id if delivery else None,
                cost=delivery.cost if delivery else None,
                campaign_code=job.payload.get("campaign_code"),
            )
        )
    return found


def purge(db: Connection, job_ids: list[str], hashed: Callable[[str], str]) -> None:
    """The number goes, its hash stays: staged with the job, or made now for an SMS that an
    older producer staged without one."""
    unhashed = db.execute(
        select(Job.id, Job.payload).where(
            Job.id.in_(job_ids), ~exists().where(JobRecipient.job_id == Job.id)
        )
    ).all()
    if unhashed:
        db.execute(
            insert(JobRecipient),
            [{"job_id": r.id, "recipient_hash": hashed(r.payload["recipient"])} for r in unhashed],
        )
    db.execute(update(SmsDelivery).where(SmsDelivery.job_id.in_(job_ids)).values(recipient=None))


def _list_scope(payload: SendSms) -> str | None:
    """A list without a sender name holds only the SMS that name no sender of their own."""
    return None if payload.sender else f"list:{payload.list_id}"


SMS = Channel("sms")
KIND = JobKind(
    "send_sms",
    SendSms,
    execute,
    describe,
    channel=SMS,
    stage=stage,
    sub_scope=_list_scope,
    api=Api.SMS,
    sent_to=sent_to,
    keeps=("list_id", "template_id", "campaign_code", "is_unicode", "sender"),
    purge=purge,
)
