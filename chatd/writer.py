"""The database writer: one thread owns the write connection and commits in groups.

Sessions hand it jobs (a message to store, or a small write such as a
password change). It takes everything that has queued up since its last
commit, writes it in one transaction, and then reports the whole batch at
once. Under load, batches grow by themselves: while one commit runs, the
next batch gathers. A message is acknowledged and fanned out only from that
report, so whatever a client was told was said is on disk.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatd.storage import connect, messages, savepoint, transaction
from chatd.storage.messages import NewMessage

log = logging.getLogger(__name__)


class WriteJob:
    """Something to write. `error` is set if it could not be; `context` is the submitter's."""

    __slots__ = ("context", "error")

    def __init__(self, context: Any = None) -> None:
        self.context = context
        self.error: BaseException | None = None


class MessageJob(WriteJob):
    __slots__ = ("message",)

    def __init__(self, message: NewMessage, context: Any = None) -> None:
        super().__init__(context)
        self.message = message


class ActionJob(WriteJob):
    """A write other than a message: `action(connection)` runs inside the batch's transaction."""

    __slots__ = ("action", "result")

    def __init__(self, action: Callable[[sqlite3.Connection], Any], context: Any = None) -> None:
        super().__init__(context)
        self.action = action
        self.result: Any = None


_STOP = object()


class GroupCommitWriter:
    """Commits queued jobs in batches on its own thread, then calls `on_committed(batch)`.

    `on_committed` runs on the writer thread; the server passes one that hands
    the batch to its event loop.
    """

    def __init__(
        self,
        db_path: Path,
        on_committed: Callable[[list[WriteJob]], None],
        *,
        batch_max: int = 1024,
    ) -> None:
        self._db_path = db_path
        self._on_committed = on_committed
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[WriteJob | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chatd-writer", daemon=True)
        self.batches = 0  # counters for the logs and the benchmarks
        self.jobs = 0

    def start(self) -> None:
        self._conn = connect(self._db_path)
        self._thread.start()

    def submit(self, job: WriteJob) -> None:
        self._queue.put(job)

    def stop(self) -> None:
        """Write everything submitted so far, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()
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

    def _commit(self, batch: list[WriteJob]) -> None:
        try:
            with transaction(self._conn):
                self._apply(batch)
        except sqlite3.Error as exc:  # the whole transaction failed: disk full, I/O error
            log.error("could not commit %d writes: %s", len(batch), exc)
            for job in batch:
                job.error = job.error or exc
        self.batches += 1
        self.jobs += len(batch)
        try:
            self._on_committed(batch)
        except Exception:  # the writer must outlive any bug in a callback
            log.exception("error while reporting a committed batch")

    def _apply(self, batch: list[WriteJob]) -> None:
        message_jobs = [job for job in batch if isinstance(job, MessageJob)]
        if message_jobs:
            try:
                with savepoint(self._conn):
                    messages.insert_many(self._conn, (job.message for job in message_jobs))
            except sqlite3.IntegrityError:
                # One bad row (say, from an account removed meanwhile) must not
                # sink the others: write them one by one and fail only that one.
                for job in message_jobs:
                    try:
                        with savepoint(self._conn):
                            messages.insert(self._conn, job.message)
                    except sqlite3.IntegrityError as exc:
                        job.error = exc
        for action_job in batch:
            if isinstance(action_job, ActionJob):
                try:
                    with savepoint(self._conn):
                        action_job.result = action_job.action(self._conn)
                except Exception as exc:
                    action_job.error = exc
