"""Pausing an account's channel while MailUp says its sender cannot send.

When SendMessage answers that the SMTP+ user is disabled, blocked or deleted, every queued
email of that account would fail the same way. Instead the channel pauses — until the
user's BlockUntil, or until an operator clears it — and the jobs wait and then resume.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection, delete, select

from worker.jobs import smtp_status
from worker.jobs.base import JobContext
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import ChannelPause, utcnow
from worker.mailup.errors import MailUpError
from worker.mailup.transactional import TransactionalClient
from worker.settings import Settings

log = logging.getLogger(__name__)

# How often jobs of a channel paused "until an operator clears it" look again.
RECHECK = timedelta(minutes=5)
BLOCKED_UNTIL = "105"
CLOCK_GRACE = timedelta(seconds=1)
BRIEF = timedelta(seconds=30)
_CACHE_SECONDS = 2.0
_cache: dict[tuple[str, str, str], tuple[float, datetime | None]] = {}


class ChannelPaused(Exception):
    """Raised after a pause is recorded: the runner puts the job back until ``resume_at``."""

    def __init__(self, resume_at: datetime, reason: str, error: MailUpError) -> None:
        super().__init__(reason)
        self.resume_at = resume_at
        self.reason = reason
        self.error = error


def resume_at(settings: Settings, account: str, channel: str) -> datetime | None:
    """When the paused channel may send again (None: it is not paused)."""
    key = (settings.ledger_url, account, channel)
    cached = _cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    with connection(settings.ledger_url) as db:
        row = db.execute(
            select(ChannelPause.until).where(
                ChannelPause.account == account, ChannelPause.channel == channel
            )
        ).first()
    now = utcnow()
    when = None if row is None else (row.until or now + RECHECK)
    if when is not None and when <= now:
        when = None  # a BlockUntil in the past: sending may resume
    _cache[key] = (time.monotonic() + _CACHE_SECONDS, when)
    return when


def pause_for_smtp_user(
    context: JobContext, client: TransactionalClient, exc: MailUpError
) -> NoReturn:
    """Learn why the SMTP+ user cannot send, pause the account's email, raise ChannelPaused."""
    account = context.claim.account
    username = context.account.smtp_user
    info = _user_info(client, username)
    block_until = smtp_status.mailup_datetime(info.get("BlockUntil"))
    now = utcnow()
    dated = block_until is not None and block_until > now
    operator_needed = info.get("AdminBlock") or info.get("IsEnabled") is False
    until: datetime | None = None
    if exc.code == BLOCKED_UNTIL or (dated and not operator_needed):
        # A second past MailUp's date absorbs our clocks' difference; a date already past
        # (MailUp's clock runs behind ours) means "very soon".
        until = block_until + CLOCK_GRACE if dated and block_until else now + BRIEF
    reason = f"SMTP+ user {username} cannot send: {exc.message}"
    with connection(context.settings.ledger_url) as db:
        if info:
            smtp_status.record(db, account, [info])
        _set_pause(db, account, "email", until, reason)
    _cache.clear()
    log.warning(
        "account %s: email paused %s: %s",
        account,
        f"until {until}" if until else "until an operator clears it",
        reason,
    )
    raise ChannelPaused(until or now + RECHECK, reason, exc)


def clear(settings: Settings, account: str, channel: str, kinds: list[str]) -> bool:
    """An operator's word: the channel may send again; its waiting jobs are due now."""
    with connection(settings.ledger_url) as db:
        removed = db.execute(
            delete(ChannelPause).where(
                ChannelPause.account == account, ChannelPause.channel == channel
            )
        ).rowcount
        store.wake(db, account, kinds)
    _cache.clear()
    return bool(removed)


def _set_pause(
    db: Connection, account: str, channel: str, until: datetime | None, reason: str
) -> None:
    store.upsert(
        db,
        ChannelPause,
        account=account,
        channel=channel,
        until=until,
        reason=reason,
        created_at=utcnow(),
    )


def _user_info(client: TransactionalClient, username: str) -> dict[str, Any]:
    try:
        users = client.list_user_info(username)
    except MailUpError as exc:
        log.warning("ListUserInfo for %s failed: %s", username, exc.message)
        return {}
    return next((u for u in users if u.get("Username") == username), users[0] if users else {})
