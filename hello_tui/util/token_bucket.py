"""One token bucket for every rate limit: the server's per-connection frames,
chat per direction, a shared terminal's input and its view budget.

A steady ``rate`` (tokens a second) with ``burst`` saved up at most; a rate
of 0 or less, or infinite, means no limit. The clock is injectable so tests
drive time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; :meth:`take` spends them."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0 or math.isinf(self.rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, n: float = 1.0) -> bool:
        """Spend ``n`` tokens if that many are left; False: refuse (nothing spent)."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def spend(self, n: float) -> bool:
        """Spend ``n`` if anything at all is left (the balance may go below zero:
        a cost known only afterwards is paid back by waiting)."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens <= 0:
            return False
        self._tokens -= n
        return True
