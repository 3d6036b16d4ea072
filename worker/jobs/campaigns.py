"""Job kind ``campaign_send``: send an email message (made in a list, see
``worker.jobs.messages``) to a list's subscribers, a group, or one recipient.

Never twice. A send is not idempotent, so before its call the job writes down which
sendings of the message MailUp already has (``CampaignSend.known_sendings``). When an
answer is lost — or a worker died mid-call and the job runs again — it looks again before
anything else: exactly one new sending is the one it made (recorded as sent, with that
Id); none proves nothing was made (sent now, or again); more than one cannot be told apart
(``in_doubt``). A 500 *answer* that made no sending is not retried: the docs answer 500 for
requests that will fail the same way again (no sender, a sender not verified, no group of
the list). Reconciling is safe, so the kind's default delivery is ``at_least_once``: a
worker lost mid-call does not leave the job in doubt, the next run finds out.

The answer's ``InvalidRecipients`` and ``UnprocessedRecipients`` are kept one row each
(``SendingRecipient``), so "who was not sent campaign X, and why" is a query. A send to one
address keeps that address's keyed hash (``JobRecipient``) when it gets to its call, so
"what was sent to x" finds it; a send to a list or group shows there only for those MailUp
left out (who it reached is MailUp's to say).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import EmailStr, Field, field_validator, model_validator
from sqlalchemy import Connection, exists, insert, select, update
from sqlalchemy.orm import Session

from worker.engine.clients import console_client
from worker.engine.kind import (
    Addressed,
    FieldError,
    InDoubt,
    JobContext,
    JobKind,
    Payload,
    Poll,
    Refused,
    Result,
    Waiting,
    hash_missing,
    in_period,
)
from worker.jobs import groups, schedules, sendings, trusted_senders
from worker.jobs.fields import ListId
from worker.ledger import store
from worker.ledger.crypto import recipient_hasher
from worker.ledger.db import connection
from worker.ledger.models import (
    CampaignSend,
    Job,
    JobRecipient,
    JobStatus,
    Sending,
    SendingRecipient,
    utcnow,
)
from worker.mailup.console import BLOCKED, CONFIRMED
from worker.mailup.dates import to_mailup
from worker.mailup.errors import AmbiguousError, PermanentError, TransientError
from worker.mailup.sendings import Audience, Sendings, SendOptions, SendResult

log = logging.getLogger(__name__)

GroupIds = tuple[int, ...]


def parse_when(value: str | datetime) -> str:
    """``now``, ``undefined``, or a timezone-aware date as MailUp writes it."""
    if isinstance(value, datetime):
        return to_mailup(value)
    text = value.strip()
    if text.lower() in ("now", "undefined"):
        return text.lower()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "must be now, undefined or a UTC date such as 2026-12-24 09:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError("a date without a zone is ambiguous: end it with Z (UTC)")
    return to_mailup(parsed)


class SendCampaign(Payload):
    """Exactly one audience: ``list_id`` alone (``in_groups``/``not_in_groups`` filter
    it), ``group_id``, or ``to`` (one recipient of ``list_id``)."""

    message_id: int = Field(gt=0)
    list_id: ListId | None = None
    group_id: int | None = Field(default=None, gt=0)
    to: EmailStr | None = None
    in_groups: GroupIds = ()
    not_in_groups: GroupIds = ()
    sender_name: str | None = Field(default=None, min_length=1, max_length=200)
    sender_address: EmailStr | None = None
    when: str = "now"
    reply_to: EmailStr | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, value: Any) -> str:
        if not isinstance(value, str | datetime):
            raise ValueError("must be now, undefined or a UTC date")
        return parse_when(value)

    @field_validator("in_groups", "not_in_groups")
    @classmethod
    def _group_ids(cls, value: GroupIds) -> GroupIds:
        if any(g <= 0 for g in value):
            raise ValueError("group ids are positive integers")
        return value

    @model_validator(mode="after")
    def _one_audience(self) -> Self:
        if self.to is not None and self.list_id is None:
            raise FieldError("list_id", "is required with to: the recipient of which list")
        if self.group_id is None and self.list_id is None:
            raise FieldError("list_id", "give a list_id, a group_id, or to with its list_id")
        if self.group_id is not None and self.to is not None:
            raise FieldError("to", "send to a group or to one recipient, not both")
        if (self.in_groups or self.not_in_groups) and (self.group_id or self.to):
            raise FieldError("in_groups", "group filters apply to a send to a whole list only")
        if (self.sender_name is None) != (self.sender_address is None):
            missing = "sender_address" if self.sender_address is None else "sender_name"
            raise FieldError(missing, "MailUp takes sender_name and sender_address together")
        return self

    def audience(self, list_id: int) -> Audience:
        return Audience(
            list_id=list_id,
            group_id=self.group_id,
            email=str(self.to) if self.to else None,
            in_groups=self.in_groups,
            not_in_groups=self.not_in_groups,
        )

    def options(self) -> SendOptions:
        return SendOptions(
            sender_name=self.sender_name,
            sender_address=str(self.sender_address) if self.sender_address else None,
            when=self.when,
            reply_to=str(self.reply_to) if self.reply_to else None,
        )

    def first_state(self) -> str:
        """The queue MailUp puts the new sending in."""
        return {"now": "Immediate", "undefined": "Undefined"}.get(self.when, "Deferred")


def execute(context: JobContext, payload: SendCampaign) -> Result:
    settings, account = context.settings, context.claim.account
    list_id = _list_of(context, payload)
    _check_sender(context, payload)
    mailup = Sendings(console_client(settings, account))
    known = _known_before(context)
    if known is not None:  # an earlier run got as far as the call: did it make a sending?
        made = _new_sending(context, mailup, list_id, payload, known)
        if made is not None:
            return _result(context, payload, list_id, made, None)
    else:
        known = mailup.sending_ids(list_id, payload.message_id)
        _remember(context, payload, known)
    context.calling()
    try:
        answer = mailup.send(payload.message_id, payload.audience(list_id), payload.options())
    except AmbiguousError as exc:
        made = _new_sending(context, mailup, list_id, payload, known)
        if made is not None:
            return _result(context, payload, list_id, made, None)
        if exc.http_status == 500:
            raise PermanentError(
                f"MailUp answered 500 ({exc.message}) and made no sending of message "
                f"{payload.message_id}: it does so when the list has no sender, the sender "
                "address is not a verified trusted sender, or no group of in_groups belongs "
                "to the list",
                http_status=exc.http_status,
                code=exc.code,
            ) from None
        raise TransientError(
            f"{exc.message}; MailUp has no new sending of message {payload.message_id}: "
            "sending again",
            http_status=exc.http_status,
            code=exc.code,
        ) from None
    return _result(context, payload, list_id, answer.sending_id, answer)


def _list_of(context: JobContext, payload: SendCampaign) -> int:
    if payload.list_id is not None:
        return payload.list_id
    assert payload.group_id is not None
    found = groups.list_of(context.settings, context.claim.account, payload.group_id)
    if found is None:
        raise Refused("group_unknown", f"the ledger knows no group {payload.group_id}")
    return found


def _check_sender(context: JobContext, payload: SendCampaign) -> None:
    """A sender given must be a confirmed trusted sender (MailUp answers 500 otherwise);
    one still unconfirmed makes the job wait for its owner's click."""
    if payload.sender_address is None:
        return
    settings, account, email = context.settings, context.claim.account, str(payload.sender_address)
    status = trusted_senders.statuses(settings, account, [email])[email]
    if status != CONFIRMED:
        trusted_senders.sync(settings, account)
        status = trusted_senders.statuses(settings, account, [email])[email]
    if status is None:
        raise Refused("sender_unknown", f"{email} is not a trusted sender of account {account}")
    if status == BLOCKED:
        raise Refused("sender_blocked", f"trusted sender {email} is blocked")
    if status != CONFIRMED:
        raise Waiting(
            utcnow() + timedelta(seconds=settings.trusted_sender_poll),
            f"waiting for trusted sender confirmation: {email}",
        )


