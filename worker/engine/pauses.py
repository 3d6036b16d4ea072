"""Pausing an account's channel while MailUp says nothing of it can be sent.

When MailUp answers that the account has no SMS credits, that its SMTP+ user is blocked or
that the account is suspended, every queued job of that channel would fail the same way.
Instead the channel (or a narrower scope of it, such as one list) pauses with the reason:
its jobs wait without spending attempts, and the pause ends

- at its date, when MailUp gave one (an SMTP+ user blocked until…);
- when a probe says the account can send again: beat asks the channel's probe (email:
  ListUserInfo), or, for a channel without one (SMS credits), lets one waiting job through
  per ``MAILUP_JOBS_PAUSE_PROBE`` interval: if it is sent, the pause ends;
- when an operator resumes it (``mailup-jobs accounts resume``).

Ending a pause wakes its waiting jobs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, or_, select, update

from worker.engine.kind import JobKind
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import ChannelPause, utcnow
from worker.mailup.errors import LIST_LEVEL, MailUpError
from worker.settings import Settings

log = logging.getLogger(__name__)

# A paused job without a date waits this long before it looks again by itself; it is woken
# sooner when the pause ends.
PARKED = timedelta(hours=1)
CLOCK_GRACE = timedelta(seconds=1)
_CACHE_SECONDS = 2.0
_cache: dict[tuple[str, str, str], tuple[float, list[Pause]]] = {}


@dataclass(frozen=True)
class Pause:
    account: str
    scope: str
    reason: str
    condition: str | None
    since: datetime
    until: datetime | None
    probe_at: datetime | None
    probe_job_id: str | None

    def over(self, now: datetime) -> bool:
        return self.until is not None and self.until <= now


@dataclass(frozen=True)
class Gate:
    """What the pauses say of one job: run now (perhaps as a probe), or wait."""

    wait_until: datetime | None = None
    probe: str | None = None


def scope_for(kind: JobKind, payload: object, error: MailUpError) -> str:
    """The scope an account-level answer pauses: the job's list for a list's own problem."""
    scopes = kind.scopes(payload)
    return scopes[-1] if error.condition in LIST_LEVEL else scopes[0]


def gate(settings: Settings, account: str, scopes: Sequence[str], job_id: str) -> Gate:
    """Whether a job subject to ``scopes`` may run now."""
    if not scopes:
        return Gate()
    now = utcnow()
    blocking = _blocking(_pauses(settings, account, scopes[0]), scopes, now)
    if blocking:  # a cached "paused" may be stale (a probe was just chosen): look again
        blocking = _blocking(_pauses(settings, account, scopes[0], fresh=True), scopes, now)
    probes = [p for p in blocking if p.probe_job_id == job_id]
    waits = [p for p in blocking if p.probe_job_id != job_id]
    if waits:
        until = max(p.until or now + PARKED for p in waits)
        return Gate(wait_until=until)
    return Gate(probe=probes[-1].scope if probes else None)


def pause(
    settings: Settings,
    account: str,
    scope: str,
    *,
    reason: str,
    condition: str | None,
    until: datetime | None,
) -> None:
    """Record (or renew) a pause; the next probe is one interval away."""
    now = utcnow()
    probe_at = now + timedelta(seconds=settings.pause_probe)
    with connection(settings.ledger_url) as db:
        existing = db.scalar(select(ChannelPause.created_at).where(_key(account, scope)))
        store.upsert(
            db,
            ChannelPause,
            account=account,
            channel=scope,
            until=until,
            reason=reason,
            condition=condition,
            created_at=existing or now,
            probe_at=probe_at,
            probe_job_id=None,
        )
    _cache.clear()
    log.warning(
        "account %s: %s paused %s: %s",
        account,
        scope,
        f"until {until:%Y-%m-%d %H:%M:%S}Z" if until else "until a probe or an operator",
        reason,
    )


def lift(
    settings: Settings, account: str, scope: str, kinds: Iterable[str], *, narrower: bool = True
) -> bool:
    """End the pause of ``scope`` (and, for an operator, of every narrower scope in it, such
    as its lists); wake the waiting jobs of ``kinds``."""
    which = ChannelPause.channel == scope
    if narrower:
        which = or_(which, ChannelPause.channel.like(f"{scope}:%"))
    with connection(settings.ledger_url) as db:
        removed = db.execute(
            delete(ChannelPause).where(ChannelPause.account == account, which)
        ).rowcount
        store.wake(db, account, list(kinds))
    _cache.clear()
    if removed:
        log.info("account %s: %s resumed", account, scope)
    return bool(removed)


def listing(settings: Settings) -> list[Pause]:
    """Every pause, for operators."""
    with connection(settings.ledger_url) as db:
        rows = db.execute(select(ChannelPause).order_by(ChannelPause.account, ChannelPause.channel))
        return [_pause_of(row) for row in rows]


def due_probes(settings: Settings) -> list[Pause]:
    """Pauses whose next probe is due (those past their date are simply removed)."""
    now = utcnow()
    due = []
    for item in listing(settings):
        if item.over(now):
            with connection(settings.ledger_url) as db:
                db.execute(delete(ChannelPause).where(_key(item.account, item.scope)))
        elif item.until is None and (item.probe_at is None or item.probe_at <= now):
            due.append(item)
    return due


def next_probe(settings: Settings, item: Pause, job_id: str | None) -> None:
    """Let ``job_id`` through as the probe (None: no job to try), and schedule the next."""
    probe_at = utcnow() + timedelta(seconds=settings.pause_probe)
    with connection(settings.ledger_url) as db:
        db.execute(
            update(ChannelPause)
            .where(_key(item.account, item.scope))
            .values(probe_at=probe_at, probe_job_id=job_id)
        )
        if job_id is not None:
            store.wake_jobs(db, [job_id])
    _cache.clear()


def jitter(until: datetime) -> datetime:
    """A few seconds' spread, so waiting jobs do not all come back in the same second."""
    return until + timedelta(seconds=random.uniform(0, 10))


