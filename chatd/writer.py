"""The database writer: one thread owns the write connection and commits in groups.

Sessions hand it jobs (a message to store, or a small write such as a
password change). It takes everything that has queued up since its last
commit, writes it in one transaction, and then reports the whole batch at
once. Under load, batches grow by themselves: while one commit runs, the
next batch gathers. A message is acknowledged and fanned out only from that
report, so whatever a client was told was said is on disk.

On SQLite it also keeps the WAL short (Checkpointer). On PostgreSQL a batch
is one transaction of the server's; if the connection is lost, the batch's
jobs fail and the writer connects again. A failed COMMIT may have happened
all the same (the answer lost with the connection): the feed's next read of
the database decides whether those messages are said or not saved
(chatd/core/delivery.py).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatd.storage import ERRORS, Connection, connect, engine_of, messages, savepoint
from chatd.storage.messages import NewMessage

log = logging.getLogger(__name__)


class WriteJob:
    """Something to write. `error` is set if it could not be; `context` is the submitter's."""

    __slots__ = ("context", "error")

    def __init__(self, context: Any = None) -> None:
        self.context = context
        self.error: BaseException | None = None


class MessageJob(WriteJob):
    """A message to store; once committed, `message_id` is its id."""

    __slots__ = ("message", "message_id")

    def __init__(self, message: NewMessage, context: Any = None) -> None:
        super().__init__(context)
        self.message = message
        self.message_id = 0


class ActionJob(WriteJob):
    """A write other than a message: `action(connection)` runs inside the batch's transaction."""

    __slots__ = ("action", "result")

    def __init__(self, action: Callable[[Connection], Any], context: Any = None) -> None:
        super().__init__(context)
        self.action = action
        self.result: Any = None


_STOP = object()

# How often the WAL is copied back into the database file (see Checkpointer).
CHECKPOINT_INTERVAL_S = 1.0
# Past this many pages (16 MiB) the writer restarts the WAL itself (see Checkpointer).
WAL_RESTART_PAGES = 4096


