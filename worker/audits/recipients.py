"""What was sent to one recipient: every kind that addresses people answers for its own jobs
(``JobKind.sent_to``), all by the recipient's keyed hash — the same before and after a
purge removed the number or address itself."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from sqlalchemy import select

from worker.audits.period import Period
from worker.engine.kind import Addressed, JobKind, SentTo
from worker.ledger.crypto import normalise_recipient, recipient_hasher
from worker.ledger.db import transaction
from worker.ledger.models import JobResolution
from worker.settings import Settings

_NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def check_recipient(recipient: str) -> str:
    """The recipient as the ledger hashes it.

    Raises:
        ValueError: naming ``recipient`` when it is neither a number nor an address.
    """
    normalised = normalise_recipient(recipient)
    if not (_NUMBER.match(normalised) or _ADDRESS.match(normalised)):
        raise ValueError(
            "recipient: give a phone number with its international prefix (+ or 00) or an "
            "email address"
        )
    return normalised


def sent_to(
    settings: Settings, kinds: Mapping[str, JobKind], recipient: str, period: Period
) -> list[Addressed]:
    """Everything addressed to ``recipient`` by jobs accepted in ``period``, oldest first."""
    hashed = recipient_hasher(settings)(check_recipient(recipient))
    hooks: dict[SentTo, list[str]] = {}
    for name, kind in kinds.items():
        if kind.sent_to is not None:
            hooks.setdefault(kind.sent_to, []).append(name)
    with transaction(settings.ledger_url) as session:
        found = [
            entry
            for hook, names in hooks.items()
            for entry in hook(session, names, hashed, period.since, period.until)
        ]
        # An in_doubt send an operator resolved as sent: the delivery id they gave.
        resolved = dict(
            session.execute(
                select(JobResolution.job_id, JobResolution.delivery_id).where(
                    JobResolution.job_id.in_({e.job_id for e in found}),
                    JobResolution.delivery_id.is_not(None),
                )
            ).all()
        )
    found = [
        dataclasses.replace(e, delivery_id=resolved[e.job_id])
        if e.delivery_id is None and e.job_id in resolved
        else e
        for e in found
    ]
    return sorted(found, key=lambda e: (e.at, e.job_id, e.role))
