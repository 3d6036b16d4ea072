"""Accepting a job: commit it (and the rows its kind stages beside it) to the ledger, then
publish its id. Once the commit is done the job exists, whatever the broker does."""

from __future__ import annotations

from typing import Any

from worker.engine.kind import JobKind, Payload, Publish
from worker.ledger import store
from worker.ledger.db import transaction
from worker.settings import Settings


def submit(
    settings: Settings,
    kind: JobKind,
    payload: Payload,
    *,
    account: str,
    priority: int,
    idempotency_key: str | None,
    publish: Publish,
    extras: Any = None,
) -> tuple[str, bool]:
    """The new job's id (or the id of the job already accepted under ``idempotency_key``),
    and whether its message is with the broker (if not, the sweeper publishes it).

    Raises ``store.IdempotencyConflict`` when that key was used for other parameters.
    """
    with transaction(settings.ledger_url) as session:
        job, created = store.insert_job(
            session,
            kind=kind.name,
            account=account,
            payload=payload.model_dump(mode="json"),
            priority=priority,
            idempotency_key=idempotency_key,
        )
        if created and kind.stage is not None:
            kind.stage(session, job.id, payload, extras)
    if created and not publish(job.id, priority, None):
        with transaction(settings.ledger_url) as session:
            store.mark_unpublished(session, job.id)
        return job.id, False
    return job.id, True
