"""Campaign email: send a message made in a list, schedule it, stop or delete a sending,
and read what MailUp's sending queues showed.

    from producers.campaigns import send_campaign, schedule_campaign
    send_campaign(message_id=12, list_id=1, in_groups=[3], not_in_groups=[4])
    schedule_campaign(message_id=12, group_id=3, at=datetime(2026, 12, 24, 8, tzinfo=UTC))

Two ways to send later. ``schedule_campaign`` keeps the send in the ledger until ``at``:
the message and the audience may still change until then, and it can be cancelled
(``cancel_schedule``). ``when=`` (MailUp's ``datetime``) hands the date to MailUp at once:
the audience is fixed now, MailUp plans the sending, and it can only be stopped there.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob, TransactionalIsBetterWarning
from producers.lists import check_group
from worker.jobs import groups, messages, schedules, sendings, trusted_senders
from worker.jobs.campaigns import SendCampaign
from worker.jobs.sendings import SendingRef
from worker.ledger.models import utcnow
from worker.mailup.console import BLOCKED
from worker.mailup.dates import from_mailup
from worker.settings import DEFAULT_ACCOUNT, get_settings

# A date handed to MailUp this long ago is a mistake, not a clock's drift.
_PAST_SLACK = timedelta(minutes=1)


def send_campaign(
    message_id: int,
    *,
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    idempotency_key: str | None = None,
    **send: Any,
) -> str:
    """Queue a send of ``message_id``. The audience is ``list_id`` (filtered with
    ``in_groups`` / ``not_in_groups``), ``group_id``, or ``to`` an address of ``list_id``.
    Options: ``sender_name`` + ``sender_address`` (a confirmed trusted sender), ``when``
    (``now``, ``undefined`` or an aware datetime), ``reply_to``."""
    payload = _checked(account, message_id, send)
    return enqueue("campaign_send", payload, account, priority, idempotency_key)


def schedule_campaign(
    message_id: int,
    *,
    at: datetime,
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    **send: Any,
) -> str:
    """Keep a send (as ``send_campaign`` takes it) in the ledger until ``at`` (aware, in
    the future); returns the schedule's id. Beat queues it once, when due."""
    if at.tzinfo is None:
        raise InvalidJob({"at": "a date without a zone is ambiguous: give a UTC one"})
    if at <= utcnow():
        raise InvalidJob({"at": f"{at.isoformat()} is not in the future"})
    payload = _checked(account, message_id, send)
    if not 0 <= priority <= 9:
        raise InvalidJob({"priority": "must be from 0 (most urgent) to 9"})
    return schedules.create(
        get_settings(),
        account=account,
        payload=payload.model_dump(mode="json"),
        due_at=at,
        priority=priority,
    )


def list_schedules(*, due: bool = False, state: str | None = None) -> list[dict[str, Any]]:
    """Schedules by due date; ``due``: only those due and not yet dispatched."""
    return schedules.listing(get_settings(), due=due, state=state)


def cancel_schedule(schedule_id: str) -> str:
    """Cancel a schedule not yet dispatched; returns its state afterwards (``cancelled``,
    ``dispatched`` if beat queued it first — then stop its sending instead — or ``missed``)."""
    try:
        return schedules.cancel(get_settings(), schedule_id)
    except LookupError as exc:
        raise InvalidJob({"schedule_id": str(exc)}) from None


def stop_sending(sending_id: int, *, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    """Queue stopping a planned or going sending (MailUp takes one stop per 30 s)."""
    payload = validate(SendingRef, sending_id=sending_id)
    return enqueue("sending_stop", payload, account, **job)


def delete_sending(sending_id: int, *, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    """Queue deleting a sending; one still planned or going is stopped first."""
    payload = validate(SendingRef, sending_id=sending_id)
    return enqueue("sending_delete", payload, account, **job)


def list_sendings(
    *, state: str | None = None, account: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    return sendings.listing(get_settings(), state=state, account=account, limit=limit)


def sending_details(sending_id: int, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any] | None:
    return sendings.details(get_settings(), account, sending_id)


# --- the door -----------------------------------------------------------------------------


def _checked(account: str, message_id: int, send: dict[str, Any]) -> SendCampaign:
    """The payload, checked against what the ledger knows; refused naming the field."""
    settings = get_settings()
    if send.get("group_id") is not None and send.get("list_id") is None:
        known = groups.list_of(settings, account, int(send["group_id"]))
        if known is None:
            raise InvalidJob(
                {
                    "group_id": f"the ledger knows no group {send['group_id']}: read its "
                    "list's groups first (mailup-jobs groups list --list-id N), or give list_id"
                }
            )
        send = {**send, "list_id": known}
    payload = validate(SendCampaign, message_id=message_id, **send)
    assert payload.list_id is not None  # set above for a group, required otherwise
    for group_id in _groups(payload):
        check_group(account, payload.list_id, group_id)
    known_list = messages.list_of(settings, account, message_id)
    if known_list is not None and known_list != payload.list_id:
        raise InvalidJob(
            {"message_id": f"message {message_id} is in list {known_list}, not {payload.list_id}"}
        )
    if payload.sender_address is not None:
        _check_sender(account, str(payload.sender_address))
    when = from_mailup(payload.when) if payload.when not in ("now", "undefined") else None
    if when is not None and when < utcnow() - _PAST_SLACK:
        raise InvalidJob({"when": f"{payload.when} is in the past: send now instead"})
    if payload.to is not None:
        warnings.warn(
            "a campaign send to one recipient takes a place in MailUp's sending queue and "
            "its checks (seconds each); for one-to-one mail use send_email (the "
            "transactional API)",
            TransactionalIsBetterWarning,
            stacklevel=3,
        )
    return payload


def _groups(payload: SendCampaign) -> Iterable[int]:
    yield from payload.in_groups
    yield from payload.not_in_groups
    if payload.group_id is not None:
        yield payload.group_id


def _check_sender(account: str, email: str) -> None:
    status = trusted_senders.statuses(get_settings(), account, [email])[email]
    if status is None:
        raise InvalidJob(
            {
                "sender_address": f"{email} is not a trusted sender of account {account} as "
                "far as the ledger knows: trust it first (mailup-jobs trusted-senders add), or "
                "refresh the ledger (mailup-jobs trusted-senders list)"
            }
        )
    if status == BLOCKED:
        raise InvalidJob({"sender_address": f"trusted sender {email} is blocked"})
