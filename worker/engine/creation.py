"""Making something at MailUp and finding it again: the one way every kind that creates (a
campaign sending, a list, a group, a tag, a message, a recipient) makes its call.

MailUp's creating calls take no idempotency key, list what they made seconds (sometimes
minutes) later, and the account is shared with other applications. So:

- Right before each call that leaves, the kind's ``look`` reads what MailUp holds that the call
  could make (the message's sendings, the list's groups of that name…); it is committed with
  the time the call leaves (``Creation``).
- A refusal that proves nothing was done (``TransientError``: 429, 503 with Retry-After, a
  refused connection, a connect timeout) forgets it: the next try reads MailUp again, so what
  another application made meanwhile is never taken for this job's.
- An unknown outcome (``AmbiguousError``, or a worker lost mid-call) opens a verification
  window (``MAILUP_JOBS_VERIFY_WINDOW``) in which the job looks again with backoff, each look a
  Console read like any other. Exactly one new match — not there before, made by no other job
  — is this job's (``reconciled``). More than one is ``in_doubt`` with the candidates; none when
  the window ends is ``in_doubt`` too, or made again where the operator chose at-least-once.
  Never a second call by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import delete, select, update

from worker.engine.kind import InDoubt, JobContext, Refused, Waiting
from worker.ledger import store
from worker.ledger.db import connection, transaction
from worker.ledger.models import Creation, utcnow
from worker.mailup.errors import AmbiguousError, TransientError
from worker.settings import Settings

T = TypeVar("T")

# Looks after a lost answer come after 2, 4, 8 … seconds, at most a minute apart.
FIRST_LOOK = 2.0
MAX_LOOK_INTERVAL = 60.0


@dataclass(frozen=True)
class Seen(Generic[T]):
    """One thing MailUp holds that the call could have made. ``key`` names it among the kind's
    things (``sending:12``); ``aliases`` are other keys the same thing shows under elsewhere
    (a queued sending's place in the SendHistory, which has no id)."""

    key: str
    item: T
    aliases: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Making(Generic[T]):
    """What a kind tells the engine of one creating call.

    ``look(left_at)``: what MailUp holds now that the call could make (``left_at``: when the
    call left, None before it; things made before it may be left out). ``make()``: the call,
    answering what it made. ``what``: it in words, for the reasons shown on the job.
    """

    look: Callable[[datetime | None], list[Seen[T]]]
    make: Callable[[], Seen[T]]
    what: str


@dataclass(frozen=True)
class Made(Generic[T]):
    """What the call made; ``reconciled``: found at MailUp after its answer was lost."""

    key: str
    item: T
    reconciled: bool


def create(
    context: JobContext,
    making: Making[T],
    *,
    check: Callable[[list[Seen[T]]], None] | None = None,
) -> Made[T]:
    """Make it once. A rerun after a lost answer looks for it first; ``check`` (the kind's
    entry checks: sender, a name taken…) runs only before a call that leaves, given what
    MailUp holds then."""
    record = _load(context)
    if record is not None:
        found = _verify(context, making, record)
        if found is not None:
            return found
    before = making.look(None)
    if check is not None:
        check(before)
    _open(context, before)
    context.calling()
    try:
        seen = making.make()
    except TransientError:
        _forget(context)  # nothing was made: the next try reads MailUp again
        raise
    except AmbiguousError as exc:
        return _lost(context, making, exc)
    _settle(context, seen.key)
    return Made(seen.key, seen.item, reconciled=False)


def _lost(context: JobContext, making: Making[T], exc: AmbiguousError) -> Made[T]:
    """The call's answer is lost: a first look at once (MailUp often lists it already), then
    the job comes back to look again."""
    _start_window(context, exc.message)
    record = _load(context)
    assert record is not None
    try:
        found = _verify(context, making, record)
    except Waiting as waiting:
        raise Waiting(waiting.until, f"{exc.message}; {waiting.reason}", cause=exc) from None
    if found is None:  # a window too short to look in, at-least-once: the next run calls
        raise Waiting(utcnow(), exc.message, cause=exc)
    return found


def refuse_taken(code: str, what: str) -> Callable[[list[Seen[T]]], None]:
    """A ``check`` for a kind whose names are unique here: refused when MailUp already holds
    ``what`` (a list, group or tag of that name)."""

    def check(before: list[Seen[T]]) -> None:
        if before:
            taken = before[0].key.partition(":")[2]
            raise Refused(code, f"{what} exists already (id {taken})")

    return check


def _verify(context: JobContext, making: Making[T], record: Creation) -> Made[T] | None:
    """Did the call that left at ``record.left_at`` make something? None: not found, and the
    job may call again (at-least-once)."""
    now = utcnow()
    seen = making.look(record.left_at)
    if record.made is not None:  # answered, but the run ended before recording its outcome
        mine = next((s for s in seen if record.made in (s.key, *s.aliases)), None)
        if mine is not None:
            return Made(mine.key, mine.item, reconciled=True)
    new = _new(context, record, seen)
    if len(new) == 1:
        _settle(context, new[0].key)
        return Made(new[0].key, new[0].item, reconciled=True)
    if len(new) > 1:
        keys = ", ".join(sorted(s.key for s in new))
        raise InDoubt(
            "creation_unclear",
            f"{len(new)} candidates for {making.what} appeared since this job's call, whose "
            f"answer was lost: {keys}; MailUp cannot tell which is this job's",
        )
    until = record.verify_until or _start_window(context)
    if now < until:
        wait = min(FIRST_LOOK * 2 ** (record.looks + 1), MAX_LOOK_INTERVAL)
        _looked(context)
        raise Waiting(
            min(now + timedelta(seconds=wait), until),
            f"the answer to its call lost, looking at MailUp for {making.what} "
            f"until {until:%H:%M:%S} UTC (look {record.looks + 1})",
        )
    if context.delivery == "at_least_once":
        _forget(context)  # the operator chose a possible second over a missing one
        return None
    raise InDoubt(
        "creation_not_found",
        f"MailUp's answer to this job's call is unknown ({record.answer}), and it shows no "
        f"{making.what} made since the call left ({record.left_at:%Y-%m-%d %H:%M:%S} UTC) "
        f"after looking for {context.settings.verify_window:g} s: check MailUp before "
        "sending again",
    )


def _new(context: JobContext, record: Creation, seen: list[Seen[T]]) -> list[Seen[T]]:
    """What was not there before the call and is no other job's; one thing seen twice (in
    two queues, or a queue and the history) counts once."""
    before = set(record.before)
    once = {s.key: s for s in seen}.values()
    fresh = [s for s in once if s.key not in before and not (s.aliases & before)]
    keys = {k for s in fresh for k in (s.key, *s.aliases)}
    with connection(context.settings.ledger_url) as db:
        taken = set(
            db.scalars(
                select(Creation.made).where(
                    Creation.account == context.claim.account,
                    Creation.made.in_(keys),
                    Creation.job_id != context.claim.job_id,
                )
            )
        )
    mine = [s for s in fresh if s.key not in taken and not (s.aliases & taken)]
    aliased = {a for s in mine for a in s.aliases}
    return [s for s in mine if s.key not in aliased]


def _load(context: JobContext) -> Creation | None:
    with transaction(context.settings.ledger_url) as session:
        record = session.get(Creation, context.claim.job_id)
        if record is not None:
            session.expunge(record)
        return record


def _open(context: JobContext, before: list[Seen[T]]) -> None:
    keys = sorted({k for s in before for k in (s.key, *s.aliases)})
    with connection(context.settings.ledger_url) as db:
        store.upsert(
            db,
            Creation,
            job_id=context.claim.job_id,
            account=context.claim.account,
            before=keys,
            left_at=utcnow(),
            verify_until=None,
            looks=0,
            made=None,
        )


def _start_window(context: JobContext, answer: str | None = None) -> datetime:
    until = utcnow() + timedelta(seconds=context.settings.verify_window)
    _change(context, verify_until=until, answer=answer or "the worker stopped during the call")
    return until


def _looked(context: JobContext) -> None:
    _change(context, looks=Creation.looks + 1)


def _settle(context: JobContext, key: str) -> None:
    _change(context, made=key)


def _change(context: JobContext, **values: object) -> None:
    with connection(context.settings.ledger_url) as db:
        db.execute(update(Creation).where(Creation.job_id == context.claim.job_id).values(values))


def _forget(context: JobContext) -> None:
    with connection(context.settings.ledger_url) as db:
        db.execute(delete(Creation).where(Creation.job_id == context.claim.job_id))


def outstanding(settings: Settings, job_id: str) -> bool:
    """Whether the job has a creating call out whose outcome is not known yet."""
    with connection(settings.ledger_url) as db:
        made = db.execute(select(Creation.made).where(Creation.job_id == job_id)).first()
    return made is not None and made[0] is None
