"""Campaign sendings in the ledger: their life through MailUp's queues, and job kinds
``sending_stop`` and ``sending_delete``.

Beat's ``sendings`` poll reads the three queues (Immediate, Deferred, Undefined) of every
account with Console access and writes each change of state with its time; a deferred
sending also gets the first date MailUp can send it. A sending the ledger saw queued that
is in no queue any more has finished.

MailUp takes one stop and one delete per account every 30 s (LIMITS.md). Every worker
shares that turn through the rate limiter: a job whose turn has not come waits — back in
the queue, no attempt spent — rather than fail or hold a worker.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, insert, select, update

from worker.engine.clients import console_client, limiter
from worker.engine.kind import JobContext, JobKind, Payload, Refused, Result, Waiting
from worker.ledger import store
from worker.ledger.db import connection, transaction
from worker.ledger.models import Sending, SendingRecipient, SendingState, utcnow
from worker.mailup.errors import MailUpError, PermanentError
from worker.mailup.sendings import QUEUES, QueuedSending, Sendings
from worker.settings import Settings

log = logging.getLogger(__name__)

OPEN = QUEUES  # a sending in one of these states is still MailUp's to send
FINISHED, STOPPED, DELETED = "finished", "stopped", "deleted"
# MailUp's one call per 30 s, and a second of slack for the call's way there.
TURN_SECONDS = 31.0


# --- the ledger's record ------------------------------------------------------------------


def record_new(
    db: Connection,
    account: str,
    sending_id: int,
    *,
    job_id: str,
    message_id: int,
    list_id: int,
    sent: int | None,
    state: str,
) -> None:
    """A sending a job made (the queue poll may have seen it first: keep its state)."""
    where = (Sending.account == account, Sending.sending_id == sending_id)
    if db.scalar(select(Sending.state).where(*where)) is not None:
        changes: dict[str, Any] = {"job_id": job_id, "message_id": message_id, "list_id": list_id}
        if sent is not None:
            changes["sent"] = sent
        db.execute(update(Sending).where(*where).values(**changes))
        return
    now = utcnow()
    db.execute(
        insert(Sending).values(
            account=account,
            sending_id=sending_id,
            job_id=job_id,
            message_id=message_id,
            list_id=list_id,
            sent=sent,
            state=state,
            state_since=now,
            created_at=now,
        )
    )
    _state_row(db, account, sending_id, state, now, None)


def _state_row(
    db: Connection,
    account: str,
    sending_id: int,
    state: str,
    at: datetime,
    first_available: datetime | None,
) -> None:
    db.execute(
        insert(SendingState).values(
            account=account,
            sending_id=sending_id,
            state=state,
            at=at,
            first_available_at=first_available,
        )
    )


def move(
    db: Connection,
    account: str,
    sending_id: int,
    state: str,
    *,
    first_available: datetime | None = None,
) -> None:
    """The sending is now in ``state``; a row for its history."""
    now = utcnow()
    values: dict[str, Any] = {"state": state, "state_since": now}
    if first_available is not None:
        values["first_available_at"] = first_available
    if state not in OPEN:
        values["finished_at"] = now
    where = (Sending.account == account, Sending.sending_id == sending_id)
    if db.execute(update(Sending).where(*where).values(**values)).rowcount == 0:
        store.upsert(db, Sending, account=account, sending_id=sending_id, created_at=now, **values)
    _state_row(db, account, sending_id, state, now, first_available)


# --- the queue poll -----------------------------------------------------------------------


def poll(settings: Settings) -> int:
    """Follow every console account's sendings through MailUp's queues; returns how many
    changed state."""
    changed = 0
    for account, config in settings.accounts.items():
        if not config.client_id:
            continue  # no console access configured for this account
        try:
            changed += follow(settings, account)
        except MailUpError as exc:
            log.warning("account %s: sending queues not read: %s", account, exc.message)
    return changed


def follow(settings: Settings, account: str) -> int:
    mailup = Sendings(console_client(settings, account))
    read_at = utcnow()
    queued = {sending.id: sending for sending in mailup.queued()}
    with connection(settings.ledger_url) as db:
        known = {
            row.sending_id: row
            for row in db.execute(
                select(Sending.sending_id, Sending.state, Sending.first_available_at).where(
                    Sending.account == account,
                    Sending.state.in_(OPEN) | Sending.sending_id.in_(list(queued)),
                )
            )
        }
    changed = 0
    for sending in queued.values():
        row = known.get(sending.id)
        deferred_unknown = sending.queue == "Deferred" and (
            row is None or row.state != "Deferred" or row.first_available_at is None
        )
        if row is not None and row.state == sending.queue and not deferred_unknown:
            continue
        first = mailup.first_available(sending.id) if deferred_unknown else None
        with connection(settings.ledger_url) as db:
            _seen(db, account, sending, row is None)
            if row is None or row.state != sending.queue:
                move(db, account, sending.id, sending.queue, first_available=first)
                changed += 1
            elif first is not None:
                db.execute(
                    update(Sending)
                    .where(Sending.account == account, Sending.sending_id == sending.id)
                    .values(first_available_at=first)
                )
    # Left every queue: finished. Only those the ledger knew before this read began (one
    # a job made since may not have been in the queues yet when they were read).
    gone = [sid for sid, row in known.items() if row.state in OPEN and sid not in queued]
    with connection(settings.ledger_url) as db:
        for sending_id in gone:
            since = db.scalar(
                select(Sending.state_since).where(
                    Sending.account == account, Sending.sending_id == sending_id
                )
            )
            if since is not None and since < read_at:
                move(db, account, sending_id, FINISHED)
                changed += 1
    return changed


def _seen(db: Connection, account: str, sending: QueuedSending, new: bool) -> None:
    """What the queue tells of a sending, for one the ledger did not make or know."""
    if new:
        now = utcnow()
        store.upsert(
            db,
            Sending,
            account=account,
            sending_id=sending.id,
            message_id=sending.message_id,
            list_id=sending.list_id,
            subject=sending.subject,
            state=sending.queue,
            state_since=now,
            created_at=now,
        )
    else:
        db.execute(
            update(Sending)
            .where(Sending.account == account, Sending.sending_id == sending.id)
            .values(subject=sending.subject)
        )


# --- stop and delete ----------------------------------------------------------------------


class SendingRef(Payload):
    sending_id: int = Field(gt=0)


def _take_turn(context: JobContext, operation: str) -> None:
    """MailUp's one ``operation`` per account every 30 s, shared by every worker."""
    key = f"{context.claim.account}:sending-{operation}"
    wait = limiter(context.settings).try_acquire(key, TURN_SECONDS)
    if wait > 0:
        raise Waiting(
            utcnow() + timedelta(seconds=wait),
            f"MailUp takes one {operation} per account every 30 s: next turn in {wait:.0f} s",
        )


