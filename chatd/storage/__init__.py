"""The storage layer: the only place in chatd that speaks SQL.

`db` opens connections, `migrations` keeps the schema current, `users` and
`messages` hold the queries. Nothing here knows about sockets or sessions.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatd.storage.db import DatabaseMissingError, connect, savepoint, transaction
from chatd.storage.migrations import MigrationError, migrate

__all__ = [
    "DatabaseMissingError",
    "MigrationError",
    "connect",
    "open_database",
    "savepoint",
    "transaction",
]


def open_database(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Connect and bring the schema up to date."""
    conn = connect(path, create=create)
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
