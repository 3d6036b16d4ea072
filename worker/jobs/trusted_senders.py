"""Job kind ``trusted_sender`` (trust or disable an address), the mirror of an account's
trusted senders in the ledger, kept by ``sync`` (beat polls it), and ``check_sender``, what
a send from an address waits for.

Addresses are matched without regard to case, as MailUp does. A sender is trusted when its
StatusCode is neither 0 (not confirmed) nor 2 (blocked): doc 004. Trusting again an address
that is trusted would send it back to NotConfirmed, and a disabled one cannot be trusted
again (the docs): both are refused with the reason unless ``force`` is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from sqlalchemy import Connection, func, insert, select

from worker.engine.clients import console_client
from worker.engine.kind import (
    FieldError,
    JobContext,
    JobKind,
    Payload,
    Poll,
    Refused,
    Result,
    Waiting,
)
from worker.jobs.fields import EmailAddress
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import TrustedSender as MirrorRow
from worker.ledger.models import TrustedSenderChange, utcnow
from worker.mailup.console import BLOCKED, NOT_CONFIRMED, ConsoleClient, TrustedSender, trusted
from worker.mailup.errors import MailUpError
from worker.settings import Settings

log = logging.getLogger(__name__)


class ManageTrustedSender(Payload):
    operation: Literal["add", "disable"]
    email: EmailAddress
    # To disable: found on MailUp by address when omitted.
    sender_id: str | None = Field(default=None, max_length=64)
    # To add an address that is already trusted (back to NotConfirmed) or disabled.
    force: bool = False

    @model_validator(mode="after")
    def _options_fit(self) -> Self:
        if self.operation == "add" and self.sender_id:
            raise FieldError("sender_id", "is only for disable")
        if self.operation == "disable" and self.force:
            raise FieldError("force", "is only for add")
        return self


def refusal(status_code: int | None, email: str) -> tuple[str, str] | None:
    """Why trusting ``email`` again is refused without force: (code, reason), or None."""
    if status_code == BLOCKED:
        return "sender_blocked", f"{email} was disabled: MailUp will not trust it again"
    if status_code is not None and trusted(status_code):
        return "sender_confirmed", (
            f"{email} is already a confirmed trusted sender (StatusCode {status_code}): "
            "trusting it again would send it back to NotConfirmed until its owner clicks a "
            "new link (force it to do so)"
        )
    return None


def check_sender(context: JobContext, email: str) -> None:
    """Return if ``email`` is a trusted sender of the job's account. Unconfirmed, the job
    waits for its owner's click (beat's poll wakes it), but not forever: past
    MAILUP_JOBS_SENDER_CONFIRM_DAYS since the ledger saw it become unconfirmed, it fails."""
    settings, account = context.settings, context.claim.account
    status = statuses(settings, account, [email])[email]
    if status is None or not trusted(status):
        sync(settings, account)  # the mirror may be behind MailUp
        status = statuses(settings, account, [email])[email]
    if status is None:
        raise Refused("sender_unknown", f"{email} is not a trusted sender of account {account}")
    if status == BLOCKED:
        raise Refused("sender_blocked", f"trusted sender {email} is blocked")
    if trusted(status):
        return
    since = _unconfirmed_since(settings, account, email)
    deadline = since + timedelta(days=settings.sender_confirm_days)
    now = utcnow()
    if now >= deadline:
        raise Refused(
            "sender_unconfirmed",
            f"trusted sender {email} still not confirmed {settings.sender_confirm_days:g} days "
            f"after {since:%Y-%m-%d %H:%M} UTC (MAILUP_JOBS_SENDER_CONFIRM_DAYS): its owner "
            "has not clicked MailUp's link; trust it again to send a new one",
        )
    raise Waiting(
        min(now + timedelta(seconds=settings.trusted_sender_poll), deadline),
        f"waiting for trusted sender confirmation: {email} (until {deadline:%Y-%m-%d %H:%M} UTC)",
    )


def _unconfirmed_since(settings: Settings, account: str, email: str) -> datetime:
    """When the ledger last saw the sender become NotConfirmed: first seen so, or trusted
    again."""
    with connection(settings.ledger_url) as db:
        since = db.scalar(
            select(func.max(TrustedSenderChange.seen_at)).where(
                TrustedSenderChange.account == account,
                func.lower(TrustedSenderChange.email) == email.lower(),
                TrustedSenderChange.new_status_code == NOT_CONFIRMED,
            )
        )
    assert since is not None, "the mirror records every status it takes as a change"
    return since


def execute(context: JobContext, payload: ManageTrustedSender) -> Result:
    settings, account = context.settings, context.claim.account
    console = console_client(settings, account)
    email = str(payload.email)
    known = _on_mailup(console, email, payload.sender_id)
    if payload.operation == "add":
        refused = refusal(known.status_code if known else None, email)
        if refused and not payload.force:
            raise Refused(*refused)
        sender = console.trust_sender(email)
    else:
        if known is None:
            raise Refused("sender_unknown", f"{email} is not a trusted sender of this account")
        sender = console.disable_trusted_sender(known)
    return Result(
        outcome=_summary(sender),
        record=lambda db: _mirror(db, account, [sender]),
    )


def _on_mailup(console: ConsoleClient, email: str, sender_id: str | None) -> TrustedSender | None:
    """The sender as MailUp has it, by id or by address."""
    for sender in console.trusted_senders():
        if sender.id == sender_id or (sender_id is None and sender.email.lower() == email.lower()):
            return sender
    return None


def sync(
    settings: Settings, account: str, console: ConsoleClient | None = None
) -> list[dict[str, Any]]:
    """Read every trusted sender from MailUp into the mirror; the changes seen."""
    senders = (console or console_client(settings, account)).trusted_senders()
    with connection(settings.ledger_url) as db:
        return _mirror(db, account, senders)


def poll(settings: Settings) -> int:
    """Mirror every console account's trusted senders; wake the SMTP+ user creations and
    campaign sends that wait on one whose status changed. Returns how many changes were seen."""
    changed = 0
    for account, config in settings.accounts.items():
        if not config.client_id:
            continue  # no console access configured for this account
        try:
            changes = sync(settings, account)
        except MailUpError as exc:
            log.warning("account %s: trusted senders not polled: %s", account, exc.message)
            continue
        if changes:
            changed += len(changes)
            with connection(settings.ledger_url) as db:
                store.wake(db, account, ["create_smtp_user", "campaign_send"])
    return changed


def statuses(settings: Settings, account: str, emails: list[str]) -> dict[str, int | None]:
    """Each address's status in the mirror (None: not a trusted sender of this account)."""
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(MirrorRow.email, MirrorRow.status_code).where(
                MirrorRow.account == account,
                func.lower(MirrorRow.email).in_([e.lower() for e in emails]),
            )
        )
        known = {row.email.lower(): row.status_code for row in rows}
    return {email: known.get(email.lower()) for email in emails}


