"""One client's socket, as the event loop sees it: lines in, batched bytes out.

Incoming bytes are framed into lines (bounded, see `wire.LineFramer`) and
queued for the session, which takes them one at a time; when the session
falls behind, reading pauses and TCP pushes back on the client.

Outgoing lines are not written one by one: they are queued, and the server
flushes every connection that has something queued once per turn of the
event loop, so a client gets one `send()` however many lines were produced
for it. A client that does not read fills the kernel's buffer and then ours;
past `sendq_bytes` it is cut off ("SendQ exceeded") so it cannot hold up
anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, cast

from chatd import balancer
from chatd.settings import Settings
from chatd.wire import Frame, LineFramer, encode_line


class ServesConnections(Protocol):
    """A front end as a listener sees it: the protocol its connections speak."""

    def new_framer(self) -> LineFramer:
        """How lines are cut (and bounded) on this protocol."""

    async def serve(self, conn: Connection) -> None:
        """Run one client's session from greeting to goodbye."""

    def error_line(self, text: str) -> str:
        """The line telling a client why the server is closing its connection."""

    def shutdown_line(self) -> str:
        """The line telling a client the server is shutting down."""


class ConnectionOwner(Protocol):
    """What a connection needs from the server that accepted it."""

    settings: Settings

    def connection_opened(self, conn: Connection) -> None: ...

    def connection_closed(self, conn: Connection) -> None: ...

    def logged_in(self, conn: Connection) -> None: ...

    def queue_flush(self, conn: Connection) -> None: ...


log = logging.getLogger(__name__)

# Lines a session may have waiting before we stop reading from its socket.
_PAUSE_READING_AT = 64
_RESUME_READING_AT = 16
# The kernel's send buffer per socket. Left alone, Linux grows it up to 4 MB
# for a client that does not read; fixed, `sendq_bytes` is the real bound on
# what a stalled client can cost. Chat needs little bandwidth per client.
_SOCKET_SEND_BUFFER = 64 * 1024


class Connection(asyncio.Protocol):
    """The asyncio protocol for one client socket."""

    def __init__(
        self,
        server: ConnectionOwner,
        front_end: ServesConnections,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.front_end = front_end  # the protocol of the listener that accepted it
        self.tls = tls  # the listener's TLS, begun by the server (start_tls)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.address = ""  # the client's IP address, for per-address limits
        self._framer = front_end.new_framer()
        self._frames: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._input_ended = False
        self._reading_paused = False
        self._outgoing: list[bytes] = []
        self._flush_queued = False
        self._held: list[bytes] | None = None  # output held back (see hold_output)
        self.opened_at = time.monotonic()
        self.heard_from = False  # a whole line has come from the client
        self.checking = False  # its login is waiting for or in a bcrypt check
        self.gone = False  # the socket is closed or closing: sends are dropped
        self.close_reason = ""  # why the server cut the client off, if it did

    # --- asyncio's callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_SEND_BUFFER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.address = str(peer[0])
            self.peer = f"{peer[0]}:{peer[1]}"
        if self.tls is not None:
            # Not a byte may reach us before the TLS layer is in place (start_tls).
            self.transport.pause_reading()
        if balancer.intercept(self):
            return  # from a load balancer: opened once its PROXY header names the client
        self.server.connection_opened(self)

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> bool:
        """Run the TLS handshake as the server; False (and closed) if it fails or times out."""
        try:
            tls_transport = await asyncio.get_running_loop().start_tls(
                self._transport, self, context, server_side=True, ssl_handshake_timeout=timeout
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("%s: TLS handshake failed: %s", self.peer, exc or type(exc).__name__)
            tls_transport = None
        if tls_transport is None:
            # The TLS layer owned the socket: it will not tell us it closed.
            self.abort()
            self.connection_lost(None)
            return False
        self.transport = tls_transport
        return True

    def data_received(self, data: bytes) -> None:
        frames = self._framer.feed(data)
        if not frames:
            return
        self.heard_from = True
        self._frames.extend(frames)
        self._wake_reader()
        if len(self._frames) >= _PAUSE_READING_AT and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        # The client will send nothing more, but it may still be reading:
        # keep the socket open until its session has answered every line.
        self.end_input()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self._outgoing.clear()
        self.end_input()
        self.server.connection_closed(self)

    # --- for the session --------------------------------------------------------

    async def next_frame(self) -> Frame | None:
        """The next line (or framing error) the client sent; None once it sends no more."""
        while not self._frames:
            if self._input_ended:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self._frames.popleft()
        if (
            self._reading_paused
            and len(self._frames) <= _RESUME_READING_AT
            and not self._input_ended  # stop_reading() means for good
            and not self.gone
        ):
            self._reading_paused = False
            self._transport.resume_reading()
        return frame

    def end_input(self) -> None:
        """Take no more lines: the session sees the end of input once it has read what came."""
        self._input_ended = True
        self._wake_reader()

    def stop_reading(self, *, keep_received: bool = False) -> None:
        """Read no more from the socket; the lines received so far are dropped, or kept
        for the session to answer (at shutdown)."""
        if not keep_received:
            self._frames.clear()
        if not self.gone and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        self.end_input()

    def logged_in(self) -> None:
        """The client is logged in: login deadlines no longer apply."""
        self.server.logged_in(self)

    @contextmanager
    def checking_login(self) -> Iterator[None]:
        """While a login waits its turn for bcrypt, the client is not the slow one."""
        self.checking = True
        try:
            yield
        finally:
            self.checking = False

    def hold_output(self) -> None:
        """Keep what is sent from now on until `release_output`."""
        self._held = []

    def release_output(self, first: list[str]) -> None:
        """Send `first`, then everything held back meanwhile."""
        held, self._held = self._held or [], None
        self.send_bytes(b"".join([*(encode_line(line) for line in first), *held]))

    def drop_held_output(self) -> None:
        """Forget what was held back, and send as usual again (the session ends before
        it was let in: its last line must go out)."""
        self._held = None

    def send(self, text: str) -> None:
        self.send_bytes(encode_line(text))

    def send_lines(self, lines: list[str]) -> None:
        self.send_bytes(b"".join(encode_line(line) for line in lines))

    def send_bytes(self, data: bytes) -> None:
        """Queue bytes for this client; they leave at the end of this turn of the loop."""
        if self.gone:
            return
        if self._held is not None:
            self._held.append(data)
            return
        self._outgoing.append(data)
        if not self._flush_queued:
            self._flush_queued = True
            self.server.queue_flush(self)

    def flush(self) -> None:
        """Hand everything queued to the socket in one write."""
        self._flush_queued = False
        if self.gone or not self._outgoing:
            self._outgoing.clear()
            return
        outgoing = self._outgoing
        data = outgoing[0] if len(outgoing) == 1 else b"".join(outgoing)
        outgoing.clear()
        transport = self._transport
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.settings.sendq_bytes:
            log.warning("%s: SendQ exceeded, disconnecting a client that does not read", self.peer)
            self.abort("SendQ exceeded")

    def close(self) -> None:
        """Send what is queued, then close."""
        if self.gone:
            return
        self.flush()
        self.gone = True
        self._transport.close()

    def abort(self, reason: str = "") -> None:
        """Close at once, dropping whatever has not been sent."""
        if reason and not self.close_reason:
            self.close_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self.gone = True
        self._outgoing.clear()
        self.end_input()

    # --- inside ---------------------------------------------------------------

    @property
    def _transport(self) -> asyncio.Transport:
        assert self.transport is not None, "used before connection_made"
        return self.transport

    def _wake_reader(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
