"""Campaign sendings in the ledger: their life through MailUp's queues, and job kinds
``sending_stop`` and ``sending_delete``.

Beat's ``sendings`` poll reads the three queues (Immediate, Deferred, Undefined) of every
account with Console access and writes each change of state with its time; a deferred
sending also gets the first date MailUp can send it, a going one the date it started. A
sending the ledger saw queued that is in no queue any more is ``stopped`` if a stop job of
ours was stopping it, ``finished`` if its message's SendHistory has it, ``gone`` otherwise
(stopped or deleted elsewhere). The history gives no Id: an item is the sending that
started on the date the queues showed.

A stop records what the queues show after it: a deferred or going sending is ``stopped``
(or still going while MailUp stops it), an undefined (standby) one stays as it is (doc 003).

MailUp takes one stop and one delete per account every 30 s (LIMITS.md). Every worker
shares that turn through the rate limiter: a job whose turn has not come waits — back in
the queue, no attempt spent — rather than fail or hold a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.orm import Session

from worker.engine.clients import console_client, limiter
from worker.engine.kind import JobContext, JobKind, Payload, Refused, Result, Waiting
from worker.jobs.fields import MailUpId
from worker.ledger import store
from worker.ledger.db import connection, transaction
from worker.ledger.models import (
    Creation,
    Job,
    JobStatus,
    Sending,
    SendingRecipient,
    SendingState,
    utcnow,
)
from worker.mailup.errors import MailUpError
from worker.mailup.sendings import QUEUES, QueuedSending, Sendings
from worker.settings import Settings

log = logging.getLogger(__name__)

OPEN = QUEUES  # a sending in one of these states is still MailUp's to send
FINISHED, STOPPED, DELETED, GONE = "finished", "stopped", "deleted", "gone"
# MailUp's dates are whole seconds, and its clock may be a second behind ours.
CLOCK_MARGIN = timedelta(seconds=2)
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


# What the poll reads of a sending it follows: id, state, first date, list, message, and
# the earliest it can have started (when its job was made, or the ledger first saw it).
Known = Row[int, str, datetime | None, int | None, int | None, datetime]


def follow(settings: Settings, account: str) -> int:
    mailup = Sendings(console_client(settings, account))
    read_at = utcnow()
    queued = {sending.id: sending for sending in mailup.queued()}
    with connection(settings.ledger_url) as db:
        known = {
            row.sending_id: row
            for row in db.execute(
                select(
                    Sending.sending_id,
                    Sending.state,
                    Sending.first_available_at,
                    Sending.list_id,
                    Sending.message_id,
                    func.coalesce(Job.created_at, Sending.created_at).label("since"),
                )
                .outerjoin(Job, Job.id == Sending.job_id)
                .where(
                    Sending.account == account,
                    Sending.state.in_(OPEN) | Sending.sending_id.in_(list(queued)),
                )
            )
        }
    changed = 0
    for sending in queued.values():
        row = known.get(sending.id)
        undated = _undated(sending, row)
        if row is not None and row.state == sending.queue and not undated:
            continue
        first = _first_date(mailup, sending) if undated else None
        with connection(settings.ledger_url) as db:
            changed += _record_queued(db, account, sending, first)
    # Left every queue. Only those the ledger knew before this read began (one a job made
    # since may not have been in the queues yet when they were read).
    left = [row for sid, row in known.items() if row.state in OPEN and sid not in queued]
    if left:
        changed += _record_left(settings, account, mailup, left, read_at)
    return changed


def _undated(sending: QueuedSending, row: Known | None) -> bool:
    """Whether the ledger lacks the date a planned or going sending starts on."""
    return sending.queue != "Undefined" and (
        row is None or row.state != sending.queue or row.first_available_at is None
    )


def _first_date(mailup: Sendings, sending: QueuedSending) -> datetime | None:
    """A deferred sending's first possible date (MailUp's), a going one's start (the queue's
    StartDate: its SendHistory item will have it)."""
    return mailup.first_available(sending.id) if sending.queue == "Deferred" else sending.start


def _record_queued(
    db: Connection, account: str, sending: QueuedSending, first: datetime | None
) -> bool:
    """The sending is in the queue it was read in; whether that changed its state."""
    where = (Sending.account == account, Sending.sending_id == sending.id)
    state = db.scalar(select(Sending.state).where(*where))
    _seen(db, account, sending, state is None)
    if state != sending.queue:
        move(db, account, sending.id, sending.queue, first_available=first)
        return True
    if first is not None:
        db.execute(update(Sending).where(*where).values(first_available_at=first))
    return False


def _record_left(
    settings: Settings, account: str, mailup: Sendings, left: Sequence[Known], read_at: datetime
) -> int:
    """The sendings in no queue any more: stopped, finished or gone (see the module)."""
    with connection(settings.ledger_url) as db:
        stopping = _being_stopped(db, account, [row.sending_id for row in left])

    @cache
    def starts(list_id: int, message_id: int) -> frozenset[datetime]:
        history = mailup.history(list_id, message_id)
        return frozenset(past.start for past in history if past.start is not None)

    changed = 0
    for row in left:
        if row.sending_id in stopping:
            state = STOPPED
        else:
            state = FINISHED if _in_history(row, starts) else GONE
        with connection(settings.ledger_url) as db:
            since = db.scalar(
                select(Sending.state_since).where(
                    Sending.account == account, Sending.sending_id == row.sending_id
                )
            )
            if since is not None and since < read_at:  # not moved since the queues were read
                move(db, account, row.sending_id, state)
                changed += 1
    return changed


def _in_history(row: Known, starts: Callable[[int, int], frozenset[datetime]]) -> bool:
    """Whether its message's SendHistory has the sending. The history gives no Id: the item
    that started on the date the queues showed is it. One never seen planned or going (made
    and done between two reads, or standby until then) is any item that started since."""
    if row.list_id is None or row.message_id is None:
        return False
    past = starts(row.list_id, row.message_id)
    if row.first_available_at is not None:
        return row.first_available_at in past
    return any(start >= row.since - CLOCK_MARGIN for start in past)


def _being_stopped(db: Connection, account: str, sending_ids: list[int]) -> set[int]:
    """Those of ``sending_ids`` a stop job left planned or going: MailUp was stopping them."""
    sending_id = Job.outcome["sending_id"].as_integer()
    return set(
        db.scalars(
            select(sending_id).where(
                Job.kind == STOP.name,
                Job.account == account,
                Job.status == JobStatus.SUCCEEDED,
                sending_id.in_(sending_ids),
                Job.outcome["state"].as_string().in_(("Immediate", "Deferred")),
            )
        )
    )


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
    sending_id: MailUpId


def _take_turn(context: JobContext, operation: str) -> None:
    """MailUp's one ``operation`` per account every 30 s, shared by every worker."""
    key = f"{context.claim.account}:sending-{operation}"
    wait = limiter(context.settings).try_acquire(key, TURN_SECONDS)
    if wait > 0:
        raise Waiting(
            utcnow() + timedelta(seconds=wait),
            f"MailUp takes one {operation} per account every 30 s: next turn in {wait:.0f} s",
        )


