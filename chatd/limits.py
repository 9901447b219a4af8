"""Rate limits: how much a client may ask of the server, and how fast."""

from __future__ import annotations

import time


class TokenBucket:
    """Allows bursts of `burst` events and `rate` events a second sustained; rate 0: no limit."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one; False means "too fast"."""
        if self.rate == 0:
            return True
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
