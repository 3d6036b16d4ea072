"""The sweeper (run by beat): recovers jobs whose worker died and re-publishes jobs whose
message the broker lost. The ledger is the truth; the broker is only transport.

A worker is dead when its lease ran out, or when it stopped beating (``heartbeat``) for
``GONE_AFTER`` seconds: beat looks for those every ``RECOVER_EVERY`` seconds
(``recover_lost``), and hands their jobs that had not called MailUp to others at once.

Two ways a message is lost, two ways to notice:

- the broker lost *everything* (Redis flushed, or restarted without persistence): the
  broker's epoch mark is gone (``broker_lost``), noticed at the next sweep; every
  claimable job is published again at once;
- a single message went missing: its job is published again once it has waited
  ``MAILUP_JOBS_REPUBLISH_AFTER``, doubled for each earlier re-publication, so a long
  backlog that merely waits its turn is not flooded with copies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from worker.engine import creation, heartbeat
from worker.engine.kind import Publish
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import JobStatus
from worker.settings import Settings

log = logging.getLogger(__name__)

# Re-publishing a long backlog goes on in batches until done, or this long per sweep.
PUBLISH_BUDGET_SECONDS = 10.0
BATCH = 500
# How often beat looks for dead workers: with heartbeat.GONE_AFTER, a dead worker's jobs
# run elsewhere within about 10 s.
RECOVER_EVERY = 3.0
# A dead worker's heartbeat row is forgotten this long after its last beat.
FORGET_WORKERS_AFTER = 86400.0


@dataclass
class SweepReport:
    requeued: int = 0
    in_doubt: int = 0
    republished: int = 0
    broker_lost: bool = False

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def sweep(
    settings: Settings,
    publish: Publish,
    *,
    declare_queue: Callable[[], None] = lambda: None,
    broker_lost: Callable[[], bool] = lambda: False,
    requeue_if_called: Callable[[str, str], bool] = lambda kind, account: False,
) -> SweepReport:
    """``requeue_if_called(kind, account)``: whether a job that died mid-call is sent again
    (its kind's delivery policy is at least once) rather than put in doubt."""
    report = SweepReport()
    _recover(settings, report, requeue_if_called)
    url = settings.ledger_url
    with connection(url) as db:
        store.forget_silent_workers(db, older_than=FORGET_WORKERS_AFTER)
    if broker_lost():
        with connection(url) as db:
            forgotten = store.forget_publications(db)
        report.broker_lost = True
        log.warning("the broker lost its messages; publishing %d waiting job(s) again", forgotten)
    _republish(settings, publish, declare_queue, report)
    return report


def recover_lost(
    settings: Settings,
    publish: Publish,
    *,
    declare_queue: Callable[[], None] = lambda: None,
    requeue_if_called: Callable[[str, str], bool] = lambda kind, account: False,
) -> SweepReport:
    """The sweep's first part alone, often: the jobs of dead workers, those re-queued
    published at once."""
    report = SweepReport()
    _recover(settings, report, requeue_if_called)
    if report.requeued:
        _republish(settings, publish, declare_queue, report)
    return report


def _republish(
    settings: Settings, publish: Publish, declare_queue: Callable[[], None], report: SweepReport
) -> None:
    url = settings.ledger_url
    deadline = time.monotonic() + PUBLISH_BUDGET_SECONDS
    declared = False
    while time.monotonic() < deadline:
        with connection(url) as db:
            lost = store.due_for_publishing(
                db, republish_after=settings.republish_after, limit=BATCH
            )
        if not lost:
            break
        if not declared:
            declare_queue()
            declared = True
        published = [job_id for job_id, priority in lost if publish(job_id, priority, None)]
        if published:
            with connection(url) as db:
                store.mark_published(db, published)
        report.republished += len(published)
        if len(published) < len(lost):
            break  # the broker refuses: try again next sweep
    if report.republished:
        log.info("re-published %d job(s) the broker did not deliver", report.republished)


def _recover(
    settings: Settings, report: SweepReport, requeue_if_called: Callable[[str, str], bool]
) -> None:
    with connection(settings.ledger_url) as db:
        expired = store.expired_leases(db, gone_after=heartbeat.GONE_AFTER)
    for lease in expired:
        # A creating call can be looked for at MailUp: the rerun does so before anything else.
        again = requeue_if_called(lease.kind, lease.account) or creation.outstanding(
            settings, lease.job_id
        )
        with connection(settings.ledger_url) as db:
            status = store.recover(
                db,
                lease.job_id,
                lease.number,
                gone_after=heartbeat.GONE_AFTER,
                requeue_if_called=again,
            )
        if status == JobStatus.IN_DOUBT:
            report.in_doubt += 1
            log.warning("job %s: worker lost during the MailUp call; now in_doubt", lease.job_id)
        elif status == JobStatus.QUEUED:
            report.requeued += 1
            log.info("job %s: worker lost; re-queued", lease.job_id)
