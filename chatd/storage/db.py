"""Opening the database the way every part of chatd needs it, and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chatd.storage.engines import Connection, DatabaseMissingError, connect, engine_of

__all__ = ["Connection", "DatabaseMissingError", "connect", "savepoint", "transaction"]


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """A write transaction. On SQLite, BEGIN IMMEDIATE takes the write lock up front,
    so it waits (busy timeout) instead of failing half-way when another writer is busy."""
    conn.execute(engine_of(conn).begin)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def savepoint(conn: Connection, name: str = "step") -> Iterator[Connection]:
    """A nested step of a transaction that can fail alone."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")
