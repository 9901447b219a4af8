"""Rate limits: how fast a client may send, and how often a login may fail."""

from __future__ import annotations

import time
from collections import OrderedDict


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


class LoginRefusedError(Exception):
    """Too many recent failed logins for this address or name: the attempt is not checked."""


class LoginThrottle:
    """Slows down, then refuses, logins for an address or an account with recent failures.

    Each client address and each account name (as typed, whether it exists or
    not, so the throttle reveals nothing) counts its failed logins; a count is
    forgotten `forget_s` after its last failure. Past its threshold, every
    further attempt first waits 1 s, 2 s, 4 s, ...; once the wait would pass
    `max_delay_s` the attempt is refused outright, without spending a bcrypt
    check on it.

    On an account, an attempt counts as a failure from the moment it begins,
    so a hundred guesses sent at once see the count climb as they arrive
    instead of all slipping in under it; a success clears the account's count.
    An address counts only real failures: a class behind one NAT address
    logging in at once must not look like an attack, and parallel guesses
    from one address are bounded by its connection limit anyway. A success
    does not clear the address (an attacker could reset it with an account
    of their own).
    """

    MAX_TRACKED = 100_000  # addresses and names remembered at most, oldest forgotten first

    def __init__(
        self, *, per_account: int, per_address: int, max_delay_s: float, forget_s: float
    ) -> None:
        self._thresholds = {"address": per_address, "account": per_account}
        self._max_delay_s = max_delay_s
        self._forget_s = forget_s
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def begin(self, address: str, account: str) -> float | None:
        """Start an attempt: how long it must wait before it is checked, or None if it
        is refused (a refused attempt is not counted)."""
        keys = (("address", address), ("account", account.lower()))
        excess = max(self._count(*key) - self._thresholds[key[0]] for key in keys)
        wait = 0.0 if excess < 0 else 2.0**excess
        if wait > self._max_delay_s:
            return None
        self._add(keys[1])
        return wait

    def failed(self, address: str) -> None:
        """The attempt begun from `address` was wrong."""
        self._add(("address", address))

    def succeeded(self, account: str) -> None:
        """The attempt was right: forgive the account."""
        self._failures.pop(("account", account.lower()), None)

    def _add(self, key: tuple[str, str]) -> None:
        self._failures[key] = (self._count(*key) + 1, time.monotonic())
        self._failures.move_to_end(key)
        while len(self._failures) > self.MAX_TRACKED:
            self._failures.popitem(last=False)

    def _count(self, kind: str, name: str) -> int:
        entry = self._failures.get((kind, name))
        if entry is None:
            return 0
        count, last = entry
        if time.monotonic() - last > self._forget_s:
            del self._failures[(kind, name)]
            return 0
        return count
