"""Job kind ``campaign_send``: send an email message (made in a list, see
``worker.jobs.messages``) to a list's subscribers, a group, or one recipient.

Never twice. A send is not idempotent: it is made through ``worker.engine.creation``, which
reads the message's sendings right before the call and, when an answer is lost, looks for
the one the call made over a verification window. A sending shows in MailUp's queues (with
its Id) and, once done, only in the message's SendHistory (no Id: known by its start). Found
after a lost answer, its skipped recipients are unknown (null). The kind's delivery is
``at_most_once``: what cannot be found is ``in_doubt``.

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

from pydantic import Field, field_validator, model_validator
from sqlalchemy import Connection, exists, insert, select, update
from sqlalchemy.orm import Session

from worker.engine.clients import console_client
from worker.engine.creation import Made, Making, Seen, create
from worker.engine.kind import (
    Addressed,
    FieldError,
    JobContext,
    JobKind,
    Payload,
    Poll,
    Refused,
    Result,
    hash_missing,
    in_period,
)
from worker.jobs import groups, schedules, sendings, trusted_senders
from worker.jobs.fields import MAX_ID, DisplayName, EmailAddress, ListId, MailUpId
from worker.ledger import store
from worker.ledger.crypto import recipient_hasher
from worker.ledger.db import connection
from worker.ledger.models import (
    Creation,
    Job,
    JobRecipient,
    JobStatus,
    SendingRecipient,
)
from worker.mailup.dates import to_mailup
from worker.mailup.lists import Lists
from worker.mailup.sendings import Audience, Sendings, SendOptions, SendResult

log = logging.getLogger(__name__)

GroupIds = tuple[int, ...]
# What a campaign send made: MailUp's answer, or, found after a lost answer, the sending's
# id (None: seen only in the SendHistory, which has no ids).
Sent = SendResult | int | None


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

    message_id: MailUpId
    list_id: ListId | None = None
    group_id: MailUpId | None = None
    to: EmailAddress | None = None
    in_groups: GroupIds = ()
    not_in_groups: GroupIds = ()
    sender_name: DisplayName | None = Field(default=None, min_length=1, max_length=200)
    sender_address: EmailAddress | None = None
    when: str = "now"
    reply_to: EmailAddress | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, value: Any) -> str:
        if not isinstance(value, str | datetime):
            raise ValueError("must be now, undefined or a UTC date")
        return parse_when(value)

    @field_validator("in_groups", "not_in_groups")
    @classmethod
    def _group_ids(cls, value: GroupIds) -> GroupIds:
        if any(not 0 < g <= MAX_ID for g in value):
            raise ValueError(f"group ids are from 1 to {MAX_ID}")
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
    list_id = _list_of(context, payload)
    mailup = Sendings(console_client(context.settings, context.claim.account))
    made = create(
        context,
        _making(mailup, list_id, payload),
        check=lambda before: _before_call(context, payload, list_id),
    )
    return _result(context, payload, list_id, made)


def _making(mailup: Sendings, list_id: int, payload: SendCampaign) -> Making[Sent]:
    """A sending of the message: in a queue (with its Id), or already only in the message's
    SendHistory (no Id: known by its start)."""
    message_id = payload.message_id

    def look(left_at: datetime | None) -> list[Seen[Sent]]:
        # The queues first: a sending that leaves them between the two reads is seen by
        # both (its start tells it is one), never missed. Before the call (no left_at) the
        # history is of no use: all of it started earlier.
        queued = [s for s in mailup.queued() if s.message_id == message_id]
        past = mailup.history(list_id, message_id) if left_at is not None else []
        seen: list[Seen[Sent]] = [Seen(f"sending:{s.id}", s.id, _started(s.start)) for s in queued]
        # Second-precise dates: one made in the second the call left counts.
        after = None if left_at is None else left_at - timedelta(seconds=1)
        starts = [p.start for p in past if p.start and (after is None or p.start >= after)]
        for number, start in enumerate(starts):
            # Two that started in the same second are two: the second one's key says so.
            twins = starts[:number].count(start)
            seen.append(Seen(_history_key(start) + (f"#{twins + 1}" if twins else ""), None))
        return seen

    def make() -> Seen[Sent]:
        answer = mailup.send(message_id, payload.audience(list_id), payload.options())
        return Seen(f"sending:{answer.sending_id}", answer)

    return Making(look, make, f"a sending of message {message_id} (list {list_id})")


def _history_key(start: datetime) -> str:
    return f"history:{to_mailup(start)}"


def _started(start: datetime | None) -> frozenset[str]:
    """Where a queued sending will show in the SendHistory: by the date it starts."""
    return frozenset({_history_key(start)}) if start is not None else frozenset()


def _list_of(context: JobContext, payload: SendCampaign) -> int:
    if payload.list_id is not None:
        return payload.list_id
    assert payload.group_id is not None
    found = groups.list_of(context.settings, context.claim.account, payload.group_id)
    if found is None:
        raise Refused("group_unknown", f"the ledger knows no group {payload.group_id}")
    return found


def _check_sender(context: JobContext, payload: SendCampaign, list_id: int) -> None:
    """The sending's sender — the one given, else the list's — must be a trusted sender:
    MailUp answers 500 otherwise, which proves nothing of what it did. One still unconfirmed
    makes the job wait for its owner's click, for a while."""
    if payload.sender_address is not None:
        trusted_senders.check_sender(context, str(payload.sender_address))
        return
    mailing_list = Lists(console_client(context.settings, context.claim.account)).details(list_id)
    if not mailing_list.sender_name or not mailing_list.owner_email:
        raise Refused(
            "list_has_no_sender",
            f"list {list_id} has no sender name and address: give sender_name and "
            "sender_address, or set the list's (lists update)",
        )
    trusted_senders.check_sender(context, mailing_list.owner_email)


