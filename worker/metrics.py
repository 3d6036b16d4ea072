"""Prometheus metrics of the whole system, read from the ledger when scraped: the workers of
every host write there, so one metrics process sees them all.

Gauges are the ledger as it is at scrape time: jobs by kind and status, in_doubt jobs, paused
channels, queue lag, missed campaign schedules; so is the count of publish failures that
producers keep there. Attempts by outcome and MailUp call latency
are a counter and a histogram of the attempts that finished since this process started (see
``AttemptTally``). The queries stay cheap on a large ledger: the primary key of attempts,
``jobs (status, run_after)`` and ``channel_pauses``; only the counts by kind and status read
every job (an index holding both columns makes it an index-only scan), and the campaign
schedules (a few rows a campaign).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Connection, Engine, create_engine, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from worker.ledger import store
from worker.ledger.models import (
    CLAIMABLE,
    Attempt,
    AttemptOutcome,
    CampaignSchedule,
    ChannelPause,
    Job,
    JobStatus,
    utcnow,
)

log = logging.getLogger(__name__)

# Seconds: a MailUp call takes tens of milliseconds, up to the read timeout (30 s by default).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OUTCOMES = [outcome.value for outcome in AttemptOutcome if outcome != AttemptOutcome.CALLING]
# Attempts read in one scrape at most: a larger burst is caught up over the next scrapes.
BATCH = 20_000
# How long an attempt id not visible yet (its transaction still open, or rolled back) is
# looked for; a wider gap between two ids than MAX_GAP is a jump of the sequence, not rows
# in flight.
GRACE = 120.0
MAX_GAP = 1_000

_ATTEMPTS = select(
    Attempt.id,
    Attempt.outcome,
    Attempt.started_at,
    Attempt.finished_at,
    Attempt.duration_ms,
    Job.kind,
).join(Job, Job.id == Attempt.job_id)


@dataclass
class Histogram:
    """Cumulative bucket counts, as Prometheus exposes them."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
        self.count += 1
        self.total += seconds

    def exposed(self) -> list[tuple[str, float]]:
        return [*zip(map(str, BUCKETS), self.buckets, strict=True), ("+Inf", self.count)]


class AttemptTally:
    """Every attempt that finished after this process started, counted once: by kind and
    outcome, and its latency (``finished_at - started_at``: the row is written as the call
    leaves, and closed when MailUp has answered).

    Attempt ids grow with each row, so each scrape reads the rows past the highest id seen:
    the primary key makes that cheap whatever the ledger's size. A row seen still open
    ("calling") and an id skipped over (on PostgreSQL a lower id may commit after a higher
    one) are looked up again by id on the next scrapes: open rows until they finish,
    missing ids for ``GRACE`` seconds. The first update only takes the highest id.
    """

    def __init__(self) -> None:
        self.mark: int | None = None
        self.waiting: dict[int, float] = {}  # id -> when it was first waited for
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.latency: dict[str, Histogram] = {}

    def update(self, db: Connection, now: float) -> None:
        """Count what finished since the last update (the ledger is read before anything
        changes here, so a failed read counts nothing twice)."""
        if self.mark is None:
            self.mark = db.scalar(select(func.max(Attempt.id))) or 0
            return
        new = db.execute(_ATTEMPTS.where(Attempt.id > self.mark).order_by(Attempt.id).limit(BATCH))
        rows = list(new)
        waited = sorted(self.waiting)
        for start in range(0, len(waited), 500):
            chunk = waited[start : start + 500]
            rows += db.execute(_ATTEMPTS.where(Attempt.id.in_(chunk))).all()
        seen = {row.id for row in rows}
        for row in rows:
            if row.finished_at is None:
                self.waiting.setdefault(row.id, now)
                continue
            self.waiting.pop(row.id, None)
            self.outcomes[(row.kind, row.outcome)] += 1
            if row.duration_ms is not None:  # None: abandoned by the sweeper, never answered
                seconds = (row.finished_at - row.started_at).total_seconds()
                self.latency.setdefault(row.kind, Histogram()).observe(max(seconds, 0.0))
        self._wait_for_gaps(sorted(i for i in seen if i > self.mark), now)
        for missing in [i for i in self.waiting if i not in seen]:
            if now - self.waiting[missing] > GRACE:
                del self.waiting[missing]

    def _wait_for_gaps(self, new_ids: list[int], now: float) -> None:
        assert self.mark is not None
        previous = self.mark
        for attempt_id in new_ids:
            if attempt_id - previous <= MAX_GAP:
                for missing in range(previous + 1, attempt_id):
                    self.waiting.setdefault(missing, now)
            previous = attempt_id
        self.mark = previous

    def families(self, kinds: Iterable[str]) -> list[Metric]:
        kinds = sorted({*kinds, *(kind for kind, _ in self.outcomes)})
        attempts = CounterMetricFamily(
            "mailup_jobs_attempts",
            "Attempts (MailUp calls) finished since this process started, by outcome.",
            labels=["kind", "outcome"],
        )
        latency = HistogramMetricFamily(
            "mailup_jobs_mailup_call_duration_seconds",
            "How long MailUp took to answer, per attempt finished since this process started.",
            labels=["kind"],
        )
        for kind in kinds:
            for outcome in OUTCOMES:
                attempts.add_metric([kind, outcome], self.outcomes[(kind, outcome)])
            histogram = self.latency.get(kind, Histogram())
            latency.add_metric([kind], histogram.exposed(), sum_value=histogram.total)
        return [attempts, latency]


