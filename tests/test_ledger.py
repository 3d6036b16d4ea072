"""Ledger writes that concurrent workers share."""

from __future__ import annotations

import threading

from sqlalchemy import select

from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import ChannelPause, utcnow


def test_concurrent_upserts_of_one_row_never_collide(ledger_url: str) -> None:
    # Given 8 workers recording the same pause at the same moment, over and over
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def record(n: int) -> None:
        start.wait()
        try:
            for attempt in range(15):
                with connection(ledger_url) as db:
                    store.upsert(
                        db,
                        ChannelPause,
                        account="a",
                        channel="email",
                        until=None,
                        reason=f"worker {n} attempt {attempt}",
                        created_at=utcnow(),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then nobody failed, and one row holds the last word
    assert errors == []
    with connection(ledger_url) as db:
        reasons = db.scalars(select(ChannelPause.reason)).all()
    assert len(reasons) == 1 and reasons[0].startswith("worker ")
