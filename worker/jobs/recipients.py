"""Job kinds for one recipient: ``recipient_add`` (to a list or a group, subscribed, or
pending with a confirmation email), ``recipient_subscribe`` and ``recipient_unsubscribe``;
and the reads operators run.

An addition whose answer was lost is reconciled by reading the recipient back by address.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, StringConstraints

from worker.engine.clients import console_client
from worker.engine.kind import JobContext, JobKind, Payload, Result
from worker.jobs.fields import ListId
from worker.mailup.errors import AmbiguousError, TransientError
from worker.mailup.recipients import Audience, Recipient, Recipients, Status
from worker.settings import Settings

Mobile = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{5,15}$")]
Prefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(\+|00)?[0-9]{1,4}$")]


class Target(Payload):
    """A list, or one of its groups."""

    list_id: ListId
    group_id: int | None = Field(default=None, gt=0)

    @property
    def audience(self) -> Audience:
        return Audience(self.list_id, self.group_id)


class AddRecipient(Target):
    email: EmailStr
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
    recipient_id: int = Field(gt=0)
    operation: Literal["subscribe", "unsubscribe"]


def execute_add(context: JobContext, payload: AddRecipient) -> Result:
    recipients = Recipients(console_client(context.settings, context.claim.account))
    context.calling()
    reconciled = False
    try:
        recipient_id = recipients.add(
            payload.audience, payload.recipient, confirm_email=payload.confirm_email
        )
    except AmbiguousError as exc:
        found = _find(recipients, payload)
        if found is None:
            raise TransientError(
                f"{exc.message}; {payload.email} is not on the list: trying again",
                http_status=exc.http_status,
                code=exc.code,
            ) from None
        recipient_id, reconciled = found, True
    outcome = {
        "recipient_id": recipient_id,
        "email": str(payload.email),
        "list_id": payload.list_id,
        "group_id": payload.group_id,
        "status": "pending" if payload.confirm_email else "subscribed",
        "reconciled": reconciled,
    }
    return Result(outcome=outcome, http_status=200)


def _find(recipients: Recipients, payload: AddRecipient) -> int | None:
    status: Status = "pending" if payload.confirm_email else "subscribed"
    found = recipients.read(payload.audience, status, email=str(payload.email))
    return next((r.id for r in found if r.email.lower() == str(payload.email).lower()), None)


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
    return Result(outcome=outcome, http_status=200)


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
