"""Job kinds for one recipient: ``recipient_add`` (to a list or a group, subscribed, or
pending with a confirmation email), ``recipient_subscribe`` and ``recipient_unsubscribe``;
and the reads operators run.

An addition is made through ``worker.engine.creation``: one whose answer was lost is found
again by reading the recipient back by address, in the status asked for. MailUp keeps one
recipient per address, so adding one that is there already only updates it: that call's
lost answer is simply retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from worker.engine.clients import console_client
from worker.engine.creation import Making, Seen, create
from worker.engine.kind import JobContext, JobKind, Payload, Result
from worker.jobs.fields import EmailAddress, ListId, MailUpId
from worker.mailup.errors import AmbiguousError, TransientError
from worker.mailup.recipients import Audience, Recipient, Recipients, Status
from worker.settings import Settings

Mobile = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{5,15}$")]
Prefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(\+|00)?[0-9]{1,4}$")]


class Target(Payload):
    """A list, or one of its groups."""

    list_id: ListId
    group_id: MailUpId | None = None

    @property
    def audience(self) -> Audience:
        return Audience(self.list_id, self.group_id)


class AddRecipient(Target):
    email: EmailAddress
    name: str | None = Field(default=None, max_length=200)
    mobile_number: Mobile | None = None
    mobile_prefix: Prefix | None = None
    # MailUp's recipient fields, by field id.
    fields: dict[int, str] = Field(default_factory=dict)
    # Pending until the recipient confirms by the email MailUp sends.
    confirm_email: bool = False

    @property
    def recipient(self) -> Recipient:
        return Recipient(
            str(self.email), self.name, self.mobile_number, self.mobile_prefix, dict(self.fields)
        )


class RecipientRef(Target):
    recipient_id: MailUpId
    operation: Literal["subscribe", "unsubscribe"]


def execute_add(context: JobContext, payload: AddRecipient) -> Result:
    recipients = Recipients(console_client(context.settings, context.claim.account))
    status: Status = "pending" if payload.confirm_email else "subscribed"
    email = str(payload.email)
    already = False

    def look(left_at: datetime | None) -> list[Seen[int]]:
        found = recipients.read(payload.audience, status, email=email)
        ids = [r.id for r in found if r.email.lower() == email.lower() and r.id is not None]
        return [Seen(f"recipient:{n}:{status}", n) for n in ids]

    def note(before: list[Seen[int]]) -> None:
        nonlocal already
        already = bool(before)

    def make() -> Seen[int]:
        try:
            recipient_id = recipients.add(
                payload.audience, payload.recipient, confirm_email=payload.confirm_email
            )
        except AmbiguousError as exc:
            if not already:
                raise
            # It was there already: the call only updates it, and a repeat makes nothing new.
            raise TransientError(exc.message, http_status=exc.http_status, code=exc.code) from None
        return Seen(f"recipient:{recipient_id}:{status}", recipient_id)

    where = f"group {payload.group_id}" if payload.group_id else f"list {payload.list_id}"
    what = f"{email} {status} in {where}"
    made = create(context, Making(look, make, what), check=note)
    outcome = {
        "recipient_id": made.item,
        "email": email,
        "list_id": payload.list_id,
        "group_id": payload.group_id,
        "status": status,
        "reconciled": made.reconciled,
    }
    return Result(outcome=outcome)


def execute_subscription(context: JobContext, payload: RecipientRef) -> Result:
    recipients = Recipients(console_client(context.settings, context.claim.account))
    change = recipients.subscribe if payload.operation == "subscribe" else recipients.unsubscribe
    change(payload.audience, payload.recipient_id)
    outcome = {
        "recipient_id": payload.recipient_id,
        "list_id": payload.list_id,
        "group_id": payload.group_id,
        "operation": payload.operation,
    }
    return Result(outcome=outcome)


def read(settings: Settings, account: str, target: Target, status: Status) -> list[dict[str, Any]]:
    """A list's recipients of one status (or a group's members), for operators."""
    found = Recipients(console_client(settings, account)).read(target.audience, status)
    return [
        {
            "recipient_id": r.id,
            "email": r.email,
            "name": r.name,
            "mobile_number": r.mobile_number,
            "mobile_prefix": r.mobile_prefix,
            "fields": r.fields,
        }
        for r in found
    ]


ADD = JobKind("recipient_add", AddRecipient, execute_add)
SUBSCRIPTION = JobKind("recipient_subscription", RecipientRef, execute_subscription)
