"""SQLite: the embedded default. One file, WAL, FTS5 for search."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from chatd.storage.engines.base import Connection, Engine, MessageRow

# How long a write waits for another connection's lock (the server's writer,
# an admin command) before giving up with "database is locked".
BUSY_TIMEOUT_S = 15.0


class DatabaseMissingError(FileNotFoundError):
    """The database file does not exist and the caller did not ask to create it."""


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (or create, readable by its owner only) a chatd database file.

    Every connection gets WAL (readers never block the writer), foreign keys
    and a busy timeout. `synchronous=NORMAL` in WAL mode keeps every committed
    transaction through a crash of the process; only a power cut can lose the
    last ones.
    """
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


_INSERT = (
    "INSERT INTO messages"
    " (sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class SQLiteEngine(Engine):
    name = "sqlite"
    begin = "BEGIN IMMEDIATE"
    no_limit = -1
    nocase = " COLLATE NOCASE"
    migrations_folder = ""

    def stamp(self, column: str, *, utc: bool) -> str:
        zone = "" if utc else ", 'localtime'"
        return f"strftime('%Y-%m-%d %H:%M:%S', {column} / 1000000, 'unixepoch'{zone})"

    def day(self, column: str, *, utc: bool) -> str:
        zone = "" if utc else ", 'localtime'"
        return f"date({column} / 1000000, 'unixepoch'{zone})"

    def insert_messages(self, conn: Connection, rows: list[MessageRow]) -> Sequence[int]:
        """One executemany, then the search index filled with one statement for the
        whole batch: much cheaper than a trigger per row (migrations/0003)."""
        conn.executemany(_INSERT, rows)
        (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
        # One writer hands ids out in a row: the batch has `last - len + 1` to `last`.
        first = last - len(rows) + 1
        conn.execute(
            "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages WHERE id >= ?",
            (first,),
        )
        return range(first, last + 1)

    def index_messages(self, conn: Connection, first_id: int, last_id: int) -> None:
        conn.execute(
            "INSERT INTO messages_fts (rowid, body)"
            " SELECT id, body FROM messages WHERE id BETWEEN ? AND ?",
            (first_id, last_id),
        )

    def continue_ids(self, conn: Connection, last_message_id: int) -> None:
        # Accounts and rooms take max(id) + 1 by themselves; messages (AUTOINCREMENT)
        # remember the highest id ever stored in sqlite_sequence.
        raised = conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'messages'",
            (last_message_id,),
        )
        if raised.rowcount == 0 and last_message_id > 0:
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)",
                (last_message_id,),
            )

    def last_message_id(self, conn: Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        return 0 if row is None else int(row[0])

    def search(self, text_param: str) -> tuple[str, str, str]:
        return (
            " JOIN messages_fts ON messages_fts.rowid = m.id",
            f"messages_fts MATCH :{text_param}",
            # FTS5 walks its index by rowid newest first and stops after the limit.
            "messages_fts.rowid",
        )

    def search_query(self, terms: list[tuple[str, bool]]) -> str:
        """An FTS5 query: each word a quoted phrase, `*` after a prefix."""
        return " ".join(
            '"' + literal.replace('"', '""') + '"' + ("*" if prefix else "")
            for literal, prefix in terms
        )

    def bookkeeping_table(self) -> str:
        return (
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at INTEGER NOT NULL)"  # UTC microseconds
        )


SQLITE = SQLiteEngine()
