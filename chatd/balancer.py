"""Connections through a load balancer: its PROXY header is read before anything else.

From an address `--proxy-protocol-from` lists, a connection must begin with
a PROXY header (v1 or v2, parsed by `proxy.py`), and the client it names
becomes the connection's `address` and `peer` *before* the server admits
it: per-address limits, the login throttle and log lines all see the real
client, and the balancer's own address is never counted. The header comes
before TLS, as HAProxy and nginx send it, and is read exactly: never a byte
past its end, which belongs to the TLS handshake or to the client's first
line. A listed connection without a valid header within
`HEADER_DEADLINE_S` is closed with the reason logged and nothing sent: the
balancer is misconfigured, and no client of it could read a reason.

From any other address, a plain-text connection that starts like a PROXY
header is refused with one error line and a log line: an unlisted balancer
must not pass off its clients' addresses, and an operator who forgot to
list theirs sees why at once. (On a TLS port such a connection simply fails
its handshake, which is logged too.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chatd import proxy

if TYPE_CHECKING:
    from chatd.connection import Connection

log = logging.getLogger(__name__)

# A balancer sends its header as soon as it connects, so this is generous;
# connections still waiting for one are not yet counted against any limit.
HEADER_DEADLINE_S = 5.0
REFUSED = "Error: PROXY protocol is not accepted from your address."


def intercept(conn: Connection) -> bool:
    """Screen the start of a new connection, from `connection_made` (its reading paused if
    TLS is to start). True: it comes from a listed balancer, and the server hears of it
    (`connection_opened`) once its header has named the client."""
    transport = conn.transport
    assert transport is not None, "called from connection_made"
    # The TLS layer (start_tls) reads what follows the header, if TLS comes next.
    tls_next = conn.tls is not None
    spec = conn.server.settings.proxy_protocol_from
    if spec and proxy.is_listed(conn.address, proxy.parse_networks(spec)):
        transport.set_protocol(_HeaderReader(conn, transport, tls_next=tls_next))
        transport.resume_reading()  # the header comes before TLS
        return True
    if not tls_next:
        transport.set_protocol(_HeaderRefuser(conn, transport))
    return False


class _HeaderReader(asyncio.BufferedProtocol):
    """Reads a listed balancer's PROXY header, then hands the socket to its connection."""

    def __init__(self, conn: Connection, transport: asyncio.Transport, *, tls_next: bool) -> None:
        self._conn = conn
        self._transport = transport
        self._tls_next = tls_next
        self._buffer = bytearray(proxy.V2_FIXED + proxy.V2_MAX_PAYLOAD)
        self._received = 0
        self._wanted = proxy.SHORTEST  # what the next read may take: never past the header
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(HEADER_DEADLINE_S, self._too_slow)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buffer)[self._received : self._received + self._wanted]

    def buffer_updated(self, nbytes: int) -> None:
        self._received += nbytes
        try:
            result = proxy.parse_header(bytes(self._buffer[: self._received]))
        except proxy.ProxyHeaderError as exc:
            self._close(f"bad PROXY header: {exc}")
            return
        if isinstance(result, proxy.NeedMore):
            self._wanted = result.at_least
            return
        self._deadline.cancel()
        conn = self._conn
        if result.client is not None:
            address, port = result.client
            log.debug("%s: PROXY header: the client is %s port %d", conn.peer, address, port)
            conn.address, conn.peer = address, f"{address}:{port}"
        if self._tls_next:
            self._transport.pause_reading()  # until start_tls puts the TLS layer in place
        self._transport.set_protocol(conn)
        conn.server.connection_opened(conn)

    def eof_received(self) -> bool:
        if self._received:
            log.warning("%s: closed: it ended inside its PROXY header", self._conn.peer)
        else:  # a balancer's plain TCP health check
            log.debug("%s: closed before sending a PROXY header", self._conn.peer)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        self._conn.connection_lost(exc)

    def _too_slow(self) -> None:
        self._close(f"no PROXY header within {HEADER_DEADLINE_S:g} s")

    def _close(self, reason: str) -> None:
        log.warning("%s: closed: %s", self._conn.peer, reason)
        self._deadline.cancel()
        self._transport.abort()


class _HeaderRefuser(asyncio.Protocol):
    """Watches the first bytes from an unlisted address: a PROXY header is refused, anything
    else goes to the connection as if nothing had been in between."""

    def __init__(self, conn: Connection, transport: asyncio.Transport) -> None:
        self._conn = conn
        self._transport = transport
        self._start = b""  # at most the 12 bytes of a v2 signature

    def data_received(self, data: bytes) -> None:
        self._start += data
        verdict = proxy.starts_like_header(self._start)
        if verdict is None:  # a prefix of a signature: no line can be complete yet
            return
        self._transport.set_protocol(self._conn)
        if verdict:
            log.warning(
                "%s: refused: a PROXY header, from an address --proxy-protocol-from does not list",
                self._conn.peer,
            )
            self._conn.send(REFUSED)
            self._conn.stop_reading()
            self._conn.close()
        else:
            self._conn.data_received(self._start)

    def eof_received(self) -> bool:
        self._transport.set_protocol(self._conn)
        if self._start:
            self._conn.data_received(self._start)
        return bool(self._conn.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.connection_lost(exc)
