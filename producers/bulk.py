"""Bulk submission: thousands of jobs checked, written in a few statements and published a
batch of ids per message.

    from producers import send_sms_many
    job_ids = send_sms_many(
        {"list_id": 1, "recipient": phone, "content": "Hi"} for phone in phones
    )

Each item is checked exactly as the single producer checks it (``send_sms``, ``send_email``,
``enqueue``). One bad item refuses them all, nothing written: ``InvalidJob`` names every bad
item's fields by index (``items[3].recipient``). Bulk jobs default to priority 8: a
transactional job (priority 5, or more urgent) enqueued behind them goes first.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from producers.email import send_email
from producers.enqueue import collecting, enqueue, send_sms
from producers.errors import BrokerUnavailableWarning, InvalidJob
from worker.app import check_broker
from worker.engine.submit import submit_many
from worker.ledger.store import IdempotencyConflict
from worker.publish import publish_batch
from worker.settings import get_settings

# Below the single producers' default (5): bulk work takes the slots transactional jobs leave.
BULK_PRIORITY = 8


def send_sms_many(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Queue many SMS: each item holds ``send_sms``'s keyword arguments. The job ids, in
    the items' order (an item whose idempotency key was used before: that job's id)."""
    return _submit(send_sms, items)


def send_email_many(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Queue many transactional emails: each item holds ``send_email``'s keyword arguments."""
    return _submit(send_email, items)


def enqueue_many(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Queue many jobs of any kinds: each item holds ``enqueue``'s arguments (``kind``,
    ``payload``, and optionally ``account``, ``priority``, ``idempotency_key``)."""
    return _submit(enqueue, items)


def check(producer: Callable[..., str], items: Iterable[Mapping[str, Any]]) -> int:
    """Check the items as ``producer`` would, writing nothing: how many there are, or
    InvalidJob naming every bad one."""
    with collecting() as collected:
        _collect(producer, items)
    return len(collected)


def _submit(producer: Callable[..., str], items: Iterable[Mapping[str, Any]]) -> list[str]:
    with collecting() as collected:
        _collect(producer, items)
    if not collected:
        return []
    settings = get_settings()
    # Before anything is written: refused at publishing, the jobs would wait in the ledger
    # for the sweeper, which publishes them once the broker is set (a caller's retry too).
    check_broker(settings)
    try:
        written = submit_many(settings, collected, publish_batch=publish_batch)
    except IdempotencyConflict as exc:
        raise InvalidJob({"idempotency_key": str(exc)}) from None
    refused = sum(1 for _, published in written if not published)
    if refused:
        warnings.warn(
            f"the broker is unreachable: {refused} of {len(written)} jobs are accepted and the "
            "sweeper will publish them",
            BrokerUnavailableWarning,
            stacklevel=3,
        )
    return [job_id for job_id, _ in written]


def _collect(producer: Callable[..., str], items: Iterable[Mapping[str, Any]]) -> None:
    errors: dict[str, str] = {}
    for number, item in enumerate(items):
        try:
            producer(**{"priority": BULK_PRIORITY, **item})
        except InvalidJob as exc:
            errors.update({f"items[{number}].{name}": why for name, why in exc.errors.items()})
        except TypeError as exc:  # an argument the producer does not take
            errors[f"items[{number}]"] = str(exc)
    if errors:
        raise InvalidJob(errors)
