"""A one-line progress report on a terminal (rows read, queued, refused, rate); nothing
when stderr is piped or redirected, so scripts see only what they asked for."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, what: str, *, every: float = 0.2) -> None:
        self._what = what
        self._every = every
        self._shown = sys.stderr.isatty()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._counts = (0, 0, 0)

    def __call__(self, read: int, queued: int, rejected: int) -> None:
        self._counts = (read, queued, rejected)
        if time.monotonic() - self._drawn >= self._every:
            self._draw()

    def done(self) -> None:
        self._draw()
        if self._shown:
            sys.stderr.write("\n")

    def _draw(self) -> None:
        if not self._shown:
            return
        self._drawn = time.monotonic()
        read, queued, rejected = self._counts
        rate = read / max(self._drawn - self._started, 1e-6)
        sys.stderr.write(
            f"\r{self._what}: {read:,} rows read · {queued:,} queued · {rejected:,} refused · "
            f"{rate:,.0f} rows/s"
        )
        sys.stderr.flush()
