"""Job kinds for SMTP+ users: ``create_smtp_user`` (only once every trusted sender it names
is confirmed), ``reset_smtp_password`` and ``smtp_user_info`` (ListUserInfo).

A password MailUp returns is stored encrypted (``smtp_users``) and never shown in outcomes;
for the account's own SMTP+ user it is what later emails send with. A reset whose answer is
lost is tried again, never left in doubt: each makes a new password, the last one is kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Self

from pydantic import Field, model_validator
from sqlalchemy import Connection

from worker.engine.clients import console_client, with_smtp_user
from worker.engine.kind import FieldError, JobContext, JobKind, Payload, Refused, Result, Waiting
from worker.jobs import smtp_status, trusted_senders
from worker.jobs.fields import EmailAddress, ListId
from worker.ledger import store
from worker.ledger.crypto import secret_box
from worker.ledger.db import connection
from worker.ledger.models import SmtpUserAccount, utcnow
from worker.mailup.console import BLOCKED, CONFIRMED, NewSmtpUser, SmtpPlusUser
from worker.mailup.errors import Api
from worker.mailup.transactional import UserInfo
from worker.settings import Settings


class CreateSmtpUser(Payload):
    list_id: ListId
    trusted_senders: list[EmailAddress] = Field(default_factory=list)
    trusted_domains: list[str] = Field(default_factory=list)
    is_enabled: bool = True
    note: str = Field(default="", max_length=500)
    priority_code: int | None = Field(default=None, ge=1, le=5)
    # Set at the door: past it, waiting for confirmations ends in failure.
    confirm_by: datetime

    @model_validator(mode="after")
    def _something_trusted(self) -> Self:
        if not (self.trusted_senders or self.trusted_domains):
            raise FieldError("trusted_senders", "name at least one trusted sender or domain")
        return self


class ResetSmtpPassword(Payload):
    list_id: ListId
    username: str = Field(min_length=1, max_length=64)


class SmtpUserInfo(Payload):
    username: str | None = Field(default=None, max_length=64)


def execute_create(context: JobContext, payload: CreateSmtpUser) -> Result:
    settings, account = context.settings, context.claim.account
    senders = [str(e) for e in payload.trusted_senders]
    status = trusted_senders.statuses(settings, account, senders)
    if any(code != CONFIRMED for code in status.values()):
        trusted_senders.sync(settings, account)  # the mirror may be behind MailUp
        status = trusted_senders.statuses(settings, account, senders)
    blocked = [e for e, code in status.items() if code == BLOCKED]
    if blocked:
        raise Refused(
            "sender_blocked",
            f"trusted sender {', '.join(blocked)} is blocked: MailUp will not create the user",
        )
    waiting = [e for e, code in status.items() if code != CONFIRMED]
    if waiting:
        if utcnow() > payload.confirm_by:
            raise Refused(
                "sender_not_confirmed",
                f"trusted sender {', '.join(waiting)} not confirmed by {payload.confirm_by}",
            )
        raise Waiting(
            utcnow() + timedelta(seconds=settings.trusted_sender_poll),
            f"waiting for trusted sender confirmation: {', '.join(waiting)}",
        )
    request = NewSmtpUser(
        trusted_senders=tuple(senders),
        trusted_domains=tuple(payload.trusted_domains),
        is_enabled=payload.is_enabled,
        note=payload.note,
        priority_code=payload.priority_code,
    )
    console = console_client(settings, account)
    context.calling()
    user = console.create_smtp_user(payload.list_id, request)
    return _user_result(settings, account, payload.list_id, user)


def execute_reset(context: JobContext, payload: ResetSmtpPassword) -> Result:
    console = console_client(context.settings, context.claim.account)
    context.calling()
    user = console.reset_smtp_password(payload.list_id, payload.username)
    return _user_result(context.settings, context.claim.account, payload.list_id, user)


def execute_info(context: JobContext, payload: SmtpUserInfo) -> Result:
    account = context.claim.account
    users = with_smtp_user(
        context.settings, account, lambda client: client.list_user_info(payload.username)
    )
    return Result(
        outcome={"users": [smtp_status.view(u) for u in users]},
        record=lambda db: smtp_status.record(db, account, users),
        code="0",
    )


def _user_result(settings: Settings, account: str, list_id: int, user: SmtpPlusUser) -> Result:
    encrypted = secret_box(settings).encrypt(user.password)

    def record(db: Connection) -> None:
        store.upsert(
            db,
            SmtpUserAccount,
            account=account,
            username=user.username,
            list_id=list_id,
            password_encrypted=encrypted,
            updated_at=utcnow(),
        )

    return Result(outcome={**user.summary(), "password_stored": True}, record=record)


CREATE = JobKind("create_smtp_user", CreateSmtpUser, execute_create)
# A reset is safe to repeat (see ConsoleClient.reset_smtp_password): a worker lost mid-call
# runs it again rather than leave the job in doubt without a password that works.
RESET = JobKind("reset_smtp_password", ResetSmtpPassword, execute_reset, delivery="at_least_once")
# ListUserInfo is a call of the transactional email API: its codes are that API's.
INFO = JobKind("smtp_user_info", SmtpUserInfo, execute_info, api=Api.EMAIL)


def read_user_info(settings: Settings, account: str, username: str | None) -> list[UserInfo]:
    """ListUserInfo now, for operators; what it says is recorded in the ledger."""
    users = with_smtp_user(settings, account, lambda client: client.list_user_info(username))
    with connection(settings.ledger_url) as db:
        smtp_status.record(db, account, users)
    return users
