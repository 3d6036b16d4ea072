"""What failed and why: failed and in_doubt jobs by their code, with what the code means."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sqlalchemy import func, select

from worker.audits.period import Period
from worker.engine.kind import JobKind, in_period
from worker.ledger.db import transaction
from worker.ledger.models import Job, JobStatus
from worker.mailup.errors import Api, meaning
from worker.settings import Settings

# The codes mailup-jobs gives a job itself, where MailUp gave none (MailUp's own are in
# worker.mailup.errors). "http_NNN" is a MailUp answer with an HTTP status and no code.
OWN_CODES: Mapping[str, str] = {
    "network": "No answer from MailUp: the connection was refused, dropped or timed out",
    "configuration": "A setting or credential is missing or wrong, or the payload no longer "
    "validates: fix it, then retry the job",
    "internal": "An unexpected error in mailup-jobs (the worker's log has its traceback)",
    "record_failed": "MailUp answered, but the ledger could not record the outcome",
    "worker_lost": "The worker stopped during the MailUp call; its outcome is unknown",
    "database": "The ledger was unreachable before the MailUp call",
    "creation_unclear": "More than one new match (a sending, a list…) appeared after a lost "
    "answer: MailUp cannot say which is this job's",
    "creation_not_found": "The answer was lost and MailUp showed nothing the call made within "
    "the verification window: check MailUp before sending again",
    "list_has_no_sender": "The list has no sender name and address, and the send gave none",
    "sender_unconfirmed": "The trusted sender was not confirmed within "
    "MAILUP_JOBS_SENDER_CONFIRM_DAYS",
    "group_unknown": "The ledger knows no such group",
    "group_exists": "A group of that name already exists in the list",
    "list_exists": "A list of that name already exists in the account",
    "sender_unknown": "The sender is not a trusted sender of the account",
    "sender_blocked": "The trusted sender was disabled (blocked)",
    "sender_confirmed": "The address is already a confirmed trusted sender",
    "sender_not_confirmed": "The trusted senders were not confirmed in time",
    "not_deleted": "MailUp did not delete the sending: it is still planned or going out",
    "tag_unknown": "The list has no such tag",
    "tag_exists": "A tag of that name already exists in the list",
    "attachments_incomplete": "Not every attachment slot of the message could be filled",
}
_HTTP = re.compile(r"^http_(\d{3})$")
FAILING = (JobStatus.FAILED, JobStatus.IN_DOUBT)


@dataclass(frozen=True)
class Failure:
    """Failed and in_doubt jobs that share a code on one MailUp API."""

    api: str
    code: str
    meaning: str
    failed: int
    in_doubt: int
    kinds: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.failed + self.in_doubt

    def as_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "code": self.code,
            "failed": self.failed,
            "in_doubt": self.in_doubt,
            "kinds": ",".join(self.kinds),
            "meaning": self.meaning,
        }


def explain(api: Api, code: str) -> str:
    """What a job's code means: MailUp's docs on that API, or ours."""
    if code in OWN_CODES:
        return OWN_CODES[code]
    if status := _HTTP.match(code):
        number = int(status.group(1))
        try:
            phrase = f" {HTTPStatus(number).phrase}"
        except ValueError:
            phrase = ""
        return f"MailUp answered HTTP {number}{phrase}, with no application code"
    return meaning(api, code) or "Not in MailUp's docs: the jobs' last_error has its words"


def by_code(settings: Settings, kinds: Mapping[str, JobKind], period: Period) -> list[Failure]:
    """Failed and in_doubt jobs accepted in ``period``, by API and code, most first."""
    with transaction(settings.ledger_url) as session:
        rows = session.execute(
            select(Job.kind, Job.status, Job.last_error_code, func.count())
            .where(Job.status.in_(FAILING), in_period(Job.created_at, period.since, period.until))
            .group_by(Job.kind, Job.status, Job.last_error_code)
        ).all()
    counts: dict[str, Counter[tuple[Api, str]]] = {status: Counter() for status in FAILING}
    kinds_of: dict[tuple[Api, str], set[str]] = {}
    for kind, status, code, count in rows:
        key = (kinds[kind].api if kind in kinds else Api.CONSOLE, code or "unknown")
        counts[status][key] += count
        kinds_of.setdefault(key, set()).add(kind)
    found = [
        Failure(
            api=api,
            code=code,
            meaning=explain(api, code),
            failed=counts[JobStatus.FAILED][(api, code)],
            in_doubt=counts[JobStatus.IN_DOUBT][(api, code)],
            kinds=tuple(sorted(names)),
        )
        for (api, code), names in kinds_of.items()
    ]
    return sorted(found, key=lambda f: (-f.total, f.api, f.code))
