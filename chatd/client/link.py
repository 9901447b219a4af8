"""The client's side of the wire: one line connection to a chatd server, and logging in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from chatd.line import replies

CONNECT_TIMEOUT_S = 10.0
_READ_LIMIT = 1 << 20  # the longest line we accept from a server


class ConnectError(OSError):
    """The server could not be reached."""


class LoginFailedError(Exception):
    """The server refused the username and password."""


class ServerLink:
    """Lines to and from one chatd server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None) -> ServerLink:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=_READ_LIMIT
                ),
                CONNECT_TIMEOUT_S,
            )
        except TimeoutError:
            raise ConnectError(f"cannot connect to {host}:{port}: timed out") from None
        except socket.gaierror as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror}") from None
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS with {host}:{port} failed: {exc.reason or exc}") from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConnectError(f"cannot connect to {host}:{port}: {reason}") from None
        return cls(reader, writer)

    async def read_line(self) -> str | None:
        """The next line from the server, or None once it has closed the connection."""
        try:
            raw = await self._reader.readline()
        except ValueError:  # longer than _READ_LIMIT: keep what fits
            raw = await self._reader.read(_READ_LIMIT)
        except (ConnectionError, ssl.SSLError):
            return None
        if not raw:
            return None
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def send(self, line: str) -> None:
        self._writer.write(line.encode("utf-8") + b"\n")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.drain()  # a lost connection is reported by the read side

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.wait_closed()


def tls_context(cafile: Path | None, *, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def log_in(
    link: ServerLink,
    ask_credentials: Callable[[], Awaitable[tuple[str, str]]],
    show: Callable[[str], None],
) -> str:
    """Answer the server's Username:/Password: prompts; return its welcome line.

    `ask_credentials` is asked again after each failure, for as long as the
    server allows; LoginFailedError when it gives up (or `ask_credentials`
    raises it). Other lines before the prompts (the greeting) go to `show`.
    """
    failure = ""
    username, password = "", ""
    while True:
        line = await link.read_line()
        if line is None:
            raise LoginFailedError(failure or "the server closed the connection")
        if line.startswith(replies.ASK_USERNAME):
            username, password = await ask_credentials()
            await link.send(username)
        elif line.startswith(replies.ASK_PASSWORD):
            await link.send(password)
        elif line.startswith("Welcome, "):
            return line
        elif line.startswith("Login failed"):
            failure = line
            show(line)
        else:
            show(line)