def _known_before(context: JobContext) -> set[int] | None:
    with connection(context.settings.ledger_url) as db:
        known = db.scalar(
            select(CampaignSend.known_sendings).where(CampaignSend.job_id == context.claim.job_id)
        )
    return None if known is None else set(known)


def _remember(context: JobContext, payload: SendCampaign, known: set[int]) -> None:
    """What MailUp had before the call, and the one recipient's keyed hash (if any)."""
    job_id = context.claim.job_id
    with connection(context.settings.ledger_url) as db:
        store.upsert(
            db,
            CampaignSend,
            job_id=job_id,
            account=context.claim.account,
            message_id=payload.message_id,
            known_sendings=sorted(known),
            taken_at=utcnow(),
        )
        if payload.to is not None:
            hashed = recipient_hasher(context.settings)(str(payload.to))
            store.upsert(db, JobRecipient, job_id=job_id, recipient_hash=hashed)


def _new_sending(
    context: JobContext, mailup: Sendings, list_id: int, payload: SendCampaign, known: set[int]
) -> int | None:
    """The sending an earlier call made, if MailUp shows exactly one; None if none."""
    now = mailup.sending_ids(list_id, payload.message_id)
    with connection(context.settings.ledger_url) as db:
        others = set(
            db.scalars(
                select(Sending.sending_id).where(
                    Sending.account == context.claim.account,
                    Sending.sending_id.in_(now - known),
                    Sending.job_id.is_not(None),
                    Sending.job_id != context.claim.job_id,
                )
            )
        )
    new = now - known - others
    if len(new) > 1:
        raise InDoubt(
            "sending_unclear",
            f"message {payload.message_id} has {len(new)} new sendings ({sorted(new)}) since "
            "this job's call, whose answer was lost: MailUp cannot say which is this job's",
        )
    return next(iter(new), None)


