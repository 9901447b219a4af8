"""The storage layer: the only place in chatd that speaks SQL.

`engines` tells SQLite and PostgreSQL apart, `db` opens connections and runs
transactions, `migrations` keeps the schema current, `users`, `rooms`,
`messages` and `retention` hold the queries, written once for both engines.
Nothing here knows about sockets or sessions.
"""

from __future__ import annotations

from pathlib import Path

from chatd.storage.db import DatabaseMissingError, connect, savepoint, transaction
from chatd.storage.engines import (
    ERRORS,
    INTEGRITY_ERRORS,
    ConnectError,
    Connection,
    FeedConnection,
    connect_feed,
    describe,
    engine_of,
    is_url,
)
from chatd.storage.migrations import MigrationError, migrate

__all__ = [
    "ERRORS",
    "INTEGRITY_ERRORS",
    "ConnectError",
    "Connection",
    "DatabaseMissingError",
    "FeedConnection",
    "MigrationError",
    "connect",
    "connect_feed",
    "describe",
    "engine_of",
    "is_url",
    "open_database",
    "savepoint",
    "transaction",
]


def open_database(target: Path | str, *, create: bool = True) -> Connection:
    """Connect (to a file path or a postgresql:// URL) and bring the schema up to date."""
    conn = connect(target, create=create)
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
