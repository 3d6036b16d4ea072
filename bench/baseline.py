"""The baseline: a bare Celery task making the same MailUp call, with no ledger.

Same broker, same worker settings (acks_late, prefetch 1, concurrency) as the real app;
the ListGuid and ListSecret come in the message, which the real system never allows.
"""

from __future__ import annotations

import requests
from celery import Celery

from worker.app import create_app
from worker.settings import get_settings

app: Celery = create_app(get_settings())
_session = requests.Session()


@app.task(name="bench.bare_send")
def bare_send(url: str, body: dict[str, object]) -> int:
    response = _session.post(url, json=body, timeout=(5, 30))
    response.raise_for_status()
    return int(response.json()["Data"]["DeliveryId"])
