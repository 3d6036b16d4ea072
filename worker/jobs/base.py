"""What every job kind provides, and what the runner hands it while it runs.

A job kind is one module: a pydantic payload model (validated at the door and again when
loaded), an ``execute`` function making the MailUp calls, and a ``describe`` function for
the audit view. ``worker.jobs.registry`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from worker.ledger import store
from worker.ledger.db import single_statement
from worker.ledger.models import Job
from worker.settings import AccountSettings, Settings

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
    until ``until``, without spending an attempt; ``reason`` is shown on the job."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class Payload(BaseModel):
    """Base of every job payload: immutable, unknown fields refused, never a secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class Result:
    """A successful run: the job's outcome summary, and what to write beside it.

    ``record`` runs in the same transaction that marks the job succeeded.
    """

    outcome: dict[str, Any] | None
    record: Callable[[Connection], object] | None = None
    http_status: int | None = None
    code: str | None = None


@dataclass
class JobContext:
    settings: Settings
    claim: store.Claim
    worker: str
    called: bool = False

    @property
    def account(self) -> AccountSettings:
        return self.settings.account(self.claim.account)

    def calling(self) -> None:
        """Commit "a call is being made" before a request that may change MailUp's state.

        If the worker dies after this, the sweeper marks the job in_doubt instead of
        sending it again.
        """
        if not self.called:
            with single_statement(self.settings.ledger_url) as db:
                store.open_attempt(db, self.claim, worker=self.worker)
            self.called = True


def describe_outcome(session: Session, job: Job) -> dict[str, Any]:
    """The audit view of a kind whose job outcome says it all."""
    return dict(job.outcome or {})


@dataclass(frozen=True)
class JobKind:
    name: str
    payload: type[Payload]
    execute: Callable[[JobContext, Any], Result]
    describe: Callable[[Session, Job], dict[str, Any]]
    # The rate-limited channel of the account it sends on ("sms", "email"), if any.
    channel: str | None = None
