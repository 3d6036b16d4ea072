"""The time an audit covers: from ``since`` (inclusive) to ``until`` (exclusive), in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

# What an audit's bounds may be given as: ISO text, a date or a datetime (None: unbounded).
Moment = str | date | datetime | None


@dataclass(frozen=True)
class Period:
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, since: Moment = None, until: Moment = None) -> Period:
        """A date as ``since`` starts at its midnight; as ``until`` it is included whole.
        A datetime without a zone is UTC.

        Raises:
            ValueError: naming ``since`` or ``until``.
        """
        period = cls(moment("since", since), moment("until", until, whole_day=True))
        if period.since and period.until and period.since >= period.until:
            raise ValueError("until: must be later than since")
        return period


def moment(field: str, value: Moment, *, whole_day: bool = False) -> datetime | None:
    """``value`` as a UTC datetime; a date is its midnight, or the next one ``whole_day``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _parse(field, value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    start = datetime.combine(value, time(), UTC)
    return start + timedelta(days=1) if whole_day else start


def _parse(field: str, text: str) -> date | datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{field}: {text!r} is not an ISO date or datetime (2026-01-31, 2026-01-31T08:00Z)"
        ) from None
