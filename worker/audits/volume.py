"""How much went out: SMS credits per campaign, day or list, and jobs per day by status or kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Function,
    SQLColumnExpression,
    String,
    bindparam,
    func,
    nulls_last,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from worker.audits.period import Period
from worker.engine.kind import in_period
from worker.ledger.db import transaction
from worker.ledger.models import Job, JobStatus, SmsDelivery
from worker.settings import Settings

CostsBy = Literal["campaign", "day", "list"]
# The column each grouping is shown under.
COST_COLUMNS: dict[str, str] = {"campaign": "campaign_code", "day": "day", "list": "list_id"}
STATUSES = tuple(JobStatus)


@dataclass(frozen=True)
class Credits:
    """The SMS sent for one campaign code (None: sent without one), day or list, and the
    credits MailUp charged for them (its answer's ``Cost``)."""

    by: CostsBy
    account: str
    group: str | int | None
    sms: int
    credits: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            COST_COLUMNS[self.by]: self.group,
            "sms": self.sms,
            "credits": float(self.credits),
        }


@dataclass(frozen=True)
class DaySends:
    """The jobs accepted on one day (UTC), counted by the status they are in now."""

    day: str
    jobs: dict[str, int]
    # The statuses shown: every one, or the one asked for.
    statuses: tuple[str, ...] = STATUSES

    @property
    def total(self) -> int:
        return sum(self.jobs.values())

    def as_dict(self) -> dict[str, Any]:
        counts = {status: self.jobs.get(status, 0) for status in self.statuses}
        return {"day": self.day, **counts, "total": self.total}


# On PostgreSQL a day's rows are counted by a range scan of an index, one scan per day (and
# status): computing each row's UTC day and grouping by it costs three times as much on a
# million rows. SQLite, a single machine's ledger, groups by the day its UTC text begins with.
ONE_DAY = timedelta(days=1)


def sms_costs(
    settings: Settings, by: CostsBy, period: Period, *, account: str | None = None
) -> list[Credits]:
    """SMS sent (by the day MailUp answered) and their credits, per account and ``by``."""
    if by not in COST_COLUMNS:
        raise ValueError(f"by: must be one of {', '.join(COST_COLUMNS)}")
    sent_at = SmsDelivery.sent_at
    where = [in_period(sent_at, period.since, period.until)]
    if account is not None:
        where.append(SmsDelivery.account == account)
    spent = (
        SmsDelivery.account,
        func.count().label("sms"),
        func.sum(SmsDelivery.cost).label("credits"),
    )
    with transaction(settings.ledger_url) as session:
        if by == "day" and _postgresql(session):
            day = _days(session, sent_at, where).table_valued("start").render_derived("day")
            per_day = (
                select(*spent)
                .where(*where, sent_at >= day.c.start, sent_at < day.c.start + ONE_DAY)
                .group_by(SmsDelivery.account)
                .lateral("spent")
            )
            query = select(per_day, day.c.start).select_from(day).join(per_day, true())
            ordered = query.order_by(per_day.c.account, day.c.start)
        else:
            group = {
                "campaign": SmsDelivery.campaign_code,
                "day": _sqlite_day(sent_at),
                "list": SmsDelivery.list_id,
            }[by]
            query = select(*spent, group).where(*where).group_by(SmsDelivery.account, group)
            ordered = query.order_by(SmsDelivery.account, nulls_last(group))
        rows = session.execute(ordered).all()
    return [Credits(by, row[0], _group(by, row[3]), row[1], Decimal(row[2] or 0)) for row in rows]


def _group(by: CostsBy, value: Any) -> str | int | None:
    return _day(value) if by == "day" else cast(str | int | None, value)


def _day(value: datetime | str) -> str:
    """A day as ISO text: a PostgreSQL UTC midnight, or SQLite's text already."""
    return value.astimezone(UTC).date().isoformat() if isinstance(value, datetime) else value