def _before_call(context: JobContext, payload: SendCampaign, list_id: int) -> None:
    """The sender checked; the one recipient's keyed hash kept, so that "what was sent to x"
    finds the send whatever its outcome."""
    _check_sender(context, payload, list_id)
    if payload.to is None:
        return
    hashed = recipient_hasher(context.settings)(str(payload.to))
    with connection(context.settings.ledger_url) as db:
        store.upsert(db, JobRecipient, job_id=context.claim.job_id, recipient_hash=hashed)


def _result(context: JobContext, payload: SendCampaign, list_id: int, made: Made[Sent]) -> Result:
    """What MailUp answered; for a sending found after a lost answer, only what the queues or
    the history show (who it skipped is not known: null, not empty)."""
    account, job_id = context.claim.account, context.claim.job_id
    answer = made.item if isinstance(made.item, SendResult) else None
    sending_id = answer.sending_id if answer else made.item if isinstance(made.item, int) else None
    outcome: dict[str, Any] = {
        "sending_id": sending_id,
        "sent": answer.sent if answer else None,
        "message_id": payload.message_id,
        "list_id": list_id,
        "invalid_recipients": [s.email for s in answer.invalid] if answer else None,
        "unprocessed_recipients": [s.email for s in answer.unprocessed] if answer else None,
        "reconciled": made.reconciled,
    }
    if sending_id is None:
        outcome["note"] = (
            "found only in the message's SendHistory, which gives a sending no Id: "
            "it had left MailUp's queues before this job looked"
        )
    hashed = recipient_hasher(context.settings)

    def record(db: Connection) -> None:
        if sending_id is None:
            return
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

    return Result(outcome=outcome, record=record)


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
        .join(Creation, Creation.job_id == Job.id)
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
    # A lost answer is looked for at MailUp (worker.engine.creation); when it cannot be
    # found the job is in_doubt, never sent again unless the operator chose at_least_once.
    delivery="at_most_once",
    polls=(
        Poll("sendings", lambda s: s.sending_poll, sendings.poll),
        Poll("campaign_schedules", lambda s: s.schedule_poll, schedules.dispatch_due),
    ),
    sent_to=sent_to,
    # The audience by its ids and the time asked; the address, sender and reply-to go.
    keeps=("message_id", "list_id", "group_id", "in_groups", "not_in_groups", "when"),
    purge=purge,
)