def _result(
    context: JobContext,
    payload: SendCampaign,
    list_id: int,
    sending_id: int,
    answer: SendResult | None,
) -> Result:
    account, job_id = context.claim.account, context.claim.job_id
    outcome = {
        "sending_id": sending_id,
        "sent": answer.sent if answer else None,
        "message_id": payload.message_id,
        "list_id": list_id,
        "invalid_recipients": [s.email for s in answer.invalid] if answer else [],
        "unprocessed_recipients": [s.email for s in answer.unprocessed] if answer else [],
        "reconciled": answer is None,
    }

    hashed = recipient_hasher(context.settings)

    def record(db: Connection) -> None:
        sendings.record_new(
            db,
            account,
            sending_id,
            job_id=job_id,
            message_id=payload.message_id,
            list_id=list_id,
            sent=answer.sent if answer else None,
            state=payload.first_state(),
        )
        if answer is None:
            return
        skipped = [("invalid", s) for s in answer.invalid]
        skipped += [("unprocessed", s) for s in answer.unprocessed]
        for problem, recipient in skipped:
            db.execute(
                insert(SendingRecipient).values(
                    account=account,
                    sending_id=sending_id,
                    job_id=job_id,
                    problem=problem,
                    email=recipient.email,
                    reason=recipient.reason,
                    email_hash=hashed(recipient.email),
                )
            )

    return Result(outcome=outcome, record=record, http_status=200 if answer else None)


def describe(session: Session, job: Job) -> dict[str, Any]:
    """The outcome, with every skipped recipient and its reason."""
    view = dict(job.outcome or {})
    rows = session.scalars(
        select(SendingRecipient)
        .where(SendingRecipient.job_id == job.id)
        .order_by(SendingRecipient.id)
    )
    for row in rows:
        view.setdefault(f"{row.problem}_reasons", {})[row.email] = row.reason
    return view


def sent_to(
    session: Session,
    kinds: list[str],
    recipient_hash: str,
    since: datetime | None,
    until: datetime | None,
) -> list[Addressed]:
    """Sends to that one address, and sends to a list or group that left it out."""
    period = in_period(Job.created_at, since, until)
    addressed = session.scalars(
        select(Job)
        .join(JobRecipient, JobRecipient.job_id == Job.id)
        .where(JobRecipient.recipient_hash == recipient_hash, Job.kind.in_(kinds), period)
    )
    skipped = {
        job.id: (job, row)
        for job, row in session.execute(
            select(Job, SendingRecipient)
            .join(SendingRecipient, SendingRecipient.job_id == Job.id)
            .where(SendingRecipient.email_hash == recipient_hash, Job.kind.in_(kinds), period)
        )
    }
    found = []
    for job in addressed:  # a send to it alone (MailUp may still have left it out)
        _, row = skipped.pop(job.id, (job, None))
        found.append(_addressed(job, "campaign", row))
    return found + [_addressed(job, "list", row) for job, row in skipped.values()]


def _addressed(job: Job, role: str, skipped: SendingRecipient | None) -> Addressed:
    sent = job.status == JobStatus.SUCCEEDED
    return Addressed(
        job_id=job.id,
        kind=job.kind,
        role=role,
        outcome=skipped.problem if skipped else "sent" if sent else job.status,
        at=job.finished_at or job.updated_at,
        created_at=job.created_at,
        code=job.last_error_code,
        sending_id=skipped.sending_id if skipped else (job.outcome or {}).get("sending_id"),
        reason=skipped.reason if skipped else None,
    )


def purge(db: Connection, job_ids: list[str], hashed: Callable[[str], str]) -> None:
    """The addresses go, their hashes stay (made now where an older worker wrote none: for
    a send to one address that got to its call, and for each address MailUp left out)."""
    called = db.execute(
        select(Job.id, Job.payload)
        .join(CampaignSend, CampaignSend.job_id == Job.id)
        .where(Job.id.in_(job_ids), ~exists().where(JobRecipient.job_id == Job.id))
    ).all()
    alone = [
        {"job_id": r.id, "recipient_hash": hashed(r.payload["to"])}
        for r in called
        if r.payload.get("to")
    ]
    if alone:
        db.execute(insert(JobRecipient), alone)
    mine = SendingRecipient.job_id.in_(job_ids)
    hash_missing(
        db, SendingRecipient.id, SendingRecipient.email, SendingRecipient.email_hash, mine, hashed
    )
    db.execute(update(SendingRecipient).where(mine).values(email=None))


KIND = JobKind(
    "campaign_send",
    SendCampaign,
    execute,
    describe=describe,
    delivery="at_least_once",
    polls=(
        Poll("sendings", lambda s: s.sending_poll, sendings.poll),
        Poll("campaign_schedules", lambda s: s.schedule_poll, schedules.dispatch_due),
    ),
    sent_to=sent_to,
    # The audience by its ids and the time asked; the address, sender and reply-to go.
    keeps=("message_id", "list_id", "group_id", "in_groups", "not_in_groups", "when"),
    purge=purge,
)
