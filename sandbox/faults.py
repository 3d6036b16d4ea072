"""Fault injection: which misbehaviour, if any, the next emulated API request gets.

Rates are probabilities per request, drawn from one seeded ``random.Random`` so a run with the
same seed and the same request order sees the same faults. The rates are mutually exclusive
slices of one draw (their sum must be <= 1), in the order drop_before, error, 429, drop_after,
301. ``latency_ms`` is applied on top of whatever else happens. Forced answers (one-shot, FIFO)
win over the rates.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

RATE_ORDER = ("drop_before", "error", "429", "drop_after", "301")


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` itself, once no key is a stranger to ``cls`` (typos must not pass silently)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    return data


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    error_rate: float = 0.0  # half HTTP 500 + code 300, half HTTP 503 with an empty body
    rate_429: float = 0.0
    retry_after: int = 1  # seconds, sent as the Retry-After header of 429 answers
    drop_before_rate: float = 0.0  # close the socket without processing
    drop_after_rate: float = 0.0  # process, then close the socket without answering
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
            self.rate_301,
        )


@dataclass(frozen=True)
class ForcedAnswer:
    """A one-shot answer for the next API request whose operation matches (any if None)."""

    http_status: int
    code: str | None = None  # None: empty body
    description: str | None = None  # None: the API family's documented text for ``code``
    operation: str | None = None
    retry_after: int | None = None  # for 429s; None: the current settings' retry_after

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForcedAnswer:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class Decision:
    kind: str | None  # None or one of RATE_ORDER, or "forced"
    latency_ms: float = 0.0
    forced: ForcedAnswer | None = None
    error_503: bool = False  # for kind "error": 503 empty body rather than 500 code 300
    retry_after: int = 1


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
            error_503 = kind == "error" and self._rng.random() < 0.5
            return Decision(kind, s.latency_ms, None, error_503, s.retry_after)
