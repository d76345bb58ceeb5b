"""Exponential backoff with jitter, shared by the provider clients and the router's supervisor.

Equal jitter (half fixed, half random) keeps retries spread out, so several workers that
lost the same upstream at the same moment do not reconnect in lock step, while still
guaranteeing a minimum wait that grows with each consecutive failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Delay before retry number ``attempt`` (1-based); ``rand`` in [0, 1).

    ``capped = min(cap, base · 2^(attempt−1))``; the result lies in [capped/2, capped].
    """
    if attempt < 1:
        return 0.0
    capped = min(cap, base * (2.0 ** min(attempt - 1, 30)))
    return capped / 2.0 + capped / 2.0 * rand


@dataclass
class Backoff:
    """Counts consecutive failures; ``reset()`` after a success (data flowed)."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.attempt += 1
        return backoff_delay(self.attempt, self.base, self.cap, self.rng.random())

    def reset(self) -> None:
        self.attempt = 0
