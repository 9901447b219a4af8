"""The chat server: listens, admits or refuses connections, starts and stops everything.

Who owns what:

* the event loop: every socket (`connection.py`), every session (the line
  protocol's `line/`) and the hub (`core/hub.py`: who is online, rooms and
  their members). Only this thread touches them, so they need no lock, and a
  delivery never meets a list that is changing under it;
* `core/service.py` owns the other threads: the writer (`writer.py`), which
  commits in groups and hands each committed batch to the delivery step
  (`core/delivery.py`), with a checkpointer beside it; bcrypt workers and read
  workers (`workers.py`), each thread with its own database connection;
* the log writer (`logconfig.py`), so that a slow stderr never blocks.

This module keeps to the edge: listening, the limits on connections and on
logins in progress, retention, and a graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import ssl
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

from chatd import accounts
from chatd.accounts import PasswordHasher
from chatd.clock import now_us
from chatd.connection import Connection, ServesConnections
from chatd.core.hub import Member
from chatd.core.service import ChatService
from chatd.irc.frontend import IrcFrontEnd
from chatd.line.frontend import LineFrontEnd
from chatd.settings import Settings
from chatd.storage import ERRORS, ConnectError, MigrationError, describe, open_database, retention

log = logging.getLogger(__name__)

_HOUR_S = 3600.0
_LOGIN_TOO_SLOW = "login took too long; disconnecting."  # the line protocol's exact wording
_DAY_US = 86_400_000_000


# What opening and migrating the database may raise, whichever the engine.
_OPEN_ERRORS: tuple[type[Exception], ...] = (*ERRORS, OSError, MigrationError)


class StartupError(RuntimeError):
    """The server could not start; the message says why, in one line."""


class ChatServer:
    """One chatd server. Create it, `await start()`, then `await serve()`."""

    def __init__(
        self, settings: Settings, *, on_ready: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.port = 0
        self.irc_port: int | None = None  # where the IRC listeners listen, if they do
        self.irc_tls_port: int | None = None
        self.closing = False
        self.tls: ssl.SSLContext | None = None
        self.service = ChatService(settings, self._not_saved)
        self.line = LineFrontEnd(self.service)
        self.irc = IrcFrontEnd(self.service)
        self._listeners: list[asyncio.Server] = []
        self._on_ready = on_ready
        self._connections: set[Connection] = set()
        self._per_address: Counter[str] = Counter()
        self._logging_in: dict[Connection, None] = {}  # not logged in yet, oldest first
        self._tasks: set[asyncio.Task[None]] = set()
        self._to_flush: list[Connection] = []
        self._flush_scheduled = False

    # --- starting and stopping ------------------------------------------------

    async def start(self) -> None:
        """Prepare the database, start the worker threads and listen."""
        self._loop = asyncio.get_running_loop()
        log.debug("event loop: %s", type(self._loop).__module__.partition(".")[0])
        self._stop_requested = asyncio.Event()
        self._all_closed = asyncio.Event()
        _raise_open_files_limit(self.settings.max_connections + 64)
        self.tls = _tls_context(self.settings)
        await self._loop.run_in_executor(None, self._prepare_database)
        self.service.start(self._loop)
        self._background = [self._loop.create_task(self._close_slow_logins())]
        if self.settings.retention_days:
            self._background.append(self._loop.create_task(self._keep_retention()))
        settings = self.settings
        self.port = await self._listen(settings.port, self.line, self.tls)
        if settings.irc_port is not None:
            self.irc_port = await self._listen(settings.irc_port, self.irc, None)
        if settings.irc_tls_port is not None:
            self.irc_tls_port = await self._listen(settings.irc_tls_port, self.irc, self.tls)
        if self._on_ready is not None:
            self._on_ready(f"[+] Server started on port {self.port}")

    async def _listen(
        self, port: int, front_end: ServesConnections, tls: ssl.SSLContext | None
    ) -> int:
        """Accept connections speaking `front_end`'s protocol on `port`; returns the port."""
        try:
            listener = await self._loop.create_server(
                lambda: Connection(self, front_end, tls),
                self.settings.host,
                port,
                backlog=1024,
                reuse_address=True,
            )
        except OSError as exc:
            for earlier in self._listeners:
                earlier.close()
            await self._stop_workers()
            where = f"{self.settings.host}:{port}"
            raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        self._listeners.append(listener)
        bound = int(listener.sockets[0].getsockname()[1])
        what = type(front_end).__name__.removesuffix("FrontEnd").lower()
        log.info(
            "%s%s: listening on %s port %d", what, " (TLS)" * bool(tls), self.settings.host, bound
        )
        return bound

    def _not_saved(self, member: Member) -> None:
        """Tell a session, in its own protocol, that its message was not stored."""
        if member.frontend is self.irc:
            self.irc.not_saved(member)
        else:
            LineFrontEnd.not_saved(member)

    def _prepare_database(self) -> None:
        """Create or migrate the database, then add the users file's new accounts."""
        try:
            conn = open_database(self.settings.db)
        except ConnectError as exc:  # already names the database, without a password
            raise StartupError(str(exc)) from None
        except _OPEN_ERRORS as exc:
            where = describe(self.settings.db)
            raise StartupError(f"cannot open database {where}: {exc}") from None
        try:
            path = self.settings.users_file
            if path.is_file():
                entries = accounts.read_users_file(path)
                hasher = PasswordHasher(self.settings.bcrypt_rounds)
                result = accounts.import_users(conn, entries, hasher)
                log.info("%s: %d accounts added, %d existed", path, result.added, result.existing)
        except accounts.UsersFileError as exc:
            raise StartupError(str(exc)) from None
        finally:
            conn.close()

    async def serve(self) -> None:
        """Serve until `request_stop()`, then shut down gracefully."""
        await self._stop_requested.wait()
        await self._shut_down()

    def request_stop(self) -> None:
        """Begin a graceful shutdown; safe from signal handlers and other threads."""
        self._loop.call_soon_threadsafe(self._stop_requested.set)

    async def _shut_down(self) -> None:
        log.info("shutting down: %d connections", len(self._connections))
        self.closing = True
        self.service.hub.quiet_joins_above = -1  # nobody needs a notice of everyone leaving
        for listener in self._listeners:
            listener.close()  # accept no one new
        for conn in list(self._connections):
            conn.send(conn.front_end.shutdown_line())
            conn.stop_reading(keep_received=True)
        # Each session answers the lines it has already received (their
        # messages are committed and acknowledged), sees the end of its
        # input and leaves.
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await self.service.flush()  # every earlier write is now committed
        except ERRORS as exc:  # the database is unreachable: what failed was said to fail
            log.error("the last writes could not be committed: %s", exc)
        for conn in list(self._connections):
            conn.close()
        if self._connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), self.settings.shutdown_grace_s)
            except TimeoutError:
                for conn in list(self._connections):
                    conn.abort()
        await self._stop_workers()
        log.info("stopped")

    async def _stop_workers(self) -> None:
        for task in self._background:
            task.cancel()
        await self.service.stop()

    # --- connections --------------------------------------------------------------

    def connection_opened(self, conn: Connection) -> None:
        """A client connected: refuse it if a limit says so, else start its session."""
        refusal = self._refusal(conn.address)
        if refusal:
            log.warning("%s: refused: %s", conn.peer, refusal)
            if conn.tls is None:  # a TLS client could not read a plain-text reason
                conn.send(conn.front_end.error_line(refusal))
            conn.close()
            return
        self._connections.add(conn)
        self._per_address[conn.address] += 1
        self._logging_in[conn] = None
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._session_ended)

    def _refusal(self, address: str) -> str:
        """Why a new connection from `address` cannot be taken ("" if it can)."""
        if self.closing:
            return "the server is shutting down."
        if self._per_address[address] >= self.settings.max_per_address:
            return "too many connections from your address."
        if len(self._connections) >= self.settings.max_connections and not self._make_room():
            return "the server is full; try again later."
        return ""

    def _make_room(self) -> bool:
        """The server is full: close a connection that is not logged in, if there is one,
        to take the newcomer instead.

        Connections cost an attacker nothing to open and to keep half logged in,
        so they must never keep out someone who wants to log in. The one that
        goes is, in this order: silent rather than typing, from the address
        holding the most connections (a flood's, not a classroom's), the oldest.
        A login whose password is being checked is never closed: it is about to
        leave the queue anyway.
        """
        waiting = [conn for conn in self._logging_in if not conn.checking]
        if not waiting:
            return False
        victim = max(
            waiting,
            key=lambda conn: (
                not conn.heard_from,
                self._per_address[conn.address],
                -conn.opened_at,
            ),
        )
        what = "it had sent nothing" if not victim.heard_from else "it had not logged in"
        log.info("%s: closed to make room: %s", victim.peer, what)
        self._close_pending(victim, "the server is full; closing connections not logged in.")
        return True

    async def _close_slow_logins(self) -> None:
        """Close connections that take too long to log in.

        A connection that has sent nothing within `silent_deadline_s` is closed
        (a flood of idle sockets expires fast); one that is logging in has
        `login_deadline_s`, not counting its wait for a bcrypt check (a class
        logging in at once waits its turn). One sweep a second (or more often for
        short deadlines) instead of a timer per connection: the pending logins are
        kept oldest first, so a sweep stops at the first one still in time.
        """
        silent_s, login_s = self.settings.silent_deadline_s, self.settings.login_deadline_s
        while True:
            await asyncio.sleep(min(1.0, silent_s / 4, login_s / 4))
            now = time.monotonic()
            for conn in list(self._logging_in):
                waited = now - conn.opened_at
                if waited < min(silent_s, login_s):
                    break
                if not conn.heard_from:
                    log.info("%s: closed: sent nothing for %.0f s", conn.peer, silent_s)
                    self._close_pending(conn, _LOGIN_TOO_SLOW)
                elif waited >= login_s and not conn.checking:
                    log.info("%s: login deadline passed", conn.peer)
                    self._close_pending(conn, _LOGIN_TOO_SLOW)

    def _close_pending(self, conn: Connection, why: str) -> None:
        """Close a connection that has not logged in, telling it `why` in its protocol."""
        del self._logging_in[conn]
        conn.send(conn.front_end.error_line(why))
        conn.stop_reading()
        conn.close()

    async def _serve(self, conn: Connection) -> None:
        # With TLS, the handshake runs here, in this connection's own task
        # and under its own deadline: a client that never finishes it holds
        # up no one, and it was counted against the limits before it began.
        if conn.tls is not None and not await conn.start_tls(
            conn.tls, self.settings.tls_handshake_s
        ):
            return
        await conn.front_end.serve(conn)

    def logged_in(self, conn: Connection) -> None:
        self._logging_in.pop(conn, None)

    def connection_closed(self, conn: Connection) -> None:
        if conn not in self._connections:
            return
        self._connections.remove(conn)
        self._logging_in.pop(conn, None)
        self._per_address[conn.address] -= 1
        if self._per_address[conn.address] <= 0:
            del self._per_address[conn.address]
        if self.closing and not self._connections:
            self._all_closed.set()

    def _session_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a session failed", exc_info=task.exception())

    def queue_flush(self, conn: Connection) -> None:
        """Have `conn` send its queued lines at the end of this turn of the loop."""
        self._to_flush.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        to_flush, self._to_flush = self._to_flush, []
        for conn in to_flush:
            conn.flush()

    # --- retention ----------------------------------------------------------------

    async def _keep_retention(self) -> None:
        """Delete messages older than `retention_days`, now and every hour."""
        while True:
            before = now_us() - self.settings.retention_days * _DAY_US
            deleted = 0
            while True:  # one chunk per write: the chat's commits go in between
                chunk = await self.service.write(partial(retention.purge_chunk, before=before))
                deleted += chunk
                if chunk < retention.CHUNK:
                    break
            if deleted:
                days = self.settings.retention_days
                log.info("retention: deleted %d messages older than %d days", deleted, days)
            await asyncio.sleep(_HOUR_S)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot load the TLS certificate or key: {exc}") from None
    return context


def _raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor; lift the soft limit toward what we may need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Run a server in the foreground until SIGINT or SIGTERM, then shut down gracefully."""

    async def main() -> None:
        server = ChatServer(settings, on_ready=on_ready)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        await server.start()
        await server.serve()

    with asyncio.Runner(loop_factory=event_loop_factory(settings)) as runner:
        runner.run(main())


def event_loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (the same asyncio API, with the loop's
    own work done in C), else asyncio's; CHATD_EVENT_LOOP=asyncio forces asyncio's.

    A server with a TLS port runs on asyncio's: a TLS connection is counted and
    admitted before its handshake, which starts on the connection's own task, so
    nothing may be read from the socket in between. asyncio's loop honours a
    pause from `connection_made`; uvloop starts reading right after it anyway.
    """
    if os.environ.get("CHATD_EVENT_LOOP", "") == "asyncio" or settings.tls_cert is not None:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
