"""When to try again: full-jitter exponential backoff, bounded, honouring Retry-After."""

from __future__ import annotations

import random


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    Full jitter (a uniform draw up to the exponential bound) spreads the retries of many
    jobs that failed together; MailUp's Retry-After is a floor, never shortened.
    """
    bound = min(cap, base * 2 ** max(attempt - 1, 0))
    delay = (rng or random).uniform(0, bound)
    return max(delay, retry_after or 0.0)
