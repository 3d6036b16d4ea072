"""Enqueueing trusted-sender and SMTP+ user work, and the reads operators run directly
(through the account's shared OAuth2 token and its share of MailUp's 5 calls per second)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob
from worker.engine.clients import console_client, stored_smtp_password
from worker.jobs import smtp_status, smtp_users, trusted_senders
from worker.jobs.smtp_users import CreateSmtpUser, ResetSmtpPassword, SmtpUserInfo
from worker.jobs.trusted_senders import ManageTrustedSender
from worker.ledger.models import utcnow
from worker.settings import DEFAULT_ACCOUNT, get_settings

_PRIORITIES_TTL = 3600.0
_priorities: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def trust_sender(
    email: str, *, force: bool = False, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    """Queue "trust this address": MailUp mails it a verification link (StatusCode 0).

    An address the ledger knows as trusted (any StatusCode but 0 and 2: trusting it again
    would send it back to NotConfirmed) or disabled (MailUp will not trust it again) is
    refused unless ``force``; the worker checks MailUp itself again before it asks.
    """
    payload = validate(ManageTrustedSender, operation="add", email=email, force=force)
    known = trusted_senders.statuses(get_settings(), account, [email])[email]
    refused = trusted_senders.refusal(known, email)
    if refused and not force:
        raise InvalidJob({"email": refused[1]})
    return enqueue("trusted_sender", payload, account, **job)


def disable_trusted_sender(
    email: str, *, sender_id: str | None = None, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    """Queue disabling a trusted sender (StatusCode 2; it can never be trusted again)."""
    payload = validate(ManageTrustedSender, operation="disable", email=email, sender_id=sender_id)
    return enqueue("trusted_sender", payload, account, **job)


def create_smtp_user(
    *,
    list_id: int,
    trusted_senders: list[str] = [],  # noqa: B006 - never mutated
    trusted_domains: list[str] = [],  # noqa: B006
    is_enabled: bool = True,
    note: str = "",
    priority_code: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue an SMTP+ user creation. It waits until every trusted sender is confirmed, and
    fails if one is blocked or MAILUP_JOBS_SENDER_CONFIRM_DAYS pass first."""
    days = get_settings().sender_confirm_days
    payload = validate(
        CreateSmtpUser,
        list_id=list_id,
        trusted_senders=trusted_senders,
        trusted_domains=trusted_domains,
        is_enabled=is_enabled,
        note=note,
        priority_code=priority_code,
        confirm_by=utcnow() + timedelta(days=days),
    )
    return enqueue("create_smtp_user", payload, account, **job)


def reset_smtp_password(
    *, list_id: int, username: str, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    payload = validate(ResetSmtpPassword, list_id=list_id, username=username)
    return enqueue("reset_smtp_password", payload, account, **job)


def smtp_user_info_job(
    username: str | None = None, *, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    """Queue ListUserInfo (the outcome lists the users' status)."""
    payload = validate(SmtpUserInfo, username=username)
    return enqueue("smtp_user_info", payload, account, **job)


# --- reads, run directly ---------------------------------------------------------------


def smtp_user_info(
    username: str | None = None, account: str = DEFAULT_ACCOUNT
) -> list[dict[str, Any]]:
    """ListUserInfo now; what it says is also recorded in the ledger."""
    users = smtp_users.read_user_info(get_settings(), account, username)
    return [smtp_status.view(user) for user in users]


def smtp_priorities(account: str = DEFAULT_ACCOUNT) -> list[dict[str, Any]]:
    """MailUp's SMTP+ priority codes (cached for an hour: they do not change)."""
    cached = _priorities.get(account)
    if cached is None or cached[0] < time.monotonic():
        codes = console_client(get_settings(), account).smtp_priorities()
        rows = [{"code": p.code, "name": p.name} for p in codes]
        cached = _priorities[account] = (time.monotonic() + _PRIORITIES_TTL, rows)
    return cached[1]


def list_trusted_senders(
    account: str = DEFAULT_ACCOUNT, *, refresh: bool = False
) -> list[dict[str, Any]]:
    """The ledger's mirror of the account's trusted senders (read from MailUp first if asked)."""
    settings = get_settings()
    if refresh:
        trusted_senders.sync(settings, account)
    return trusted_senders.mirror(settings, account)


def smtp_password(username: str, account: str = DEFAULT_ACCOUNT) -> str | None:
    """The stored password of an SMTP+ user this system created or reset (decrypted)."""
    return stored_smtp_password(get_settings(), account, username) or None
