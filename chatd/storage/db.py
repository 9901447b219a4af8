"""Opening the SQLite database the way every part of chatd needs it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# How long a write waits for another connection's lock (the server's writer,
# an admin command) before giving up with "database is locked".
BUSY_TIMEOUT_S = 15.0


class DatabaseMissingError(FileNotFoundError):
    """The database file does not exist and the caller did not ask to create it."""


def connect(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Open (or create, readable by its owner only) a chatd database.

    Every connection gets WAL (readers never block the writer), foreign keys
    and a busy timeout. `synchronous=NORMAL` in WAL mode keeps every committed
    transaction through a crash of the process; only a power cut can lose the
    last ones.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise DatabaseMissingError(f"database {path} does not exist")
        # Create the file ourselves so that it is never, even briefly, readable
        # by others; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # each connection is still used by one thread at a time
    )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: BEGIN IMMEDIATE takes the write lock up front, so it
    waits (busy timeout) instead of failing half-way when another writer is busy."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str = "step") -> Iterator[sqlite3.Connection]:
    """A nested step of a transaction that can fail alone."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")
