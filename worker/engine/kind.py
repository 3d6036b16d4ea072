"""What a job kind declares about itself, and what the runner hands it while it runs.

A job kind is one module in ``worker.jobs``: a pydantic payload (validated at the door and
again when loaded), ``execute`` making the MailUp calls, and a ``JobKind`` naming the rest —
the rows it stages beside the job, its audit view, its channel, its delivery policy, its
beat polls, what it sent to whom and what a purge removes. ``worker.jobs.registry`` lists
them; the engine knows none by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Connection,
    SQLColumnExpression,
    and_,
    bindparam,
    select,
    true,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.group_commit import open_call
from worker.ledger.models import AttemptOutcome, Job
from worker.mailup.errors import Api, Condition, MailUpError, PermanentError
from worker.settings import AccountSettings, Delivery, Settings

# Attempts whose call MailUp may have acted on, their answer lost.
MAY_HAVE_ACTED = (AttemptOutcome.UNKNOWN, AttemptOutcome.ABANDONED, AttemptOutcome.IN_DOUBT)

T = TypeVar("T")

# Hands a job id to the broker: (job id, priority, countdown seconds) → published or not.
Publish = Callable[[str, int, float | None], bool]


class FieldError(ValueError):
    """A check that spans fields, naming the field to blame (pydantic would name none)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Waiting(Exception):
    """The job cannot run yet (e.g. a trusted sender is unconfirmed): back to the queue
    until ``until``, without spending an attempt; ``reason`` is shown on the job.

    Raise it only before ``JobContext.calling``: after a call, a wait is a retry, its
    attempt recording ``cause`` (MailUp's answer to the call), if given.
    """

    def __init__(self, until: datetime, reason: str, cause: MailUpError | None = None) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason
        self.cause = cause


class ClaimLost(Exception):
    """This run's claim was taken over (its worker stopped beating for a while, or its lease
    ran out): the job is another run's now, and this one must neither call nor record."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id}: claim taken over by the sweeper; left to its new run")


class Refused(Exception):
    """The job cannot be done as asked, found before any MailUp call (e.g. a sender that is
    blocked): it fails with ``code`` and ``reason``, never retried."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class InDoubt(Exception):
    """MailUp may have acted on a call and cannot tell whether it did (e.g. two sendings
    appeared where one was asked): the job ends ``in_doubt`` with ``code`` and ``reason``,
    whatever the kind's delivery policy, for a person to resolve."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Payload(BaseModel):
    """Base of every job payload: immutable, unknown fields refused, never a secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class Result:
    """A successful run: the job's outcome summary, and what to write beside it.

    ``rows`` (plain statements, merged with other jobs' rows: the hot path's way) and
    ``record`` (code) run in the same transaction that marks the job succeeded.
    ``http_status`` is recorded on the attempt; left out, the status of the run's last
    answer from MailUp is.
    """

    outcome: dict[str, Any] | None
    record: Callable[[Connection], object] | None = None
    rows: tuple[store.Statement, ...] = ()
    http_status: int | None = None
    code: str | None = None


@dataclass
class JobContext:
    settings: Settings
    claim: store.Claim
    worker: str
    called: bool = False
    # The paused scope this run probes (its success ends the pause), if any.
    probe: str | None = None
    # The kind's delivery policy for this job's account (see Delivery).
    delivery: Delivery = "at_most_once"

    @property
    def account(self) -> AccountSettings:
        return self.settings.account(self.claim.account)

    def calling(self) -> None:
        """Commit "a call is being made" before a request that may change MailUp's state.

        If the worker dies after this, the sweeper marks the job in_doubt instead of
        sending it again. Raises ClaimLost when the job is no longer this run's.
        """
        if not self.called:
            if not open_call(self.settings.ledger_url, self.claim):
                raise ClaimLost(self.claim.job_id)
            self.called = True

    def deleting(self, delete: Callable[[], T]) -> T | None:
        """``delete()``, a call that removes something at MailUp. Its NOT_FOUND after an
        earlier attempt of this job that may have reached MailUp means that attempt deleted
        it, its answer lost: None then (the end state is reached). On a first try, NOT_FOUND
        is raised as any refusal: the thing was simply not there."""
        try:
            return delete()
        except PermanentError as exc:
            if exc.condition is not Condition.NOT_FOUND:
                raise
            with connection(self.settings.ledger_url) as db:
                if store.count_attempts(db, self.claim.job_id, *MAY_HAVE_ACTED) == 0:
                    raise
            return None


@dataclass(frozen=True)
class ProbeVerdict:
    """What a channel's probe learnt of a paused account: it may send again (``clear``),
    from a date on (``until``), or not yet (neither)."""

    clear: bool = False
    until: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Channel:
    """An account's way out to MailUp that has a purchased speed and can be paused.

    ``probe`` asks MailUp, without sending, whether a paused account may send again (beat
    runs it); without one, beat lets one waiting job through as the probe. ``on_pause``
    learns, when a job meets an account-level answer, until when the pause lasts.
    """

    name: str
    probe: Callable[[Settings, str], ProbeVerdict] | None = None
    on_pause: Callable[[JobContext, MailUpError], datetime | None] | None = None

    def per_hour(self, account: AccountSettings) -> int:
        value: int = getattr(account, f"{self.name}_per_hour")
        return value


