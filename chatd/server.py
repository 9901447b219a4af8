"""The chat server: accepts connections, keeps track of who is online, fans messages out.

Threads, and what each one owns:

* the event loop (this module, `connection.py`, `session.py`): every socket,
  every session and the lists of who is online. Only this thread touches
  them, so they need no lock, and a broadcast never meets a list that is
  changing under it;
* the writer (`writer.py`): the database's write connection, committing
  messages in groups and handing each committed group back to the loop,
  which then acknowledges and fans it out; beside it a checkpointer thread
  copies the WAL back into the database file;
* bcrypt workers (`workers.py`, `Settings.hash_workers` of them): password
  checks, which release the GIL, so logins never stall the chat;
* read workers: /history and user lookups, each thread with its own
  connection (WAL lets them read while the writer writes);
* the log writer (`logconfig.py`), so that a slow stderr never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sqlite3
import ssl
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from chatd import accounts, replies
from chatd.accounts import LoginResult, PasswordHasher
from chatd.clock import now_us
from chatd.connection import Connection
from chatd.limits import LoginRefusedError, LoginThrottle
from chatd.session import Session
from chatd.settings import Settings
from chatd.storage import messages, open_database, users
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.users import User
from chatd.wire import encode_line
from chatd.workers import WorkerPool, no_connection
from chatd.writer import ActionJob, GroupCommitWriter, MessageJob, WriteJob

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads for /history and user lookups; they wait on SQLite, not on the CPU.
_READ_WORKERS = 2


class StartupError(RuntimeError):
    """The server could not start; the message says why, in one line."""


class ChatServer:
    """One chatd server. Create it, `await start()`, then `await serve()`."""

    def __init__(
        self, settings: Settings, *, on_ready: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.port = 0
        self.closing = False
        self.tls: ssl.SSLContext | None = None
        self.hasher = PasswordHasher(settings.bcrypt_rounds)
        self._on_ready = on_ready
        self._connections: set[Connection] = set()
        self._per_address: Counter[str] = Counter()
        self._logging_in: dict[Connection, None] = {}  # not logged in yet, oldest first
        self._throttle = LoginThrottle(
            per_account=settings.throttle_account_after,
            per_address=settings.throttle_address_after,
            max_delay_s=settings.throttle_max_delay_s,
            forget_s=settings.throttle_forget_s,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._chatting: dict[Session, None] = {}  # logged-in sessions, in order of arrival
        self._online: dict[str, list[Session]] = {}  # lower-case name -> that user's sessions
        self._to_flush: list[Connection] = []
        self._flush_scheduled = False

    # --- starting and stopping ------------------------------------------------

    async def start(self) -> None:
        """Prepare the database, start the worker threads and listen."""
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._all_closed = asyncio.Event()
        _raise_open_files_limit(self.settings.max_connections + 64)
        self.tls = _tls_context(self.settings)
        await self._loop.run_in_executor(None, self._prepare_database)
        self._writer = GroupCommitWriter(
            self.settings.db, self._committed_elsewhere, batch_max=self.settings.commit_batch
        )
        self._writer.start()
        self._reads = WorkerPool(_READ_WORKERS, "chatd-read", self.settings.db)
        self._hashing = WorkerPool(self.settings.hash_workers, "chatd-bcrypt", self.settings.db)
        self._reads.start(self._loop)
        self._hashing.start(self._loop)
        # Make the decoy hash for unknown users now, so the first one costs no more.
        self._hashing.run(no_connection(lambda: self.hasher.decoy_hash))
        self._sweeper = self._loop.create_task(self._close_slow_logins())
        try:
            self._listener = await self._loop.create_server(
                lambda: Connection(self),
                self.settings.host,
                self.settings.port,
                backlog=1024,
                reuse_address=True,
            )
        except OSError as exc:
            await self._stop_workers()
            where = f"{self.settings.host}:{self.settings.port}"
            raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        self.port = self._listener.sockets[0].getsockname()[1]
        log.info("listening on %s port %d", self.settings.host, self.port)
        if self._on_ready is not None:
            self._on_ready(f"[+] Server started on port {self.port}")

    def _prepare_database(self) -> None:
        """Create or migrate the database, then add the users file's new accounts."""
        try:
            conn = open_database(self.settings.db)
        except (sqlite3.Error, OSError) as exc:
            raise StartupError(f"cannot open database {self.settings.db}: {exc}") from None
        try:
            path = self.settings.users_file
            if path.is_file():
                entries = accounts.read_users_file(path)
                result = accounts.import_users(conn, entries, self.hasher)
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
        self._listener.close()  # accept no one new
        for conn in list(self._connections):
            conn.send(replies.SHUTTING_DOWN)
            conn.stop_reading(keep_received=True)
        # Each session answers the lines it has already received (their
        # messages are committed and acknowledged), sees the end of its
        # input and leaves.
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._write(lambda conn: None)  # every earlier write is now committed
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
        self._sweeper.cancel()
        for stop in (self._writer.stop, self._reads.stop, self._hashing.stop):
            await self._loop.run_in_executor(None, stop)

    # --- connections --------------------------------------------------------------

    def connection_opened(self, conn: Connection) -> None:
        """A client connected: refuse it if a limit says so, else start its session."""
        refusal = self._refusal(conn.address)
        if refusal:
            log.warning("%s: refused: %s", conn.peer, refusal)
            if self.tls is None:  # a TLS client could not read a plain-text reason
                conn.send(replies.error(refusal))
            conn.close()
            return
        self._connections.add(conn)
        self._per_address[conn.address] += 1
        self._logging_in[conn] = None
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._session_ended)

    async def _close_slow_logins(self) -> None:
        """Close connections that have not logged in within login_deadline_s.

        One sweep a second (or more often for short deadlines) instead of a
        timer per connection: the pending logins are kept oldest first, so a
        sweep stops at the first one still in time.
        """
        deadline = self.settings.login_deadline_s
        while True:
            await asyncio.sleep(min(1.0, deadline / 4))
            cutoff = time.monotonic() - deadline
            while self._logging_in:
                conn = next(iter(self._logging_in))
                if conn.opened_at > cutoff:
                    break
                del self._logging_in[conn]
                log.info("%s: login deadline passed", conn.peer)
                conn.send(replies.LOGIN_TOO_SLOW)
                conn.stop_reading()
                conn.close()

    async def _serve(self, conn: Connection) -> None:
        # With TLS, the handshake runs here, in this connection's own task
        # and under its own deadline: a client that never finishes it holds
        # up no one, and it was counted against the limits before it began.
        if self.tls is not None and not await conn.start_tls(
            self.tls, self.settings.tls_handshake_s
        ):
            return
        await Session(self, conn).run()

    def _refusal(self, address: str) -> str:
        if self.closing:
            return "the server is shutting down."
        if len(self._connections) >= self.settings.max_connections:
            return "the server is full; try again later."
        if self._per_address[address] >= self.settings.max_per_address:
            return "too many connections from your address."
        if len(self._logging_in) >= self.settings.max_pending_logins:
            return "too many logins in progress; try again in a moment."
        return ""

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

    # --- who is online ------------------------------------------------------------

    def enter(self, session: Session) -> int:
        """A session has logged in; returns how many users are online now."""
        self._logging_in.pop(session.conn, None)
        self._chatting[session] = None
        sessions = self._online.setdefault(session.name.lower(), [])
        sessions.append(session)
        if len(sessions) == 1:
            self._record(Kind.JOIN, session)
        return len(self._online)

    def leave(self, session: Session) -> None:
        """A logged-in session has ended."""
        self._chatting.pop(session, None)
        key = session.name.lower()
        sessions = self._online.get(key, [])
        if session in sessions:
            sessions.remove(session)
            if not sessions:
                del self._online[key]
                self._record(Kind.LEAVE, session, session.leave_reason)

    def online_names(self) -> list[str]:
        """Each online user once, sorted."""
        return sorted((s[0].name for s in self._online.values()), key=str.casefold)

    def kick(self, username: str, *, by: str, reason: str) -> int:
        """Disconnect every session of a user; returns how many there were."""
        sessions = list(self._online.get(username.lower(), []))
        why = f" ({reason})" if reason else ""
        for session in sessions:
            session.leave_reason = f"was kicked by {by}{why}"
            session.conn.send(replies.notice(f"You were kicked by {by}{why}."))
            session.conn.stop_reading()
            session.conn.close()
        if sessions:
            log.info("%s kicked %s%s", by, username, why)
        return len(sessions)

    async def find_user(self, username: str) -> User | None:
        """An account by name: from the online sessions, else from the database."""
        sessions = self._online.get(username.lower())
        if sessions and sessions[0].user is not None:
            return sessions[0].user
        if not accounts.is_valid_username(username):
            return None
        return await self._read(users.find, username)

    # --- logins and passwords ---------------------------------------------------

    async def authenticate(self, username: str, password: str, conn: Connection) -> User | None:
        """Check a login on a bcrypt worker; None for every kind of failure.

        Raises LoginRefusedError, without checking, while this address or name
        has failed too often lately; before that, each attempt may be delayed.
        """
        wait = self._throttle.begin(conn.address, username)
        if wait is None:
            log.warning("%s: login as %r refused: too many failures", conn.peer, username[:40])
            raise LoginRefusedError
        if wait:
            await asyncio.sleep(wait)
        result = await self._hashing.run(self._check_login, username, password)
        if result is None:
            self._throttle.failed(conn.address)
            log.info("%s: failed login as %r", conn.peer, username[:40])
            return None
        self._throttle.succeeded(username)
        self._writer.submit(ActionJob(partial(_record_login, result=result)))
        log.info("%s: %s logged in", conn.peer, result.user.username)
        return result.user

    def _check_login(
        self, conn: sqlite3.Connection, username: str, password: str
    ) -> LoginResult | None:
        return accounts.authenticate(conn, self.hasher, username, password)

    async def change_password(self, session: Session, current: str, new: str) -> bool:
        """Change a user's password if `current` is right."""
        if await self._hashing.run(self._check_login, session.name, current) is None:
            return False
        new_hash = await self._hashing.run(no_connection(self.hasher.hash), new)
        await self._write(
            partial(users.set_password, username=session.name, password_hash=new_hash)
        )
        log.info("%s changed their password", session.name)
        return True

    # --- messages -----------------------------------------------------------------

    async def post(self, message: NewMessage, origin: Session | None = None) -> bool:
        """Store a message, then deliver it; True once both are done."""
        done: asyncio.Future[bool] = self._loop.create_future()
        self._writer.submit(MessageJob(message, (origin, done)))
        return await done

    async def history_lines(self, session: Session, limit: int) -> list[str]:
        """The session's user's last `limit` history entries as lines, in local time."""
        assert session.user is not None
        return await self._read(messages.history_lines, session.user.id, limit)

    def _record(self, kind: Kind, session: Session, body: str = "") -> None:
        """Store a join or leave; its notice goes out once it is committed."""
        assert session.user is not None
        message = NewMessage(now_us(), kind, session.user.id, session.name, body)
        self._writer.submit(MessageJob(message, (None, None)))

    def _committed_elsewhere(self, batch: list[WriteJob]) -> None:
        # Runs on the writer thread: hand the batch to the event loop.
        self._loop.call_soon_threadsafe(self._committed, batch)

    def _committed(self, batch: list[WriteJob]) -> None:
        """A batch is on disk: acknowledge and fan out each message, wake each waiter."""
        for job in batch:
            if isinstance(job, MessageJob):
                origin, done = job.context
                if job.error is None:
                    self._deliver(job.message, origin)
                elif origin is not None:
                    log.error("message from %s not saved: %s", origin.name, job.error)
                    origin.conn.send(replies.NOT_SAVED)
                if done is not None and not done.done():
                    done.set_result(job.error is None)
            elif isinstance(job, ActionJob) and job.context is not None:
                done = job.context
                if done.done():
                    continue
                if job.error is None:
                    done.set_result(job.result)
                else:
                    done.set_exception(job.error)
            elif job.error is not None:
                log.error("a database write failed: %s", job.error)

    def _deliver(self, message: NewMessage, origin: Session | None) -> None:
        """Send a committed message to whoever should see it."""
        match message.kind:
            case Kind.PUBLIC:
                self._deliver_public(message, origin)
            case Kind.PRIVATE:
                self._deliver_private(message, origin)
            case Kind.ANNOUNCE:
                line = encode_line(replies.announcement(message.sender, message.body))
                for session in self._chatting:
                    session.conn.send_bytes(line)
            case Kind.JOIN | Kind.LEAVE:
                self._deliver_notice(message)

    def _deliver_public(self, message: NewMessage, origin: Session | None) -> None:
        # Encoded once, whoever the audience: the hot path of the whole server.
        to_others = encode_line(replies.public(message.sender, message.body))
        for session in self._chatting:
            if session is origin:
                session.conn.send(replies.you_said(message.body))
            else:
                session.conn.send_bytes(to_others)

    def _deliver_private(self, message: NewMessage, origin: Session | None) -> None:
        assert message.recipient is not None
        recipients = self._online.get(message.recipient.lower(), [])
        for session in recipients:
            if session is not origin:
                session.conn.send(replies.private_from(message.sender, message.body))
        if origin is not None:
            ack = replies.private_sent(message.recipient, message.body)
            if not recipients:
                ack += f"  ({message.recipient} is not online; they will see it in /history)"
            origin.conn.send(ack)

    def _deliver_notice(self, message: NewMessage) -> None:
        """Joins and leaves, unless the room is too big for them to be news (SPEC §4)."""
        if self.closing or len(self._online) > self.settings.quiet_joins_above:
            return
        what = "joined" if message.kind is Kind.JOIN else message.body
        line = encode_line(replies.notice(f"{message.sender} {what}"))
        for session in self._chatting:
            if session.name != message.sender:
                session.conn.send_bytes(line)

    # --- database helpers -----------------------------------------------------

    async def _read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a read query on a read worker, with that thread's own connection."""
        return await self._reads.run(query, *args)

    async def _write(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write on the writer thread, in its next batch."""
        done: asyncio.Future[T] = self._loop.create_future()
        self._writer.submit(ActionJob(action, done))
        return await done


def _record_login(conn: sqlite3.Connection, *, result: LoginResult) -> None:
    users.record_login(conn, result.user.id, now_us(), result.upgraded_hash)


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

    asyncio.run(main())
