"""The sweeper (run by beat): recovers jobs whose worker died and re-publishes jobs whose
message the broker lost. The ledger is the truth; the broker is only transport."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from worker.jobs.base import Publish
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import JobStatus
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued: int = 0
    in_doubt: int = 0
    republished: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep(
    settings: Settings, publish: Publish, declare_queue: Callable[[], None] = lambda: None
) -> SweepReport:
    report = SweepReport()
    url = settings.ledger_url
    with connection(url) as db:
        expired = store.expired_leases(db)
    for job_id, number in expired:
        with connection(url) as db:
            status = store.recover(db, job_id, number)
        if status == JobStatus.IN_DOUBT:
            report.in_doubt += 1
            log.warning("job %s: worker lost during the MailUp call; now in_doubt", job_id)
        elif status == JobStatus.QUEUED:
            report.requeued += 1
            log.info("job %s: worker lost before calling MailUp; re-queued", job_id)

    with connection(url) as db:
        lost = store.due_for_publishing(db, republish_after=settings.republish_after)
    if lost:
        declare_queue()
    published = [job_id for job_id, priority in lost if publish(job_id, priority, None)]
    if published:
        with connection(url) as db:
            store.mark_published(db, published)
        report.republished = len(published)
        log.info("re-published %d job(s) the broker did not deliver", len(published))
    return report
