"""Append-only record of every emulated API request, for tests to assert what MailUp "saw".

Entry fields: seq, time, method, path (no query string), api, operation, fault (None, "latency",
"error", "429", "drop_before", "drop_after", "error_after", "forced", "301", or "limit" for
MailUp's own 429 over a per-account cap), processed (the operation was carried out: a secret
read/created/deleted, an SMS delivered and charged, even when a fault then lost or replaced the
answer), http_status (None when the connection was dropped), code (MailUp application code, None
for empty bodies), plus the operation's own details flattened in (for SMS sends: delivery_id,
recipient, list_id, content, truncated, cost, campaign_code, ...; for emails: smtp_user,
email_id, from, to, subject, the attachments' sha256; for token requests: grant_type, client_id,
username; for Console lists, groups, recipients and imports: list_id, group_id, recipient_id,
import_id, email, status, confirm_email_sent, items, removed, page_number, page_size, total...;
for calls over a cap: account_id, calls_in_window). Secrets and credentials never go
in: handlers record ``list_secret_valid``, ``client_valid``, ``secret_valid`` or
``token_valid`` instead, and headers are not recorded at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    time: float
    method: str
    path: str
    api: str
    operation: str
    fault: str | None
    processed: bool
    http_status: int | None
    code: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        base = {k: v for k, v in self.__dict__.items() if k != "details"}
        return base | {k: v for k, v in self.details.items() if k not in base}


class Journal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = []

    def record(self, **fields: Any) -> JournalEntry:
        with self._lock:
            entry = JournalEntry(seq=len(self._entries) + 1, time=time.time(), **fields)
            self._entries.append(entry)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def counts(self) -> dict[str, int]:
        """How many API requests arrived, how many SMS were delivered, how many calls were refused
        over a per-account cap: cheap to poll."""
        with self._lock:
            delivered = sum(1 for e in self._entries if e.processed and e.operation == "send_sms")
            limited = sum(1 for e in self._entries if e.fault == "limit")
            return {"requests": len(self._entries), "deliveries": delivered, "limited": limited}

    def entries(
        self, *, operation: str | None = None, processed: bool | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            snapshot = list(self._entries)
        return [
            e.to_dict()
            for e in snapshot
            if (operation is None or e.operation == operation)
            and (processed is None or e.processed == processed)
        ]