Record = Callable[[Connection], object]


def execute_stop(context: JobContext, payload: SendingRef) -> Result:
    # Stopping twice stops once: no "calling" mark, a lost answer is simply asked again.
    mailup = Sendings(console_client(context.settings, context.claim.account))
    return _moved(payload.sending_id, *_stop(context, mailup, payload.sending_id))


def execute_delete(context: JobContext, payload: SendingRef) -> Result:
    """Stop first when MailUp still plans or sends it (it would not delete it otherwise)."""
    account, sending_id = context.claim.account, payload.sending_id
    mailup = Sendings(console_client(context.settings, account))
    queued = _queued(mailup, sending_id)
    if queued is not None and queued.queue in ("Immediate", "Deferred"):
        _, record = _stop(context, mailup, sending_id)
        with connection(context.settings.ledger_url) as db:
            record(db)
    _take_turn(context, "delete")
    if context.deleting(lambda: mailup.delete(sending_id)) is False:
        raise Refused(
            "not_deleted",
            f"MailUp did not delete sending {sending_id} (IsDeleted: false): it is still "
            "planned or going out; stop it, then delete it again",
        )
    return _moved(sending_id, DELETED, lambda db: move(db, account, sending_id, DELETED))


def _stop(context: JobContext, mailup: Sendings, sending_id: int) -> tuple[str, Record]:
    """Stop the sending in its turn; then the state MailUp's queues show it in, and how to
    record it: in no queue, it is stopped; an undefined one stays as it is (doc 003)."""
    _take_turn(context, "stop")
    mailup.stop(sending_id)
    account, queued = context.claim.account, _queued(mailup, sending_id)
    if queued is None:
        return STOPPED, lambda db: move(db, account, sending_id, STOPPED)
    return queued.queue, lambda db: _record_queued(db, account, queued, None)


def _queued(mailup: Sendings, sending_id: int) -> QueuedSending | None:
    return next((s for s in mailup.queued() if s.id == sending_id), None)


def _moved(sending_id: int, state: str, record: Record) -> Result:
    return Result(outcome={"sending_id": sending_id, "state": state}, record=record)


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
        rows = [_view(row) for row in session.scalars(query.limit(limit))]
        if state in (None, FINISHED):
            rows += _without_id(session, account, limit)
    rows.sort(key=lambda row: row["state_since"], reverse=True)
    return rows[:limit]


def _without_id(session: Session, account: str | None, limit: int) -> list[dict[str, Any]]:
    """Sendings jobs made that MailUp showed only in the SendHistory, which has no Id:
    finished, known by their start (``history:<start>``)."""
    query = (
        select(Job, Creation.made)
        .join(Creation, Creation.job_id == Job.id)
        .where(Creation.made.like("history:%"), Job.status == JobStatus.SUCCEEDED)
        .order_by(Job.finished_at.desc())
        .limit(limit)
    )
    if account is not None:
        query = query.where(Job.account == account)
    return [
        {
            "account": job.account,
            "sending_id": None,
            "state": FINISHED,
            "state_since": (job.finished_at or job.updated_at).isoformat(),
            "message_id": (job.outcome or {}).get("message_id"),
            "list_id": (job.outcome or {}).get("list_id"),
            "subject": None,
            "sent": None,
            "job_id": job.id,
            "first_available_at": None,
            "finished_at": None,
            "note": f"no Id: MailUp's SendHistory shows it, started {str(made).split(':', 1)[1]}",
        }
        for job, made in session.execute(query)
    ]


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
