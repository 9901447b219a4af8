"""Threads for the blocking work of the server: bcrypt checks and database reads.

Each worker thread owns one database connection (SQLite's WAL lets them all
read while the writer writes; so does PostgreSQL) and takes jobs from a
shared queue. Results go back to the event loop in batches: a worker wakes
the loop only when it finds no wake-up already pending, so under a login
storm a thousand finished checks cost a handful of wake-ups instead of a
thousand (asyncio's run_in_executor wakes the loop once per job).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chatd.storage import ERRORS, Connection, connect, engine_of

T = TypeVar("T")

_STOP = object()


class WorkerPool:
    """`size` threads running `job(connection, *args)` for the event loop."""

    def __init__(self, size: int, name: str, db_path: Path | str) -> None:
        self._db_path = db_path
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._finished: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._lock = threading.Lock()  # guards _finished and _wake_pending
        self._wake_pending = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(size)
        ]

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for thread in self._threads:
            thread.start()

    def run(self, job: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `job(connection, *args)`; the future resolves on the event loop."""
        done: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((done, job, args))
        return done

    def stop(self) -> None:
        """Finish the queued jobs, then end every thread (blocking: call it off the loop)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        conn = connect(self._db_path)
        try:
            while (item := self._jobs.get()) is not _STOP:
                done, job, args = item
                outcome, conn = self._do(conn, job, args)
                self._hand_back(done, *outcome)
        finally:
            conn.close()

    def _do(
        self, conn: Connection, job: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[tuple[Any, BaseException | None], Connection]:
        """(result, error) of `job(conn, *args)`, and the connection to use next.

        The jobs only read (and hash), so a job that failed because the
        connection was lost (PostgreSQL restarted) is run once more on a new one.
        """
        try:
            return (job(conn, *args), None), conn
        except Exception as exc:
            fresh = self._reconnect_if_lost(conn)
            if fresh is conn:
                return (None, exc), conn
        try:
            return (job(fresh, *args), None), fresh
        except Exception as exc:
            return (None, exc), fresh

    def _reconnect_if_lost(self, conn: Connection) -> Connection:
        """A new connection if this one is gone (PostgreSQL restarted); else the same."""
        if not engine_of(conn).is_lost(conn):
            return conn
        try:
            fresh = connect(self._db_path)
        except ERRORS:
            return conn  # the next failing job tries again
        conn.close()
        return fresh

    def _hand_back(
        self, done: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        with self._lock:
            self._finished.append((done, result, error))
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, []
            self._wake_pending = False
        for done, result, error in finished:
            if done.cancelled():
                continue
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)


def no_connection(job: Callable[..., T]) -> Callable[..., T]:
    """Adapt a job that needs no database connection to WorkerPool.run."""

    def run(conn: Connection, *args: Any) -> T:
        return job(*args)

    return run
