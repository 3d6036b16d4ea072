"""Fault injection: which misbehaviour, if any, the next emulated API request gets.

Rates are probabilities per request, drawn from one seeded ``random.Random`` so a run with the
same seed and the same request order sees the same faults. The rates are mutually exclusive
slices of one draw (their sum must be <= 1), in the order drop_before, error, 429, drop_after,
error_after, 301. ``latency_ms`` is applied on top of whatever else happens. Forced answers
(one-shot, FIFO) win over the rates.

Faults come in two kinds. Before processing (drop_before, error, 429, a forced answer): the
handler never runs, as when a load balancer or MailUp's front door answers. After processing
(drop_after, error_after, a forced answer with ``after_processing``): the handler runs (the SMS
is delivered and charged, the email accepted, the console change applied), then the answer is
lost or replaced by another, as when a gateway times out on a request MailUp already carried
out. Clients cannot tell the two apart from a 5xx, which is the point.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

RATE_ORDER = ("drop_before", "error", "429", "drop_after", "error_after", "301")
AFTER_STATUSES = (500, 502, 504)  # error_after: a crash past the handler, a gateway's 502 or 504


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` itself, once no key is a stranger to ``cls`` (typos must not pass silently)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    return data


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    error_rate: float = 0.0  # half HTTP 500 + code 300, half HTTP 503 + Retry-After, no body
    rate_429: float = 0.0
    retry_after: int = 1  # seconds, sent as the Retry-After header of 429 answers
    drop_before_rate: float = 0.0  # close the socket without processing
    drop_after_rate: float = 0.0  # process, then close the socket without answering
    error_after_rate: float = 0.0  # process, then answer 500 + server error code, 502 or 504
    rate_301: float = 0.0  # SMS delivered and charged, answered Code 301 with DeliveryId 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSettings:
        settings = cls(**_known_fields(cls, data))
        rates = settings.rates()
        if not all(0 <= r <= 1 for r in rates) or sum(rates) > 1:
            raise ValueError("each rate must be in [0, 1] and their sum at most 1")
        if settings.latency_ms < 0 or settings.retry_after < 0:
            raise ValueError("latency_ms and retry_after must be >= 0")
        return settings

    def rates(self) -> tuple[float, ...]:
        """The rates in ``RATE_ORDER``."""
        return (
            self.drop_before_rate,
            self.error_rate,
            self.rate_429,
            self.drop_after_rate,
            self.error_after_rate,
            self.rate_301,
        )


@dataclass(frozen=True)
class ForcedAnswer:
    """A one-shot answer for the next API request whose operation matches (any if None)."""

    http_status: int
    code: str | None = None  # None: empty body
    description: str | None = None  # None: the API family's documented text for ``code``
    operation: str | None = None
    # The Retry-After header: 429s always carry one (None: the settings' retry_after);
    # other statuses only when it is given.
    retry_after: int | None = None
    after_processing: bool = False  # run the handler first, then answer this instead

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForcedAnswer:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class Decision:
    kind: str | None  # None or one of RATE_ORDER, or "forced"
    latency_ms: float = 0.0
    forced: ForcedAnswer | None = None
    status: int | None = None  # the HTTP status of an "error" (500, 503) or "error_after" fault
    retry_after: int = 1

    @property
    def before_processing(self) -> bool:
        """The answer is made up instead of running the handler."""
        if self.forced is not None:
            return not self.forced.after_processing
        return self.kind in ("drop_before", "error", "429")

    @property
    def after_processing(self) -> bool:
        """The handler runs, then its answer is replaced (dropping is the pipeline's own)."""
        if self.forced is not None:
            return self.forced.after_processing
        return self.kind == "error_after"


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(self._seed)
            self.settings = FaultSettings()
            self._forced: deque[ForcedAnswer] = deque()

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings

    def force(self, answer: ForcedAnswer) -> int:
        """Queue a forced answer; returns how many are pending."""
        with self._lock:
            self._forced.append(answer)
            return len(self._forced)

    def pending_forced(self) -> list[ForcedAnswer]:
        with self._lock:
            return list(self._forced)

    def decide(self, operation: str, *, allows_301: bool) -> Decision:
        """The fault for one request; ``allows_301`` says the operation has a 301 answer."""
        with self._lock:
            s = self.settings
            forced = next((f for f in self._forced if f.operation in (None, operation)), None)
            if forced is not None:
                self._forced.remove(forced)
                retry = s.retry_after if forced.retry_after is None else forced.retry_after
                return Decision("forced", s.latency_ms, forced, retry_after=retry)
            draw, cumulative, kind = self._rng.random(), 0.0, None
            for name, rate in zip(RATE_ORDER, s.rates(), strict=True):
                cumulative += rate
                if draw < cumulative:
                    kind = name
                    break
            if kind == "301" and not allows_301:
                kind = None
            status = None
            if kind == "error":
                status = 503 if self._rng.random() < 0.5 else 500
            elif kind == "error_after":
                status = AFTER_STATUSES[int(self._rng.random() * len(AFTER_STATUSES))]
            return Decision(kind, s.latency_ms, None, status, s.retry_after)
