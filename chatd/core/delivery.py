"""From "committed" to "delivered": the one step between the database and the sessions.

The writer commits a batch on its thread and reports it here; a delivery
step brings each committed message to the hub in commit order and wakes
whoever waited for the write. On one box that is a hop from the writer
thread to the event loop (`LocalDelivery`); with several nodes on one
PostgreSQL database, a node learns of every node's commits from the database
itself (`FeedDelivery`), and only this step changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from chatd.core.hub import Hub, Member
from chatd.storage import ERRORS, Connection, connect, engine_of, messages
from chatd.storage.messages import Kind, NewMessage
from chatd.writer import ActionJob, MessageJob, WriteJob

log = logging.getLogger(__name__)


class Delivery(Protocol):
    def committed(self, batch: list[WriteJob]) -> None:
        """A batch is committed (or failed); called on the writer's thread."""


class LocalDelivery:
    """Hands committed batches from the writer thread to the hub on the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hub: Hub,
        not_saved: Callable[[Member], None],
    ) -> None:
        self._loop = loop
        self._hub = hub
        self._not_saved = not_saved  # tells an origin its message was lost

    def committed(self, batch: list[WriteJob]) -> None:
        self._loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: list[WriteJob]) -> None:
        """Deliver the messages of a committed batch in order, then wake each waiter."""
        self._hub.deliver_batch(
            [
                (job.message, job.message_id, job.context[0])
                for job in batch
                if isinstance(job, MessageJob) and job.error is None
            ]
        )
        for job in batch:
            if isinstance(job, MessageJob):
                origin, done = job.context
                if job.error is not None and origin is not None:
                    log.error("message from %s not saved: %s", origin.name, job.error)
                    self._not_saved(origin)
                if done is not None and not done.done():
                    done.set_result(job.error is None)
            else:
                settle_action(job)


def settle_action(job: WriteJob) -> None:
    """Wake whoever waits for a write other than a message, with its result or error."""
    if isinstance(job, ActionJob) and job.context is not None:
        done = job.context
        if done.done():
            return
        if job.error is None:
            done.set_result(job.result)
        else:
            done.set_exception(job.error)
    elif job.error is not None:
        log.error("a database write failed: %s", job.error)


KICK_CHANNEL = "chatd_kicks"  # as in chatd/storage/engines/postgresql.py
_PRESENCE = frozenset((Kind.JOIN, Kind.LEAVE))

# How often the feed reads even without a notification (a lost one costs at most this).
FEED_POLL_S = 1.0
# Messages read per query; more follow at once.
FEED_CHUNK = 2000
# How long to wait before connecting again after the feed's connection was lost.
FEED_RETRY_S = 0.2


class FeedDelivery:
    """Delivers every node's committed messages to the hub, read from the database.

    Message ids commit in order (the PostgreSQL engine inserts them under a
    lock held to the commit), so "the messages with ids after the last one
    delivered, by id" is the truth of what comes next, on every node alike.
    A NOTIFY sent by each such commit is the doorbell; this node's own
    writer rings too (no need to wait for the notice), and a read every
    FEED_POLL_S rings anyway, so a lost notice loses nothing.

    Two threads, each with its own connection: one waits for notices, one
    reads and hands rows to the event loop in order. Local messages keep their
    origin (for `You said:`) by id: the writer reports a batch's ids before
    its commit (`prepared`), and the feed attaches the origin to the row when
    it reads it. A lost connection is opened again and reading resumes after
    the last message read: nothing lost, nothing twice.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hub: Hub,
        not_saved: Callable[[Member], None],
        db: Path | str,
        *,
        poll_s: float = FEED_POLL_S,
        on_presence: Callable[[], None] | None = None,
        on_kick: Callable[[str], None] | None = None,
    ) -> None:
        self._loop = loop
        self._hub = hub
        self._not_saved = not_saved
        self._db = db
        self._poll_s = poll_s
        self._on_presence = on_presence  # told of every login, logout, join and leave
        self._on_kick = on_kick  # a kick's notice, on the event loop
        self._lock = threading.Lock()  # guards _local (writer thread, reader thread)
        self._local: dict[int, Any] = {}  # message id -> its job's context, until read
        self._uncertain: list[MessageJob] = []  # their commit failed, perhaps after the fact
        self._prepared: set[int] = set()  # ids of the batch being committed (writer thread)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reader = threading.Thread(target=self._read, name="chatd-feed", daemon=True)
        self._listener = threading.Thread(target=self._listen, name="chatd-listen", daemon=True)
        self.last_read = 0  # every message up to this id has been read (reader thread)
        self.reconnects = 0

    def start(self) -> int:
        """Connect and start reading after the newest committed message; returns its id."""
        self._conn = connect(self._db)
        self.last_read = messages.last_committed_id(self._conn)
        self._listen_conn: Connection | None = None
        self._reader.start()
        self._listener.start()
        return self.last_read

    def stop(self) -> None:
        """Deliver what is committed by now, then end both threads."""
        self._stopping.set()
        self._wake.set()
        self._reader.join()
        self._listener.join()
        for conn in (self._conn, self._listen_conn):
            if conn is not None:
                _close_quietly(conn)

    # --- on the writer's thread -----------------------------------------------------

    def prepared(self, batch: list[WriteJob]) -> None:
        """A batch is written, not yet committed: remember whose messages these are."""
        self._prepared = {
            job.message_id for job in batch if isinstance(job, MessageJob) and job.error is None
        }
        with self._lock:
            for job in batch:
                if isinstance(job, MessageJob) and job.error is None:
                    self._local[job.message_id] = job.context

    def committed(self, batch: list[WriteJob]) -> None:
        """A batch is committed (or failed): read it now, and settle what is not a message."""
        prepared, self._prepared = self._prepared, set()
        settle: list[WriteJob] = []
        for job in batch:
            if isinstance(job, MessageJob):
                if job.error is None:
                    continue  # settled when the feed reads it
                if job.message_id in prepared:
                    # The commit itself failed: it may have happened all the same (the
                    # connection cut as it answered), and the feed may even have read
                    # it already. The feed's next read tells: the message is there
                    # (delivered as said), or it was not saved.
                    with self._lock:
                        self._uncertain.append(job)
                    continue
                settle.append(job)
            else:
                settle.append(job)
        self._wake.set()
        if settle:
            self._loop.call_soon_threadsafe(self._settle, settle)

    def _settle(self, jobs: list[WriteJob]) -> None:
        for job in jobs:
            if isinstance(job, MessageJob):
                origin, done = job.context
                if origin is not None:
                    log.error("message from %s not saved: %s", origin.name, job.error)
                    self._not_saved(origin)
                if done is not None and not done.done():
                    done.set_result(False)
            else:
                settle_action(job)

    # --- the feed -------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            self._wake.wait(self._poll_s)
            self._wake.clear()
            stopping = self._stopping.is_set()
            with self._lock:
                uncertain, self._uncertain = self._uncertain, []
            try:
                self._read_new()
            except ERRORS as exc:
                log.error("the feed could not read: %s", exc)
                with self._lock:
                    self._uncertain[:0] = uncertain  # decided by the next read
                self._conn = self._reconnect(self._conn)
                self._wake.set()  # read at once once connected
                if not stopping:
                    continue
            self._not_committed(uncertain)
            if stopping:
                return

    def _not_committed(self, uncertain: list[MessageJob]) -> None:
        """After a read begun once their commits had failed: those the read did not
        find were not saved (those it found went out as said)."""
        lost: list[WriteJob] = []
        with self._lock:
            for job in uncertain:
                if self._local.pop(job.message_id, None) is not None:
                    lost.append(job)
        if lost:
            self._loop.call_soon_threadsafe(self._settle, lost)

    def _read_new(self) -> None:
        while True:
            rows = messages.committed_after(self._conn, self.last_read, FEED_CHUNK)
            if not rows:
                return
            chunk: list[tuple[int, NewMessage, Any]] = []
            with self._lock:
                for message_id, message in rows:
                    chunk.append((message_id, message, self._local.pop(message_id, None)))
            self.last_read = rows[-1][0]
            self._loop.call_soon_threadsafe(self._deliver, chunk)
            if len(rows) < FEED_CHUNK:
                return

    def _deliver(self, chunk: list[tuple[int, NewMessage, Any]]) -> None:
        """Hand messages to the hub in commit order; wake whoever waited for them."""
        self._hub.deliver_batch(
            [
                (message, message_id, None if context is None else context[0])
                for message_id, message, context in chunk
            ]
        )
        presence = False
        for _, message, context in chunk:
            done = None if context is None else context[1]
            if done is not None and not done.done():
                done.set_result(True)
            presence = presence or message.kind in _PRESENCE
        if presence and self._on_presence is not None:
            self._on_presence()

    def _listen(self) -> None:
        conn = None
        while not self._stopping.is_set():
            try:
                if conn is None:
                    conn = connect(self._db)
                    engine_of(conn).listen(conn)
                    self._listen_conn = conn
                    self._wake.set()  # whatever came while not listening
                for channel, payload in engine_of(conn).notified(conn, min(self._poll_s, 0.25)):
                    if channel == KICK_CHANNEL:
                        if self._on_kick is not None:
                            self._loop.call_soon_threadsafe(self._on_kick, payload)
                    else:
                        self._wake.set()
            except ERRORS as exc:
                log.error("the feed lost its notices: %s", exc)
                if conn is not None:
                    _close_quietly(conn)
                conn = self._listen_conn = None
                self._stopping.wait(FEED_RETRY_S)

    def _reconnect(self, old: Connection) -> Connection:
        """A new connection for the reader, retrying until one opens or we stop."""
        _close_quietly(old)
        while not self._stopping.is_set():
            try:
                conn = connect(self._db)
            except ERRORS as exc:
                log.error("the feed cannot reconnect: %s", exc)
                self._stopping.wait(FEED_RETRY_S)
                continue
            self.reconnects += 1
            log.warning("the feed reconnected; reading after message %d", self.last_read)
            return conn
        return old  # stopping: the last read fails, and the reader ends


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(*ERRORS):
        conn.close()