def mirror(settings: Settings, account: str) -> list[dict[str, Any]]:
    """The account's trusted senders as last seen, by address."""
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(MirrorRow).where(MirrorRow.account == account).order_by(MirrorRow.email)
        )
        return [
            {
                "sender_id": r.sender_id,
                "email": r.email,
                "status_code": r.status_code,
                "status": r.status,
                "authorized_at": r.authorized_at,
                "checked_at": r.checked_at.isoformat(),
            }
            for r in rows
        ]


def _mirror(db: Connection, account: str, senders: list[TrustedSender]) -> list[dict[str, Any]]:
    changes = []
    for sender in senders:
        where = (MirrorRow.account == account, MirrorRow.sender_id == sender.id)
        old = db.scalar(select(MirrorRow.status_code).where(*where))
        if old != sender.status_code:
            change = {
                "sender_id": sender.id,
                "email": sender.email,
                "old": old,
                "new": sender.status_code,
            }
            changes.append(change)
            db.execute(
                insert(TrustedSenderChange).values(
                    account=account,
                    sender_id=sender.id,
                    email=sender.email,
                    old_status_code=old,
                    new_status_code=sender.status_code,
                    seen_at=utcnow(),
                )
            )
        store.upsert(
            db,
            MirrorRow,
            account=account,
            sender_id=sender.id,
            email=sender.email,
            status_code=sender.status_code,
            status=sender.status,
            authorized_at=sender.authorized_at.isoformat() if sender.authorized_at else None,
            checked_at=utcnow(),
        )
    return changes


def _summary(sender: TrustedSender) -> dict[str, Any]:
    return {
        "sender_id": sender.id,
        "email": sender.email,
        "status_code": sender.status_code,
        "status": sender.status,
    }


KIND = JobKind(
    "trusted_sender",
    ManageTrustedSender,
    execute,
    polls=(Poll("trusted_senders", lambda s: s.trusted_sender_poll, poll),),
)