def _pauses(settings: Settings, account: str, channel: str, *, fresh: bool = False) -> list[Pause]:
    key = (settings.ledger_url, account, channel)
    cached = _cache.get(key)
    if cached and cached[0] > time.monotonic() and not fresh:
        return cached[1]
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(ChannelPause).where(
                ChannelPause.account == account,
                or_(ChannelPause.channel == channel, ChannelPause.channel.like(f"{channel}:%")),
            )
        )
        found = [_pause_of(row) for row in rows]
    _cache[key] = (time.monotonic() + _CACHE_SECONDS, found)
    return found


def _blocking(found: list[Pause], scopes: Sequence[str], now: datetime) -> list[Pause]:
    return [p for p in found if p.scope in scopes and not p.over(now)]


def _key(account: str, scope: str) -> ColumnElement[bool]:
    return and_(ChannelPause.account == account, ChannelPause.channel == scope)


def _pause_of(row: Row[Any]) -> Pause:
    return Pause(
        account=row.account,
        scope=row.channel,
        reason=row.reason,
        condition=row.condition,
        since=row.created_at,
        until=row.until,
        probe_at=row.probe_at,
        probe_job_id=row.probe_job_id,
    )


def probe_due(settings: Settings, kinds: Mapping[str, JobKind]) -> int:
    """Beat's round over the pauses whose probe is due; how many pauses ended.

    A channel with a probe of its own is asked; for one without, one waiting job of the
    paused scope is let through (its success ends the pause, see the runner).
    """
    ended = 0
    for item in due_probes(settings):
        channel_name = item.scope.split(":", 1)[0]
        members = {n: k for n, k in kinds.items() if k.channel and k.channel.name == channel_name}
        channel = next(iter(members.values())).channel if members else None
        if channel is None:
            continue
        if channel.probe is None:
            next_probe(settings, item, _candidate(settings, item, members))
            continue
        verdict = channel.probe(settings, item.account)
        if verdict.clear:
            ended += lift(settings, item.account, item.scope, list(members), narrower=False)
            continue
        pause(
            settings,
            item.account,
            item.scope,
            reason=verdict.reason or item.reason,
            condition=item.condition,
            until=verdict.until,
        )
        if verdict.until:  # now a date is known: let the waiting jobs wait for it instead
            with connection(settings.ledger_url) as db:
                store.wake(db, item.account, list(members))
    return ended


def _candidate(settings: Settings, item: Pause, members: Mapping[str, JobKind]) -> str | None:
    """The most urgent waiting job held by exactly this paused scope."""
    with connection(settings.ledger_url) as db:
        waiting = store.waiting_jobs(db, item.account, list(members))
    for job_id, kind_name, payload in waiting:
        kind = members[kind_name]
        if item.scope in kind.scopes(kind.payload.model_validate(payload)):
            return job_id
    return None
