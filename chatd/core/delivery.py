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
import bisect
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from chatd.core.hub import Hub, Member
from chatd.storage import ERRORS, FeedConnection, connect, connect_feed, messages
from chatd.storage.engines.base import KICK_CHANNEL
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
        """Deliver the messages of a committed batch in order, then wake each waiter
        (whatever delivering did: a session waiting for its answer must not hang)."""
        try:
            self._hub.deliver_batch(
                [
                    (job.message, job.message_id, job.context[0])
                    for job in batch
                    if isinstance(job, MessageJob) and job.error is None
                ]
            )
        finally:
            settle(batch, self._not_saved)


def settle(jobs: list[WriteJob], not_saved: Callable[[Member], None]) -> None:
    """Wake whoever waits for each write: a message's sender with whether it was saved
    (told `not_saved` if not), a write of another kind with its result or error."""
    for job in jobs:
        if isinstance(job, MessageJob):
            origin, done = job.context
            if job.error is not None and origin is not None:
                log.error("message from %s not saved: %s", origin.name, job.error)
                try:
                    not_saved(origin)
                except Exception:  # the others must still be settled
                    log.exception("error while telling %s", origin.name)
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


_PRESENCE = frozenset((Kind.JOIN, Kind.LEAVE))

# How often the feed reads even without a notification (a lost one costs at most this).
FEED_POLL_S = 1.0
# Messages read per query; more follow at once.
FEED_CHUNK = 2000
# How long to wait before connecting again after the feed's connection was lost;
# doubled after each failure in a row, up to FEED_RETRY_MAX_S (a database away for
# long is tried, and logged, a few times a second at first, then every 2 s).
FEED_RETRY_S = 0.2
FEED_RETRY_MAX_S = 2.0


