"""The database engines chatd runs on, and the one place that tells them apart.

    chat.db                                  -> SQLite (sqlite.py), the default
    postgresql://user@host:5432/chat         -> PostgreSQL (postgresql.py)

Like Synapse's storage/engines/, an engine holds only what truly differs: how
to connect, a few SQL fragments, inserting a batch of messages, search. The
queries themselves are written once, in chatd/storage.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from chatd.storage.engines.base import (
    ConnectError,
    Connection,
    Cursor,
    DatabaseError,
    Engine,
    FeedConnection,
    IntegrityError,
)
from chatd.storage.engines.sqlite import SQLITE, DatabaseMissingError

__all__ = [
    "ERRORS",
    "INTEGRITY_ERRORS",
    "ConnectError",
    "Connection",
    "Cursor",
    "DatabaseError",
    "DatabaseMissingError",
    "Engine",
    "FeedConnection",
    "IntegrityError",
    "connect",
    "connect_feed",
    "describe",
    "engine_of",
    "is_url",
]

# What a failed query raises, whichever the engine.
ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, DatabaseError)
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, IntegrityError)

_SCHEMES = ("postgresql://", "postgres://")


def is_url(target: Path | str) -> bool:
    """Whether a --db value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


def describe(target: Path | str) -> str:
    """The --db value as it may be shown to a user: any password replaced by ***."""
    if not is_url(target):
        return str(target)
    shown = re.sub(r"(?i)(password=)[^&\s]*", r"\1***", str(target))
    try:
        password = urlsplit(shown).password
    except ValueError:  # not a URL urllib can read: psycopg will say why
        password = None
    return shown.replace(f":{password}@", ":***@", 1) if password else shown


def engine_of(conn: Connection) -> Engine:
    """The engine behind a connection."""
    if isinstance(conn, sqlite3.Connection):
        return SQLITE
    engine: Engine = getattr(conn, "engine", SQLITE)
    return engine


def connect(target: Path | str, *, create: bool = True) -> Connection:
    """Open the database a --db value names: a file path, or a postgresql:// URL.

    `create` applies to SQLite files (a PostgreSQL database is made by its
    administrator); raises DatabaseMissingError, ConnectError or the engine's error.
    """
    if is_url(target):
        try:  # psycopg comes with the chatd[postgres] extra
            from chatd.storage.engines import postgresql
        except ModuleNotFoundError as exc:
            if exc.name != "psycopg":
                raise
            raise ConnectError(
                "PostgreSQL support is not installed: pip install 'chatd[postgres]'"
            ) from None
        return postgresql.connect(str(target))
    from chatd.storage.engines import sqlite

    return sqlite.connect(Path(target), create=create)


async def connect_feed(url: str) -> FeedConnection:
    """A connection for the event loop to a postgresql:// URL (its feed of committed
    messages); raises ConnectError. Called only once `connect` has worked."""
    from chatd.storage.engines import postgresql

    return await postgresql.connect_async(url)
