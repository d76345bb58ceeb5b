"""A token bucket for the broker's request limit (Alpaca: 200 requests per minute)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate_per_minute`` tokens a minute, at most ``capacity`` saved up.

    ``try_take`` never waits: the engine loop must not block, so a call that finds the
    bucket empty is deferred to a later loop instead.
    """

    def __init__(
        self,
        rate_per_minute: float,
        capacity: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def try_take(self, n: float = 1.0) -> bool:
        if self.available() >= n:
            self._tokens -= n
            return True
        return False

    def seconds_until(self, n: float = 1.0) -> float:
        """How long until ``n`` tokens are there (0 when they are now)."""
        return max(0.0, (n - self.available()) / self.rate)
