"""MailUp's dates on the wire: always UTC.

MailUp writes ``2014-10-20 05:00:00Z`` (the Console's documented form, also sent for
XSmtpAPI ``Schedule``), or ISO 8601 without a zone (``2015-03-31T12:12:04``, meaning UTC);
``0001-01-01T00:00:00`` (.NET's empty date) means none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_mailup(when: datetime) -> str:
    """An aware datetime in MailUp's UTC form; a naive one is refused (whose clock is it?)."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous: give a timezone-aware one")
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def from_mailup(value: Any) -> datetime | None:
    """A date MailUp sent, as an aware UTC datetime (None when empty or unreadable)."""
    if not value or str(value).startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