def execute_stop(context: JobContext, payload: SendingRef) -> Result:
    # Stopping twice stops once: no "calling" mark, a lost answer is simply asked again.
    _take_turn(context, "stop")
    Sendings(console_client(context.settings, context.claim.account)).stop(payload.sending_id)
    return _moved(context, payload.sending_id, STOPPED)


def execute_delete(context: JobContext, payload: SendingRef) -> Result:
    """Stop first when MailUp still plans or sends it (it would not delete it otherwise)."""
    account, sending_id = context.claim.account, payload.sending_id
    mailup = Sendings(console_client(context.settings, account))
    queued = next((s for s in mailup.queued() if s.id == sending_id), None)
    if queued is not None and queued.queue in ("Immediate", "Deferred"):
        _take_turn(context, "stop")
        mailup.stop(sending_id)
        with connection(context.settings.ledger_url) as db:
            move(db, account, sending_id, STOPPED)
    _take_turn(context, "delete")
    try:
        deleted = mailup.delete(sending_id)
    except PermanentError as exc:
        if exc.http_status != 404 or context.claim.number == 1:
            raise  # (a 404 after an earlier try: that try deleted it, its answer lost)
        deleted = True
    if not deleted:
        raise Refused(
            "not_deleted",
            f"MailUp did not delete sending {sending_id} (IsDeleted: false): it is still "
            "planned or going out; stop it, then delete it again",
        )
    return _moved(context, sending_id, DELETED)


def _moved(context: JobContext, sending_id: int, state: str) -> Result:
    account = context.claim.account
    return Result(
        outcome={"sending_id": sending_id, "state": state},
        record=lambda db: move(db, account, sending_id, state),
        http_status=200,
    )


STOP = JobKind("sending_stop", SendingRef, execute_stop)
DELETE = JobKind("sending_delete", SendingRef, execute_delete)


# --- reads --------------------------------------------------------------------------------


def _view(row: Sending) -> dict[str, Any]:
    return {
        "account": row.account,
        "sending_id": row.sending_id,
        "state": row.state,
        "state_since": row.state_since.isoformat(),
        "message_id": row.message_id,
        "list_id": row.list_id,
        "subject": row.subject,
        "sent": row.sent,
        "job_id": row.job_id,
        "first_available_at": _iso(row.first_available_at),
        "finished_at": _iso(row.finished_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def listing(
    settings: Settings, *, state: str | None = None, account: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest sendings first, optionally in one state."""
    query = select(Sending).order_by(Sending.created_at.desc(), Sending.sending_id.desc())
    if state is not None:
        query = query.where(Sending.state == state)
    if account is not None:
        query = query.where(Sending.account == account)
    with transaction(settings.ledger_url) as session:
        return [_view(row) for row in session.scalars(query.limit(limit))]


def details(settings: Settings, account: str, sending_id: int) -> dict[str, Any] | None:
    """A sending with its states over time and every recipient MailUp left out."""
    with transaction(settings.ledger_url) as session:
        row = session.get(Sending, (account, sending_id))
        if row is None:
            return None
        view = _view(row)
        states = session.scalars(
            select(SendingState)
            .where(SendingState.account == account, SendingState.sending_id == sending_id)
            .order_by(SendingState.at, SendingState.id)
        )
        view["states"] = [
            {
                "state": s.state,
                "at": s.at.isoformat(),
                "first_available_at": _iso(s.first_available_at),
            }
            for s in states
        ]
        skipped = session.scalars(
            select(SendingRecipient)
            .where(SendingRecipient.account == account, SendingRecipient.sending_id == sending_id)
            .order_by(SendingRecipient.id)
        )
        view["invalid_recipients"], view["unprocessed_recipients"] = [], []
        for recipient in skipped:
            entry = {"email": recipient.email, "reason": recipient.reason}
            view[f"{recipient.problem}_recipients"].append(entry)
        return view