def _jobs(db: Connection, kinds: Iterable[str]) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    counts = {
        (row.kind, row.status): row.n
        for row in db.execute(
            select(Job.kind, Job.status, func.count().label("n")).group_by(Job.kind, Job.status)
        )
    }
    jobs = GaugeMetricFamily(
        "mailup_jobs_jobs", "Jobs in the ledger by kind and status.", labels=["kind", "status"]
    )
    for kind in sorted({*kinds, *(kind for kind, _ in counts)}):
        for status in JobStatus:
            jobs.add_metric([kind, status.value], counts.get((kind, status), 0))
    in_doubt = sum(n for (_, status), n in counts.items() if status == JobStatus.IN_DOUBT)
    return jobs, GaugeMetricFamily(
        "mailup_jobs_in_doubt_jobs",
        "Jobs whose MailUp call may have been acted on: a person checks and resolves them.",
        value=in_doubt,
    )


def _queue_lag(db: Connection, now: datetime) -> GaugeMetricFamily:
    """The age of the oldest due job (queued or retrying, run_after passed), 0 when none:
    one index lookup per status."""
    oldest = [
        db.scalar(
            select(Job.run_after)
            .where(Job.status == status, Job.run_after <= now)
            .order_by(Job.run_after)
            .limit(1)
        )
        for status in CLAIMABLE
    ]
    due = [when for when in oldest if when is not None]
    lag = (now - min(due)).total_seconds() if due else 0.0
    return GaugeMetricFamily(
        "mailup_jobs_queue_lag_seconds",
        "How long the oldest due job (queued or retrying) has waited for a worker.",
        value=lag,
    )


def _paused(db: Connection, now: datetime) -> GaugeMetricFamily:
    paused = GaugeMetricFamily(
        "mailup_jobs_paused_channels",
        "1 for each account channel (or narrower scope) paused: nothing of it is sent.",
        labels=["account", "channel", "condition"],
    )
    pauses = select(ChannelPause.account, ChannelPause.channel, ChannelPause.condition)
    for row in db.execute(pauses.where(_not_over(now))):
        paused.add_metric([row.account, row.channel, row.condition or ""], 1)
    return paused


def _missed(db: Connection) -> GaugeMetricFamily:
    # Never cleared: the count only grows, so increase() over it alerts on each new miss.
    missed = select(func.count()).where(CampaignSchedule.missed_at.is_not(None))
    return GaugeMetricFamily(
        "mailup_jobs_missed_schedules",
        "Campaign schedules never sent: not dispatched within MAILUP_JOBS_SCHEDULE_MAX_LATE.",
        value=db.scalar(missed) or 0,
    )


def _publish_failures(db: Connection) -> CounterMetricFamily:
    return CounterMetricFamily(
        "mailup_jobs_publish_failures",
        "Jobs committed that the broker did not take when their producer published them "
        "(the sweeper publishes them).",
        value=store.counter(db, store.PUBLISH_FAILURES),
    )


def _not_over(now: datetime) -> ColumnElement[bool]:
    return or_(ChannelPause.until.is_(None), ChannelPause.until > now)


def reader(url: str) -> Engine:
    """An engine that only reads. On SQLite its transactions are the driver's deferred
    ones: a scrape never takes the write lock that the workers' engine takes up front."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 5})
    return create_engine(
        url, pool_size=1, max_overflow=2, pool_pre_ping=True, connect_args={"connect_timeout": 5}
    )


class LedgerCollector(Collector):
    """What the ledger says at each scrape. When it cannot be read, the scrape still
    answers the attempt counts and latency held here, and ``mailup_jobs_ledger_up`` 0."""

    def __init__(self, ledger_url: str, kinds: Iterable[str]) -> None:
        self._engine = reader(ledger_url)
        self._kinds = sorted(kinds)
        self._tally = AttemptTally()
        self._lock = threading.Lock()  # scrapes may come in parallel
        self._up = True
        with suppress(SQLAlchemyError), self._engine.connect() as db:
            self._tally.update(db, time.monotonic())  # counting starts now

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            ledger: list[Metric] = []
            try:
                with self._engine.connect() as db:
                    now = utcnow()
                    ledger += [
                        *_jobs(db, self._kinds),
                        _queue_lag(db, now),
                        _paused(db, now),
                        _missed(db),
                        _publish_failures(db),
                    ]
                    self._tally.update(db, time.monotonic())
            except SQLAlchemyError as exc:
                ledger = []
                self._went(up=False, why=_brief(exc))
            else:
                self._went(up=True)
            up = GaugeMetricFamily(
                "mailup_jobs_ledger_up",
                "1 if the ledger could be read for this scrape, else 0.",
                value=1 if self._up else 0,
            )
            return iter([*ledger, *self._tally.families(self._kinds), up])

    def _went(self, *, up: bool, why: str = "") -> None:
        """One log line when the ledger stops or starts answering, not one per scrape."""
        if up and not self._up:
            log.info("the ledger answers again")
        elif not up and self._up:
            log.warning("the ledger cannot be read: %s", why)
        self._up = up


def _brief(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def serve(ledger_url: str, kinds: Iterable[str], *, host: str, port: int) -> None:
    """Serve ``/metrics`` on ``host:port`` until the process is stopped."""
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger_url, kinds))
    _, thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
    thread.join()
