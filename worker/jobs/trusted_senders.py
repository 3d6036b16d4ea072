"""Job kind ``trusted_sender`` (trust or disable an address) and the mirror of an account's
trusted senders in the ledger, kept by ``sync`` (beat polls it)."""

from __future__ import annotations

import logging
from typing import Any, Literal, Self

from pydantic import EmailStr, Field, model_validator
from sqlalchemy import Connection, insert, select

from worker.errors import ConfigurationError
from worker.jobs.base import (
    FieldError,
    JobContext,
    JobKind,
    Payload,
    Result,
    describe_outcome,
)
from worker.jobs.clients import console_client
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import TrustedSender, TrustedSenderChange, utcnow
from worker.mailup.console import ConsoleClient
from worker.mailup.errors import MailUpError
from worker.settings import Settings

log = logging.getLogger(__name__)

NOT_CONFIRMED, CONFIRMED, BLOCKED = 0, 1, 2
PAGE_SIZE = 50


class ManageTrustedSender(Payload):
    operation: Literal["add", "disable"]
    email: EmailStr
    # Needed to disable; found in the mirror when omitted.
    sender_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _id_only_to_disable(self) -> Self:
        if self.operation == "add" and self.sender_id:
            raise FieldError("sender_id", "is only for disable")
        return self


def execute(context: JobContext, payload: ManageTrustedSender) -> Result:
    settings, account = context.settings, context.claim.account
    console = console_client(settings, account)
    if payload.operation == "add":
        item = console.trust_sender(str(payload.email))
    else:
        sender_id = payload.sender_id or _known_id(settings, account, str(payload.email))
        item = console.disable_trusted_sender(sender_id, str(payload.email))
    return Result(
        outcome=_summary(item),
        record=lambda db: _mirror(db, account, [item]),
        http_status=200,
    )


def sync(
    settings: Settings, account: str, console: ConsoleClient | None = None
) -> list[dict[str, Any]]:
    """Read every trusted sender from MailUp into the mirror; the changes seen."""
    console = console or console_client(settings, account)
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        body = console.trusted_senders(page, PAGE_SIZE)
        items += list(body.get("Items") or [])
        if len(items) >= int(body.get("TotalElementsCount") or 0) or not body.get("Items"):
            break
        page += 1
    with connection(settings.ledger_url) as db:
        return _mirror(db, account, items)


def poll(settings: Settings) -> int:
    """Mirror every console account's trusted senders; wake the SMTP+ user creations that
    wait on one whose status changed. Returns how many changes were seen."""
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
                store.wake(db, account, ["create_smtp_user"])
    return changed


def statuses(settings: Settings, account: str, emails: list[str]) -> dict[str, int | None]:
    """Each address's status in the mirror (None: not a trusted sender of this account)."""
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(TrustedSender.email, TrustedSender.status_code).where(
                TrustedSender.account == account, TrustedSender.email.in_(emails)
            )
        )
        known = {row.email.lower(): row.status_code for row in rows}
    return {email: known.get(email.lower()) for email in emails}


def _mirror(db: Connection, account: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    changes = []
    for item in items:
        sender_id, code = str(item["IdTrustedSender"]), int(item["StatusCode"])
        where = (TrustedSender.account == account, TrustedSender.sender_id == sender_id)
        old = db.scalar(select(TrustedSender.status_code).where(*where))
        if old != code:
            change = {
                "sender_id": sender_id,
                "email": item["EmailAddress"],
                "old": old,
                "new": code,
            }
            changes.append(change)
            db.execute(
                insert(TrustedSenderChange).values(
                    account=account,
                    sender_id=sender_id,
                    email=item["EmailAddress"],
                    old_status_code=old,
                    new_status_code=code,
                    seen_at=utcnow(),
                )
            )
        store.upsert(
            db,
            TrustedSender,
            account=account,
            sender_id=sender_id,
            email=item["EmailAddress"],
            status_code=code,
            status=item.get("StatusDescription") or "",
            authorized_at=item.get("AuthorizationDate") or None,
            checked_at=utcnow(),
        )
    return changes


def _known_id(settings: Settings, account: str, email: str) -> str:
    with connection(settings.ledger_url) as db:
        sender_id = db.scalar(
            select(TrustedSender.sender_id).where(
                TrustedSender.account == account, TrustedSender.email == email
            )
        )
    if sender_id is None:
        raise ConfigurationError(f"{email} is not a known trusted sender: give its sender_id")
    return str(sender_id)


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "sender_id": item.get("IdTrustedSender"),
        "email": item.get("EmailAddress"),
        "status_code": item.get("StatusCode"),
        "status": item.get("StatusDescription"),
    }


KIND = JobKind("trusted_sender", ManageTrustedSender, execute, describe_outcome)