class FeedDelivery:
    """Delivers every node's committed messages to the hub, read from the database.

    Message ids commit in order (the PostgreSQL engine inserts them under a
    lock held to the commit), so "the messages with ids after the last one
    delivered, by id" is the truth of what comes next, on every node alike.
    A NOTIFY sent by each such commit is the doorbell; this node's own
    writer rings too (no need to wait for the notice), and a read every
    FEED_POLL_S rings anyway, so a lost notice loses nothing.

    The feed runs on the event loop, with two connections of psycopg's
    AsyncConnection: the loop watches the listening one's socket and takes its
    notices as they arrive, and a task reads and hands the rows to the hub, in
    order, as soon as they come. No thread stands between the database and the
    hub: with threads (a listener waking a reader, which woke the loop) each
    hop could wait up to the GIL's switch interval (5 ms) while the loop was
    busy delivering, and cross-node latency paid for three.

    This node's own batch needs no read when its ids follow the last message
    delivered: nothing can come between, so it goes to the hub as the writer
    reports it, as on one box. Otherwise (another node's messages came first,
    or ids were skipped) the reader reads. Local messages keep their origin
    (for `You said:`) by id: the writer reports a batch's ids before its
    commit (`prepared`), and the feed attaches the origin to the row when it
    reads it. A lost connection is opened again and reading resumes after the
    last message read: nothing lost, nothing twice. A commit that failed may
    have happened all the same (the answer lost); the next read decides.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hub: Hub,
        not_saved: Callable[[Member], None],
        db: str,
        *,
        poll_s: float = FEED_POLL_S,
        on_presence: Callable[[], None] | None = None,
        on_kick: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._hub = hub
        self._not_saved = not_saved
        self._db = db
        self._poll_s = poll_s
        self._on_presence = on_presence  # told of every login, logout, join and leave
        self._on_kick = on_kick  # a kick's notice came (the kick itself is a row)
        self._lock = threading.Lock()  # guards _local and _uncertain (writer thread, loop)
        self._local: dict[int, Any] = {}  # message id -> its job's context, until read
        self._uncertain: list[MessageJob] = []  # their commit failed, perhaps after the fact
        self._prepared: set[int] = set()  # ids of the batch being committed (writer thread)
        self._wake = asyncio.Event()  # read now (loop only, like everything below)
        self._stopping = False
        self.last_read = 0  # every message up to this id has been delivered

    def start(self) -> int:
        """Start reading after the newest committed message; returns its id. On the loop."""
        conn = connect(self._db)
        try:
            self.last_read = messages.last_committed_id(conn)
        finally:
            conn.close()
        self._reader = self._loop.create_task(self._read(), name="chatd-feed")
        self._listener = self._loop.create_task(self._listen(), name="chatd-listen")
        return self.last_read

    async def stop(self) -> None:
        """Deliver what is committed by now (call it once the writer has stopped), then
        end both tasks."""
        self._stopping = True
        self._wake.set()
        await self._reader  # its last read, then it ends
        self._listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._listener

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
        now: list[WriteJob] = []  # settled at once
        said: list[tuple[int, NewMessage]] = []
        uncertain = False
        for job in batch:
            if isinstance(job, MessageJob):
                if job.error is None:
                    said.append((job.message_id, job.message))  # settled once delivered
                    continue
                if job.message_id in prepared:
                    # The commit itself failed: it may have happened all the same (the
                    # connection cut as it answered), and the feed may even have read
                    # it already. The feed's next read tells: the message is there
                    # (delivered as said), or it was not saved.
                    with self._lock:
                        self._uncertain.append(job)
                    uncertain = True
                    continue
            now.append(job)
        self._loop.call_soon_threadsafe(self._after_commit, now, said, uncertain)

    # --- on the event loop ------------------------------------------------------------

    def _after_commit(
        self, now: list[WriteJob], said: list[tuple[int, NewMessage]], uncertain: bool
    ) -> None:
        """This node's batch is committed: deliver it at once if its ids follow the last
        message delivered, else have the reader read (as it must to decide commits
        that failed)."""
        settle(now, self._not_saved)
        first = self.last_read + 1
        if said and said[0][0] == first and said[-1][0] == first + len(said) - 1:
            # Ids are handed out under a lock held to the commit, so no other node's
            # message can come between: the batch is what comes next, read or not.
            # (A read under way skips what is delivered meanwhile.)
            with self._lock:
                chunk = [(id_, message, self._local.pop(id_, None)) for id_, message in said]
            self.last_read = said[-1][0]
            self._deliver(chunk)
        elif said or uncertain:
            self._wake.set()

    async def _read(self) -> None:
        """Read whatever was committed after the last message read, whenever woken (or
        every poll_s), and deliver it; connect again whenever the connection is lost."""
        conn: FeedConnection | None = None
        lost_once = False
        retry_s = FEED_RETRY_S
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()
            stopping = self._stopping
            with self._lock:
                uncertain, self._uncertain = self._uncertain, []
            try:
                if conn is None:
                    conn = await connect_feed(self._db)
                    if lost_once:
                        log.warning(
                            "the feed reconnected; reading after message %d", self.last_read
                        )
                await self._read_new(conn, uncertain)
            except ERRORS as exc:
                lost_once = True
                log.error("the feed could not read: %s", exc)
                with self._lock:
                    self._uncertain[:0] = uncertain  # decided by the next read
                if conn is not None:
                    await _close_quietly(conn)
                    conn = None
                if stopping:
                    return
                await asyncio.sleep(retry_s)
                retry_s = min(2 * retry_s, FEED_RETRY_MAX_S)
                self._wake.set()  # read at once, on a new connection
                continue
            except Exception:  # a bug must not end delivery between nodes for good
                log.exception("the feed failed after message %d", self.last_read)
                with self._lock:
                    self._uncertain[:0] = uncertain
                if stopping:
                    if conn is not None:
                        await _close_quietly(conn)
                    return
                await asyncio.sleep(retry_s)
                retry_s = min(2 * retry_s, FEED_RETRY_MAX_S)
                self._wake.set()
                continue
            retry_s = FEED_RETRY_S
            self._not_committed(uncertain)
            if stopping:
                await _close_quietly(conn)
                return

    async def _read_new(self, conn: FeedConnection, uncertain: list[MessageJob]) -> None:
        """Deliver what was committed after the last message read. A message whose
        commit failed (`uncertain`) and whose id is below one read was not saved (the
        later one took the ids lock after its transaction ended): its sender is told
        so before the later messages go out, so answers keep the order of lines."""
        while True:
            rows = await messages.committed_after(conn, self.last_read, FEED_CHUNK)
            full = len(rows) == FEED_CHUNK
            # This node's own batches may have been delivered while the query ran.
            rows = [row for row in rows if row[0] > self.last_read]
            if rows:
                self.last_read = rows[-1][0]
                with self._lock:
                    chunk = [(id_, message, self._local.pop(id_, None)) for id_, message in rows]
                    if self._uncertain:
                        # Commits that failed while the query ran, below what it found:
                        # as decided as the others (their transactions had ended).
                        later: list[MessageJob] = []
                        for job in self._uncertain:
                            (uncertain if job.message_id < self.last_read else later).append(job)
                        self._uncertain = later
                self._deliver_around(chunk, uncertain)
            if not full:
                return

    def _deliver_around(
        self, chunk: list[tuple[int, NewMessage, Any]], uncertain: list[MessageJob]
    ) -> None:
        """Deliver a chunk read, telling the senders of failed commits among its ids that
        theirs were not saved at their places in it (unless the chunk holds them)."""
        start = 0
        if uncertain:
            ids = [id_ for id_, _, _ in chunk]
            for job in sorted(uncertain, key=lambda job: job.message_id):
                if job.message_id > ids[-1]:
                    break
                end = bisect.bisect(ids, job.message_id)
                self._deliver_on(chunk[start:end])
                start = end
                self._not_committed([job])  # unless it was read just now
        self._deliver_on(chunk[start:])

    def _deliver_on(self, chunk: list[tuple[int, NewMessage, Any]]) -> None:
        """Deliver, whatever goes wrong in delivering: the feed must outlive any bug."""
        if not chunk:
            return
        try:
            self._deliver(chunk)
        except Exception:
            log.exception("error while delivering messages up to %d", chunk[-1][0])

    def _not_committed(self, uncertain: list[MessageJob]) -> None:
        """After a read begun once their commits had failed: those the read did not
        find were not saved (those it found went out as said, or are about to);
        each is settled once, whoever asks again."""
        lost: list[WriteJob] = []
        with self._lock:
            for job in uncertain:
                if self._local.pop(job.message_id, None) is not None:
                    lost.append(job)
        settle(lost, self._not_saved)

    def _deliver(self, chunk: list[tuple[int, NewMessage, Any]]) -> None:
        """Hand messages to the hub in commit order; wake whoever waited for them (even
        if delivering raised: a session waiting for its answer must not hang)."""
        try:
            self._hub.deliver_batch(
                [
                    (message, message_id, None if context is None else context[0])
                    for message_id, message, context in chunk
                ]
            )
        finally:
            self._delivered(chunk)

    def _delivered(self, chunk: list[tuple[int, NewMessage, Any]]) -> None:
        presence = False
        for _, message, context in chunk:
            done = None if context is None else context[1]
            if done is not None and not done.done():
                done.set_result(True)
            presence = presence or message.kind in _PRESENCE
        if presence and self._on_presence is not None:
            self._on_presence()

    async def _listen(self) -> None:
        """Be told of every commit (the reader wakes) and kick (on_kick): the loop watches
        the listening connection's socket and takes its notices as they arrive. Ends
        when cancelled (stop)."""
        retry_s = FEED_RETRY_S
        while True:
            try:
                conn = await connect_feed(self._db)
            except ERRORS as exc:
                log.error("the feed cannot listen: %s", exc)
                await asyncio.sleep(retry_s)
                retry_s = min(2 * retry_s, FEED_RETRY_MAX_S)
                continue
            lost: asyncio.Future[BaseException] = self._loop.create_future()
            listening_since = self._loop.time()
            try:
                await conn.listen()
                self._wake.set()  # whatever came while not listening
                socket = conn.fileno()
                self._loop.add_reader(socket, self._notices, conn, lost)
                try:
                    why = await lost
                finally:
                    self._loop.remove_reader(socket)
            except ERRORS as exc:
                why = exc
            finally:
                await _close_quietly(conn)
            log.error("the feed lost its notices: %s", why)
            if self._loop.time() - listening_since > FEED_RETRY_MAX_S:
                retry_s = FEED_RETRY_S  # it had worked: a cut, not a server turning us away
            await asyncio.sleep(retry_s)
            retry_s = min(2 * retry_s, FEED_RETRY_MAX_S)

    def _notices(self, conn: FeedConnection, lost: asyncio.Future[BaseException]) -> None:
        """The listening socket is readable: notices, or the connection's end."""
        try:
            notices = conn.notices()
        except ERRORS as exc:
            if not lost.done():
                lost.set_result(exc)
            return
        for channel, _ in notices:
            if channel != KICK_CHANNEL:
                self._wake.set()
            elif self._on_kick is not None:
                self._on_kick()


async def _close_quietly(conn: FeedConnection) -> None:
    with contextlib.suppress(*ERRORS):
        await conn.close()
