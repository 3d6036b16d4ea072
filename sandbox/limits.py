"""MailUp's per-account API caps (LIMITS.md), enforced as MailUp enforces them.

Two buckets per account: ``sms`` for the SMS send endpoint (``POST sms/{account}/{list}``, at
most 30 calls per second) and ``console`` for every other REST method the sandbox emulates (the
Console API, the SMS ListSecret routes, the transactional ``users/listuserinfo``; at most 5 calls
per second, all of them together). SendMessage and SendTemplate (limited by the speed bought,
per hour, not per second) and the OAuth token endpoint are not counted. A call over the cap is
answered HTTP 429 with ``Retry-After: 1`` and the family's error body, its description MailUp's
``Max:5 calls per second, actual:10``; it is not processed.

Where LIMITS.md is silent: the window slides over the last 1.0 s of arrival times, and every call
that arrives counts, refused ones included (MailUp's "actual:10" against a cap of 5 counts them
all), so a client that keeps hammering stays refused until it pauses. The application code of a
429 is "429" in every family (no page lists one). Each route names the account it counts against
(``Route.limit_key``); the pipeline asks before anything else, so a refused call never reaches
the handler, draws no fault and consumes no forced answer.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

SMS, CONSOLE = "sms", "console"  # the buckets; LimitSettings names each cap "<bucket>_per_second"
WINDOW = 1.0  # seconds


@dataclass(frozen=True)
class LimitSettings:
    """Calls per second per account; 0 means no cap. The defaults are MailUp's."""

    sms_per_second: int = 30
    console_per_second: int = 5

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LimitSettings:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        if not all(type(v) is int and v >= 0 for v in data.values()):
            raise ValueError("each cap must be an integer >= 0 (0: no cap)")
        return cls(**data)

    def cap(self, bucket: str) -> int:
        return int(getattr(self, f"{bucket}_per_second"))


class Refusal(NamedTuple):
    """A call over the cap: the cap and the calls in the window, this one included."""

    cap: int
    calls: int

    @property
    def description(self) -> str:
        return f"Max:{self.cap} calls per second, actual:{self.calls}"


class Limits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.settings = LimitSettings()
            self._arrivals: dict[tuple[int, str], list[float]] = {}

    def configure(self, settings: LimitSettings) -> None:
        with self._lock:
            self.settings = settings

    def arrive(self, account_id: int, bucket: str, at: float | None = None) -> Refusal | None:
        """Count a call that arrived for ``account_id`` in ``bucket`` at ``at`` (a monotonic
        time; now when None); a Refusal when the second before it holds more calls than the
        cap. Calls are counted by when they arrived, not by when a busy sandbox got to them:
        those may come in another order, so the times are kept sorted."""
        with self._lock:
            cap = self.settings.cap(bucket)
            if not cap:
                return None
            at = time.monotonic() if at is None else at
            arrivals = self._arrivals.setdefault((account_id, bucket), [])
            bisect.insort(arrivals, at)
            del arrivals[: bisect.bisect_right(arrivals, arrivals[-1] - 2 * WINDOW)]
            calls = bisect.bisect_right(arrivals, at) - bisect.bisect_right(arrivals, at - WINDOW)
            return Refusal(cap, calls) if calls > cap else None