def sends_by_day(
    settings: Settings,
    period: Period,
    *,
    kind: str | None = None,
    status: str | None = None,
) -> list[DaySends]:
    """Jobs per day they were accepted and per status, oldest day first."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
    shown = (status,) if status else STATUSES
    created_at = Job.created_at
    where = [in_period(created_at, period.since, period.until)]
    if kind is not None:
        where.append(Job.kind == kind)
    if status is not None:
        where.append(Job.status == status)
    with transaction(settings.ledger_url) as session:
        if _postgresql(session):
            grid = _days(session, created_at, where, shown)
            cell = grid.table_valued("start", "status").render_derived("cell")
            count = (
                select(func.count())
                .select_from(Job)
                .where(
                    *where,
                    Job.status == cell.c.status,
                    created_at >= cell.c.start,
                    created_at < cell.c.start + ONE_DAY,
                )
                .scalar_subquery()
            )
            query = select(cell.c.start, cell.c.status, count)
        else:
            day = _sqlite_day(created_at)
            query = select(day, Job.status, func.count()).where(*where).group_by(day, Job.status)
        rows = session.execute(query).all()
    days: dict[str, dict[str, int]] = {}
    for value, job_status, jobs in rows:
        if jobs:
            days.setdefault(_day(value), {})[job_status] = jobs
    return [DaySends(day, days[day], shown) for day in sorted(days)]


@dataclass(frozen=True)
class DayKind:
    """The jobs of one kind accepted on one day (UTC), whatever their status now."""

    day: str
    kind: str
    jobs: int

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "kind": self.kind, "jobs": self.jobs}


def kinds_by_day(settings: Settings, period: Period) -> list[DayKind]:
    """Jobs per day they were accepted and per kind, oldest day first."""
    created_at = Job.created_at
    where = [in_period(created_at, period.since, period.until)]
    with transaction(settings.ledger_url) as session:
        if _postgresql(session):
            day = _days(session, created_at, where).table_valued("start").render_derived("day")
            per_day = (
                select(Job.kind, func.count().label("jobs"))
                .where(*where, created_at >= day.c.start, created_at < day.c.start + ONE_DAY)
                .group_by(Job.kind)
                .lateral("counted")
            )
            query = select(day.c.start, per_day).select_from(day).join(per_day, true())
        else:
            sqlite_day = _sqlite_day(created_at)
            query = (
                select(sqlite_day, Job.kind, func.count())
                .where(*where)
                .group_by(sqlite_day, Job.kind)
            )
        rows = session.execute(query).all()
    found = [DayKind(_day(value), kind, jobs) for value, kind, jobs in rows]
    return sorted(found, key=lambda row: (row.day, row.kind))


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _sqlite_day(column: SQLColumnExpression[datetime]) -> ColumnElement[str]:
    return func.substr(column, 1, 10)  # SQLite keeps UTC text: "2026-01-31 08:00:00…"


def _days(
    session: Session,
    column: SQLColumnExpression[datetime],
    where: list[ColumnElement[bool]],
    each: tuple[str, ...] = (),
) -> Function[Any]:
    """``unnest`` of the UTC midnights from the first to the last day ``column`` has rows
    ``where``: one per day, or one per day and each of ``each`` (a second column)."""
    first, last = session.execute(select(func.min(column), func.max(column)).where(*where)).one()
    starts: list[datetime] = []
    if first is not None:
        day = datetime.combine(first.date(), time(), UTC)
        while day <= last:
            starts.append(day)
            day += ONE_DAY
    stamps = ARRAY(DateTime(timezone=True))
    if not each:
        return func.unnest(bindparam("p_days", starts, type_=stamps))
    return func.unnest(
        bindparam("p_days", [d for d in starts for _ in each], type_=stamps),
        bindparam("p_each", [e for _ in starts for e in each], type_=ARRAY(String)),
    )
