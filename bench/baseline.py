"""The baseline: a bare Celery task making the same MailUp call, with no ledger.

Same broker, same worker settings (acks_late, prefetch 1, concurrency) as the real app;
the ListGuid and ListSecret come in the message, which the real system never allows.
The HTTP session is the system's own, so the comparison isolates the ledger's cost.
"""

from __future__ import annotations

from celery import Celery

from worker.app import create_app
from worker.mailup.http import session
from worker.settings import get_settings

app: Celery = create_app(get_settings())


@app.task(name="bench.bare_send")
def bare_send(url: str, body: dict[str, object]) -> int:
    response = session().post(url, json=body, timeout=(5, 30))
    response.raise_for_status()
    return int(response.json()["Data"]["DeliveryId"])
