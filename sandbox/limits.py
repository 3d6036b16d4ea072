"""MailUp's per-account API caps (LIMITS.md), enforced as MailUp enforces them.

Two buckets per account: ``sms`` for the SMS send endpoint (``POST sms/{account}/{list}``, at
most 30 calls per second) and ``console`` for every other REST method the sandbox emulates (the
Console API, the SMS ListSecret routes, the transactional ``users/listuserinfo``; at most 5 calls
per second, all of them together). Two interval buckets on top: ``stop`` (stop a sending) and
``delete`` (delete a sending), at most 1 call every 30 seconds each (``stop_delete_interval``; 0:
no such limit); their calls count against ``console`` too, and that cap is asked first.
SendMessage and SendTemplate (limited by the speed bought, per hour, not per second) and the OAuth
token endpoint are not counted. A call over the cap is
answered HTTP 429 with ``Retry-After: 1`` and the family's error body, its description MailUp's
``Max:5 calls per second, actual:10``; it is not processed.

Where LIMITS.md is silent: the window slides over the last 1.0 s of arrival times, and every call
that arrives counts, refused ones included (MailUp's "actual:10" against a cap of 5 counts them
all), so a client that keeps hammering stays refused until it pauses. The application code of a
429 is "429" in every family (no page lists one). Each route names the account it counts against
(``Route.limit_key``); the pipeline asks before anything else, so a refused call never reaches
the handler, draws no fault and consumes no forced answer.

Where LIMITS.md is silent about the interval buckets: the 30 s run from the last call they let
through (what the handler then answers does not matter: a stop of an unknown sending starts the
window too); a call they refuse does not restart it and is answered 429 with ``Retry-After`` the
seconds left, rounded up, and the description ``Max:1 call every 30 seconds, retry in N s``.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

SMS, CONSOLE = "sms", "console"  # the buckets; LimitSettings names each cap "<bucket>_per_second"
STOP, DELETE = "stop", "delete"  # interval buckets: one call per stop_delete_interval, + CONSOLE
INTERVAL_BUCKETS = (STOP, DELETE)
WINDOW = 1.0  # seconds
DEFAULT_STOP_DELETE_INTERVAL = 30  # seconds


@dataclass(frozen=True)
class LimitSettings:
    """Calls per second per account; 0 means no cap. The defaults are MailUp's."""

    sms_per_second: int = 30
    console_per_second: int = 5
    stop_delete_interval: int = DEFAULT_STOP_DELETE_INTERVAL  # seconds between stops (deletes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LimitSettings:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        if not all(type(v) is int and v >= 0 for v in data.values()):
            raise ValueError("each cap must be an integer >= 0 (0: no cap)")
        return cls(**data)

    def view(self) -> dict[str, int]:
        """The settings as the control route answers them: the per-second caps, and the
        stop/delete interval only when it is not MailUp's (older clients of the route know two
        keys)."""
        view = {
            "sms_per_second": self.sms_per_second,
            "console_per_second": self.console_per_second,
        }
        if self.stop_delete_interval != DEFAULT_STOP_DELETE_INTERVAL:
            view["stop_delete_interval"] = self.stop_delete_interval
        return view

    def cap(self, bucket: str) -> int:
        """The per-second cap of ``bucket`` (SMS or CONSOLE)."""
        return int(getattr(self, f"{bucket}_per_second"))


class Refusal(NamedTuple):
    """A call over the cap: the cap and the calls in the window, this one included; for an
    interval bucket, the interval and the seconds left (the Retry-After)."""

    cap: int
    calls: int
    retry_after: int = 1
    interval: int = 0  # seconds; 0: a per-second cap

    @property
    def description(self) -> str:
        if self.interval:
            return (
                f"Max:{self.cap} call every {self.interval} seconds, retry in {self.retry_after} s"
            )
        return f"Max:{self.cap} calls per second, actual:{self.calls}"


class Limits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.settings = LimitSettings()
            self._arrivals: dict[tuple[int, str], list[float]] = {}
            self._accepted: dict[tuple[int, str], float] = {}  # interval bucket -> last let in

    def configure(self, settings: LimitSettings) -> None:
        with self._lock:
            self.settings = settings

    def arrive(self, account_id: int, bucket: str, at: float | None = None) -> Refusal | None:
        """Count a call that arrived for ``account_id`` in ``bucket`` at ``at`` (a monotonic
        time; now when None); a Refusal when the second before it holds more calls than the
        cap. Calls are counted by when they arrived, not by when a busy sandbox got to them:
        those may come in another order, so the times are kept sorted. An interval bucket
        (``INTERVAL_BUCKETS``) counts against ``console`` first, then against its interval."""
        at = time.monotonic() if at is None else at
        with self._lock:
            if bucket in INTERVAL_BUCKETS:
                return self._count(account_id, CONSOLE, at) or self._interval(
                    account_id, bucket, at
                )
            return self._count(account_id, bucket, at)

    def _count(self, account_id: int, bucket: str, at: float) -> Refusal | None:
        cap = self.settings.cap(bucket)
        if not cap:
            return None
        arrivals = self._arrivals.setdefault((account_id, bucket), [])
        bisect.insort(arrivals, at)
        del arrivals[: bisect.bisect_right(arrivals, arrivals[-1] - 2 * WINDOW)]
        calls = bisect.bisect_right(arrivals, at) - bisect.bisect_right(arrivals, at - WINDOW)
        return Refusal(cap, calls) if calls > cap else None

    def _interval(self, account_id: int, bucket: str, at: float) -> Refusal | None:
        """At most one call let through per ``stop_delete_interval`` seconds."""
        interval = self.settings.stop_delete_interval
        if not interval:
            return None
        last = self._accepted.get((account_id, bucket))
        if last is not None and at - last < interval:
            left = min(interval, math.ceil(last + interval - at))
            return Refusal(1, 2, max(left, 1), interval)
        self._accepted[account_id, bucket] = at
        return None