class GroupCommitWriter:
    """Commits queued jobs in batches on its own thread, then calls `on_committed(batch)`.

    `on_committed` runs on the writer thread; the server passes one that hands
    the batch to its event loop. `before_commit(batch)`, if given, runs on the
    writer thread inside the transaction, once the batch's ids are known.
    """

    def __init__(
        self,
        db_path: Path | str,
        on_committed: Callable[[list[WriteJob]], None],
        *,
        batch_max: int = 1024,
        before_commit: Callable[[list[WriteJob]], None] | None = None,
    ) -> None:
        self._db_path = db_path
        self._on_committed = on_committed
        self._before_commit = before_commit
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[WriteJob | list[WriteJob] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chatd-writer", daemon=True)
        self.batches = 0  # counters for the logs and the benchmarks
        self.jobs = 0
        self.last_message_id = 0  # the newest message id when the writer started

    def start(self) -> None:
        self._conn = connect(self._db_path)
        self.last_message_id = messages.last_id(self._conn)
        self._checkpointer: Checkpointer | None = None
        if isinstance(self._conn, sqlite3.Connection):
            # Checkpoints happen on their own thread, not inside a commit.
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = Checkpointer(Path(self._db_path))
            self._checkpointer.start()
        self._thread.start()

    def submit(self, job: WriteJob) -> None:
        self._queue.put(job)

    def submit_all(self, jobs: list[WriteJob]) -> None:
        """Several jobs at once, in order: one hand-over (and one wake-up) for all."""
        self._queue.put(jobs)

    def stop(self) -> None:
        """Write everything submitted so far, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._conn.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[WriteJob] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, list):
                    batch += item
                else:
                    assert isinstance(item, WriteJob)
                    batch.append(item)
                if len(batch) >= self._batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            if self._checkpointer is not None and self._checkpointer.wal_is_long:
                self._restart_wal(self._checkpointer)

    def _commit(self, batch: list[WriteJob]) -> None:
        try:
            self._write(batch)
        except ERRORS as exc:  # the whole transaction failed: disk full, I/O error, no server
            log.error("could not commit %d writes: %s", len(batch), exc)
            for job in batch:
                job.error = job.error or exc
        self.batches += 1
        self.jobs += len(batch)
        try:
            self._on_committed(batch)
        except Exception:  # the writer must outlive any bug in a callback
            log.exception("error while reporting a committed batch")

    def _write(self, batch: list[WriteJob]) -> None:
        """Write a batch in one transaction: all at once, or, if anything in it fails,
        one job at a time.

        The fast path costs BEGIN, one INSERT for all the messages, and COMMIT:
        on PostgreSQL each statement is a round trip, and each round trip of
        this thread may wait for the GIL while the event loop is busy. One bad
        job (say, a message from an account removed meanwhile) must not sink
        the others, so on an error the batch is rolled back and written again
        with each job in a savepoint of its own, failing only that job.
        """
        unreachable = self._reconnect_if_lost()
        if unreachable is not None:
            raise unreachable  # the batch fails at once; the next one tries again
        begin = engine_of(self._conn).begin
        try:
            self._conn.execute(begin)
        except ERRORS:
            if not engine_of(self._conn).is_lost(self._conn):
                raise
            # Lost while idle (PostgreSQL restarted since the last batch): nothing
            # is written yet, so the batch goes on a new connection.
            unreachable = self._reconnect_if_lost()
            if unreachable is not None:
                raise unreachable from None
            self._conn.execute(begin)
        try:
            try:
                self._write_together(batch)
            except Exception:
                self._conn.execute("ROLLBACK")
                self._conn.execute(begin)
                for job in batch:
                    self._write_alone(job)
            if self._before_commit is not None:  # ids known, not yet visible to others
                self._before_commit(batch)
        except BaseException:
            with contextlib.suppress(*ERRORS):  # a lost connection has nothing to roll back
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _reconnect_if_lost(self) -> Exception | None:
        """If the connection was lost (PostgreSQL restarted, or the connection was cut),
        open a new one. Returns why not if the database is still away (one try per
        batch: a server that does not answer costs each batch one connect timeout)."""
        if not engine_of(self._conn).is_lost(self._conn):
            return None
        try:
            conn = connect(self._db_path)
        except ERRORS as exc:
            log.error("database still unreachable: %s", exc)
            return exc
        self._conn.close()
        self._conn = conn
        log.warning("reconnected to the database")
        return None

    def _restart_wal(self, checkpointer: Checkpointer) -> None:
        """Checkpoint from the writer itself, so that its next commit starts the WAL over.

        The background checkpointer has just copied nearly everything, so this
        has little left to copy and sync.
        """
        checkpointer.wal_is_long = False
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.debug("WAL restart skipped: %s", exc)

    def _write_together(self, batch: list[WriteJob]) -> None:
        stored = [job for job in batch if isinstance(job, MessageJob)]
        ids = messages.insert_many(self._conn, (job.message for job in stored))
        for message_id, message_job in zip(ids, stored, strict=True):
            message_job.message_id = message_id
        for job in batch:
            if isinstance(job, ActionJob):
                job.result = job.action(self._conn)

    def _write_alone(self, job: WriteJob) -> None:
        try:
            with savepoint(self._conn, "job"):
                if isinstance(job, MessageJob):
                    job.message_id = messages.insert(self._conn, job.message)
                elif isinstance(job, ActionJob):
                    job.result = job.action(self._conn)
        except Exception as exc:
            job.error = exc


class Checkpointer:
    """Copies committed pages from the WAL back into the database file, every second.

    SQLite does this by itself every 1,000 pages, but inside whichever commit
    crosses the mark, and a checkpoint syncs the database file to disk: the
    messages waiting for that commit were delivered 10-15 ms late (p99 at
    40,000 deliveries/s went from 1.7 ms to 14 ms). A PASSIVE checkpoint on a
    connection of its own runs beside the writer instead of in its way.

    It cannot shorten the WAL, though: SQLite starts the WAL over only when a
    writer begins right after a checkpoint that copied every page, and under
    steady load the writer has always added more by then. So once the WAL
    passes WAL_RESTART_PAGES this raises `wal_is_long`, and the writer, between
    two batches, runs the (by then small) last checkpoint itself.
    """

    def __init__(self, db_path: Path, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._db_path = db_path
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatd-checkpoint", daemon=True)
        self.wal_is_long = False

    def start(self) -> None:
        self._conn = connect(self._db_path)
        self.last_message_id = messages.last_id(self._conn)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._checkpoint()  # leave the WAL short for the next start
        self._conn.close()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            _, wal_pages, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # busy or locked: the next round catches up
            log.debug("checkpoint skipped: %s", exc)
            return
        if wal_pages >= WAL_RESTART_PAGES:
            self.wal_is_long = True