@dataclass(frozen=True)
class Poll:
    """A beat task of a kind: ``run(settings)`` every ``every(settings)`` seconds."""

    name: str
    every: Callable[[Settings], float]
    run: Callable[[Settings], int]


def describe_outcome(session: Session, job: Job) -> dict[str, Any]:
    """The audit view of a kind whose job outcome says it all."""
    return dict(job.outcome or {})


@dataclass(frozen=True)
class Addressed:
    """One job's message to one recipient, for "what did we send to x" (``ledger recipient``).

    ``role`` says how it was addressed: ``sms``; ``to``, ``cc`` or ``bcc``; ``campaign`` (a
    campaign to it alone) or ``list`` (to a list or group). ``outcome`` is ``sent``, the
    job's status when it was not (``failed``, ``in_doubt``, ``queued`` …), or ``invalid`` /
    ``unprocessed`` for a recipient MailUp left out; ``at`` when it was sent, or the job's
    last change.
    """

    job_id: str
    kind: str
    role: str
    outcome: str
    at: datetime
    created_at: datetime
    code: str | None = None
    delivery_id: int | None = None
    sending_id: int | None = None
    cost: Decimal | None = None
    campaign_code: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A flat, JSON-ready row."""
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "role": self.role,
            "outcome": self.outcome,
            "code": self.code,
            "job_id": self.job_id,
            "created_at": self.created_at.isoformat(),
            "delivery_id": self.delivery_id,
            "sending_id": self.sending_id,
            "cost": None if self.cost is None else float(self.cost),
            "campaign_code": self.campaign_code,
            "reason": self.reason,
        }


# (session, kind names, the recipient's keyed hash, since, until) → what jobs of those kinds
# made in that period (by creation time; None: unbounded) addressed to that recipient.
SentTo = Callable[[Session, list[str], str, datetime | None, datetime | None], list[Addressed]]
# (connection, job ids, the recipient hasher) → the kind's own rows of those jobs stripped
# of personal data, their recipients' keyed hashes kept.
Purge = Callable[[Connection, list[str], Callable[[str], str]], None]


def hash_missing(
    db: Connection,
    key: InstrumentedAttribute[int],
    address: InstrumentedAttribute[str | None],
    digest: InstrumentedAttribute[str | None],
    where: ColumnElement[bool],
    hashed: Callable[[str], str],
) -> None:
    """For a purge: the rows ``where`` that hold an address but no hash of it (written by an
    older version) get their hash before the address goes."""
    rows = db.execute(
        select(key, address).where(where, digest.is_(None), address.is_not(None))
    ).all()
    if rows:
        statement = (
            update(key.class_)
            .where(key == bindparam("p_key"))
            .values({digest.key: bindparam("p_hash")})
        )
        db.execute(statement, [{"p_key": id_, "p_hash": hashed(str(plain))} for id_, plain in rows])


def in_period(
    column: SQLColumnExpression[datetime], since: datetime | None, until: datetime | None
) -> ColumnElement[bool]:
    """``column`` from ``since`` (inclusive) to ``until`` (exclusive); None is unbounded."""
    bounds = [column >= since] if since else []
    if until:
        bounds.append(column < until)
    return and_(true(), *bounds)


@dataclass(frozen=True)
class JobKind:
    name: str
    payload: type[Payload]
    execute: Callable[[JobContext, Any], Result]
    describe: Callable[[Session, Job], dict[str, Any]] = describe_outcome
    channel: Channel | None = None
    # When the answer to a call that changes something is lost (see Delivery).
    delivery: Delivery = "at_most_once"
    # (job id, payload, extras) → rows kept beside the job, written in the enqueue
    # transaction (e.g. attachment bytes, which never go into the payload).
    stage: Callable[[str, Any, Any], list[store.Statement]] | None = None
    # A narrower pause scope than the channel for this payload (e.g. its list), if any.
    sub_scope: Callable[[Any], str | None] | None = None
    polls: tuple[Poll, ...] = ()
    # The MailUp API whose codes its failures carry (their meanings: worker.mailup.errors).
    api: Api = Api.CONSOLE
    # Who its jobs addressed, for ``ledger recipient`` (None: it sends to no one).
    sent_to: SentTo | None = None
    # Payload fields (dotted paths) holding nothing personal: a purge keeps these and drops
    # every other field, so a kind that declares none keeps no payload at all.
    keeps: tuple[str, ...] = ()
    # Its own rows' personal data removed, by the purge, for its finished old jobs.
    purge: Purge | None = None

    def delivery_for(self, account: AccountSettings) -> Delivery:
        return account.delivery.get(self.name, self.delivery)

    def scopes(self, payload: Any) -> tuple[str, ...]:
        """The pause scopes a job is subject to, widest first."""
        if self.channel is None:
            return ()
        narrower = self.sub_scope(payload) if self.sub_scope else None
        channel = self.channel.name
        return (channel, f"{channel}:{narrower}") if narrower else (channel,)
