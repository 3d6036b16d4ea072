"""Reading the ledger, its audits, and the few things an operator may do to a job.

from producers.audit import get_job, list_jobs, sms_costs, sent_to
get_job(job_id)["outcome"]["delivery_id"]
[row.as_dict() for row in sms_costs("day", since="2026-01-01")]

The audits return small frozen dataclasses (``worker.audits``); each has ``as_dict()``, the
flat JSON-ready row that ``mailup-jobs ledger … --format json`` prints.
"""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from worker.jobs import audit
from worker.jobs.registry import KINDS
from worker.settings import get_settings

# The audits, pauses, retention and the broker are imported by the functions that use
# them, so that reading a job (``mailup-jobs jobs show``) loads none of them.
if TYPE_CHECKING:
    from worker.audits.failures import Failure
    from worker.audits.in_doubt import InDoubtJob, Resolution
    from worker.audits.period import Moment
    from worker.audits.volume import CostsBy, Credits, DayKind, DaySends
    from worker.engine.kind import Addressed
    from worker.engine.pauses import Pause
    from worker.retention import PurgeReport


def publish(job_id: str, priority: int = 5, countdown: float | None = None) -> bool:
    """``worker.publish.publish``, imported on the first call: it loads Celery."""
    from worker.publish import publish as to_broker

    return to_broker(job_id, priority, countdown)


def get_job(job_id: str) -> dict[str, Any] | None:
    """The job with its attempts and outcome, or None if there is no such job."""
    return audit.get_job(get_settings(), job_id)


def list_jobs(
    *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one status and kind."""
    return audit.list_jobs(get_settings(), status=status, kind=kind, limit=limit)


def status_counts() -> dict[str, int]:
    return audit.status_counts(get_settings())


def requeue(job_id: str) -> bool:
    """Run a failed or in_doubt job again — the operator has checked it was not sent. (Not
    one whose payload was purged.)"""
    return audit.requeue(get_settings(), job_id, publish)


def cancel(job_id: str) -> bool:
    """Stop a job that has not run yet (queued or waiting for a retry)."""
    return audit.cancel(get_settings(), job_id)


# --- the audits -------------------------------------------------------------------------
# Bounds are ISO text ("2026-01-31", "2026-01-31T08:00Z"), dates or datetimes, in UTC: a
# date as ``until`` is included whole. Bad input raises ValueError naming the argument.


def sms_costs(
    by: CostsBy = "campaign",
    *,
    since: Moment = None,
    until: Moment = None,
    account: str | None = None,
) -> list[Credits]:
    """SMS sent and the credits MailUp charged, per account and campaign code, day or list."""
    from worker.audits import volume
    from worker.audits.period import Period

    return volume.sms_costs(get_settings(), by, Period.of(since, until), account=account)


def sends_by_day(
    *,
    since: Moment = None,
    until: Moment = None,
    kind: str | None = None,
    status: str | None = None,
) -> list[DaySends]:
    """Jobs per day they were accepted (UTC) and per status."""
    from worker.audits import volume
    from worker.audits.period import Period

    period = Period.of(since, until)
    return volume.sends_by_day(get_settings(), period, kind=kind, status=status)


def kinds_by_day(*, since: Moment = None, until: Moment = None) -> list[DayKind]:
    """Jobs per day they were accepted (UTC) and per kind."""
    from worker.audits import volume
    from worker.audits.period import Period

    return volume.kinds_by_day(get_settings(), Period.of(since, until))


def failures_by_code(*, since: Moment = None, until: Moment = None) -> list[Failure]:
    """Failed and in_doubt jobs by MailUp API and code, with what each code means."""
    from worker.audits import failures
    from worker.audits.period import Period

    return failures.by_code(get_settings(), KINDS, Period.of(since, until))


def sent_to(recipient: str, *, since: Moment = None, until: Moment = None) -> list[Addressed]:
    """Everything addressed to a phone number or email address (also after a purge)."""
    from worker.audits import recipients
    from worker.audits.period import Period

    return recipients.sent_to(get_settings(), KINDS, recipient, Period.of(since, until))


def in_doubt_jobs() -> list[InDoubtJob]:
    """The jobs waiting for a person to say whether they were sent."""
    from worker.audits import in_doubt

    return in_doubt.in_doubt(get_settings())


def paused_channels() -> list[Pause]:
    """Every paused channel of every account (``mailup-jobs accounts status``)."""
    from worker.engine import pauses

    return pauses.listing(get_settings())


def resolve(
    job_id: str, *, sent: bool, by: str | None = None, delivery_id: int | None = None
) -> Resolution:
    """An operator's word on an in_doubt job, kept with ``by`` (default: the OS user): sent
    (it succeeded, with MailUp's ``delivery_id`` if known), or not sent (queued again).

    Raises:
        worker.audits.in_doubt.NotInDoubt: the job is not in_doubt.
    """
    from worker.audits import in_doubt

    return in_doubt.resolve(
        get_settings(),
        job_id,
        sent=sent,
        by=by if by is not None else getpass.getuser(),
        publish=publish,
        delivery_id=delivery_id,
    )


def purge(older_than: str | timedelta) -> PurgeReport:
    """Remove the personal data of jobs finished longer than ``older_than`` ago ("90d",
    "12h" or a timedelta), keeping their audit."""
    from worker import retention

    age = retention.age(older_than) if isinstance(older_than, str) else older_than
    return retention.purge(get_settings(), KINDS, age)
