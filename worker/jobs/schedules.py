"""Campaign sends scheduled in the ledger, and beat's dispatch of those that fall due.

A schedule holds a ``campaign_send`` payload and the time to queue it. Keeping it here
rather than passing a date to MailUp lets the message and the audience change until then;
keeping it out of Celery (no ETA) means no broker holds it for days, nor loses it.

Each due schedule becomes exactly one job, even with two beats running: the dispatch is a
conditional update (``scheduled`` → ``dispatched``) in the transaction that adds the job,
and the job's idempotency key is the schedule's id. A schedule beat could not dispatch
within MAILUP_JOBS_SCHEDULE_MAX_LATE of its time (beat down, the ledger unreachable) is
``missed``: a campaign hours late may say the wrong thing ("sale ends tonight"), so it is
never sent late; an operator schedules it again if it still makes sense.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from worker.ledger import store
from worker.ledger.db import transaction
from worker.ledger.models import CampaignSchedule, utcnow
from worker.publish import publish
from worker.settings import Settings

log = logging.getLogger(__name__)

SCHEDULED, DISPATCHED, CANCELLED, MISSED = "scheduled", "dispatched", "cancelled", "missed"
KIND = "campaign_send"


def create(
    settings: Settings, *, account: str, payload: dict[str, Any], due_at: datetime, priority: int
) -> str:
    with transaction(settings.ledger_url) as session:
        schedule = CampaignSchedule(
            account=account, payload=payload, due_at=due_at, priority=priority, state=SCHEDULED
        )
        session.add(schedule)
        session.flush()
        return schedule.id


def cancel(settings: Settings, schedule_id: str) -> str:
    """Cancel a schedule not yet dispatched; returns the state it is in afterwards."""
    with transaction(settings.ledger_url) as session:
        cancelled = session.execute(
            update(CampaignSchedule)
            .where(CampaignSchedule.id == schedule_id, CampaignSchedule.state == SCHEDULED)
            .values(state=CANCELLED, cancelled_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if cancelled:
            return CANCELLED
        state = session.scalar(
            select(CampaignSchedule.state).where(CampaignSchedule.id == schedule_id)
        )
    if state is None:
        raise LookupError(f"no campaign schedule {schedule_id}")
    return state


def dispatch_due(settings: Settings) -> int:
    """Queue every due schedule's send, once, unless it is too late; returns how many were
    queued here."""
    _miss_late(settings)
    with transaction(settings.ledger_url) as session:
        due = list(
            session.scalars(
                select(CampaignSchedule.id).where(
                    CampaignSchedule.state == SCHEDULED, CampaignSchedule.due_at <= utcnow()
                )
            )
        )
    queued = 0
    for schedule_id in due:
        job = _dispatch(settings, schedule_id)
        if job is None:
            continue
        queued += 1
        job_id, priority = job
        if not publish(job_id, priority, None):
            with transaction(settings.ledger_url) as session:
                store.mark_unpublished(session, [job_id])  # the sweeper publishes it later
    return queued


def _miss_late(settings: Settings) -> None:
    """Schedules past their time by more than MAILUP_JOBS_SCHEDULE_MAX_LATE become missed."""
    now = utcnow()
    with transaction(settings.ledger_url) as session:
        missed = session.execute(
            update(CampaignSchedule)
            .where(CampaignSchedule.state == SCHEDULED, CampaignSchedule.due_at < _late(settings))
            .values(state=MISSED, missed_at=now)
            .returning(CampaignSchedule.id, CampaignSchedule.due_at)
        ).all()
    for schedule_id, due_at in missed:
        log.warning(
            "campaign schedule %s missed: due %s, not dispatched within "
            "MAILUP_JOBS_SCHEDULE_MAX_LATE (%g s); it will not be sent",
            schedule_id,
            due_at.isoformat(),
            settings.schedule_max_late,
        )


def _late(settings: Settings) -> datetime:
    """A schedule due before this is too late to send."""
    return utcnow() - timedelta(seconds=settings.schedule_max_late)


def _dispatch(settings: Settings, schedule_id: str) -> tuple[str, int] | None:
    """The job made for the schedule, or None if another beat (or a cancel) came first, or
    its time is now too far past (the next dispatch marks it missed)."""
    with transaction(settings.ledger_url) as session:
        won = session.execute(
            update(CampaignSchedule)
            .where(
                CampaignSchedule.id == schedule_id,
                CampaignSchedule.state == SCHEDULED,
                CampaignSchedule.due_at >= _late(settings),
            )
            .values(state=DISPATCHED, dispatched_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if not won:
            return None
        schedule = session.get_one(CampaignSchedule, schedule_id)
        job = store.NewJob(
            KIND,
            schedule.account,
            schedule.payload,
            schedule.priority,
            idempotency_key=f"campaign-schedule:{schedule_id}",
        )
        [(job_id, _)] = store.insert_jobs(session, [job])
        schedule.job_id = job_id
        log.info("campaign schedule %s dispatched as job %s", schedule_id, job_id)
        return job_id, schedule.priority


def listing(
    settings: Settings, *, due: bool = False, state: str | None = None
) -> list[dict[str, Any]]:
    """Schedules by due date; ``due``: only those due and not yet dispatched."""
    query = select(CampaignSchedule).order_by(CampaignSchedule.due_at)
    if due:
        query = query.where(
            CampaignSchedule.state == SCHEDULED, CampaignSchedule.due_at <= utcnow()
        )
    elif state is not None:
        query = query.where(CampaignSchedule.state == state)
    with transaction(settings.ledger_url) as session:
        return [_view(row) for row in session.scalars(query)]


def _view(row: CampaignSchedule) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "account": row.account,
        "state": row.state,
        "due_at": iso(row.due_at),
        "job_id": row.job_id,
        "payload": row.payload,
        "priority": row.priority,
        "created_at": iso(row.created_at),
        "dispatched_at": iso(row.dispatched_at),
        "cancelled_at": iso(row.cancelled_at),
        "missed_at": iso(row.missed_at),
    }
