"""What both client modes share: the options, pacing, and how a session ends."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path

from chatd.limits import TokenBucket


class Exit(enum.IntEnum):
    """The client's exit statuses."""

    OK = 0  # /quit, Ctrl-D, or the end of piped input
    CONNECTION_LOST = 1  # the server shut down or went away
    CANNOT_CONNECT = 2  # refused, unreachable, TLS failure, or bad usage
    LOGIN_FAILED = 3
    INTERRUPTED = 130  # Ctrl-C


@dataclass(frozen=True)
class ClientOptions:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool
    cafile: Path | None
    insecure: bool
    pace: float  # lines a second sent at most, to stay within the server's rate limit


class Pacer:
    """Spaces out what we send so that a paste or a script stays under the rate limit
    (the server's default allows a burst of 20 lines and 5 a second)."""

    BURST = 20

    def __init__(self, per_second: float) -> None:
        self._bucket = TokenBucket(per_second, self.BURST)
        self._interval = 1 / per_second if per_second else 0

    async def wait(self) -> None:
        while not self._bucket.take():
            await asyncio.sleep(self._interval)
