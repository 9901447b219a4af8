"""What every engine offers the queries: a connection's shape and the few SQL fragments
that differ between SQLite and PostgreSQL.

The queries of chatd/storage are written once, in the SQL both engines speak,
with `?` and `:name` placeholders; an engine supplies only what truly differs
(see chatd/storage/engines/sqlite.py and postgresql.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

# PostgreSQL's notice channels between nodes (defined here, where no driver is
# needed): a batch of messages committed, and a kick committed (its id).
FEED_CHANNEL = "chatd_messages"
KICK_CHANNEL = "chatd_kicks"


class Cursor(Protocol):
    """What the queries use of a cursor (sqlite3's and psycopg's both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the queries use of a connection: a sqlite3.Connection, or a
    PostgresConnection that takes the same SQL and placeholders."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

    def close(self) -> None: ...


class FeedConnection(Protocol):
    """A connection on the event loop, for the feed of committed messages
    (chatd/core/delivery.py): PostgreSQL's AsyncPostgresConnection."""

    async def fetchall(self, sql: str, parameters: Any) -> list[Any]: ...

    async def listen(self) -> None: ...

    def fileno(self) -> int: ...

    def notices(self) -> list[tuple[str, str]]: ...

    async def close(self) -> None: ...


class DatabaseError(Exception):
    """A PostgreSQL error, as chatd sees it (SQLite's stay sqlite3.Error)."""


class IntegrityError(DatabaseError):
    """A PostgreSQL constraint was violated (a duplicate name, a missing row)."""


class ConnectError(DatabaseError):
    """The database could not be reached or opened; the message is one line for the user."""


# A message row, in the order of messages.NewMessage.as_row().
MessageRow = tuple[int, str, int | None, int | None, str, int | None, str | None, str]


class Engine:
    """The SQL fragments and operations that differ between engines."""

    name: str
    # Starts a write transaction (SQLite takes the write lock up front).
    begin: str
    # A LIMIT value meaning "no limit".
    no_limit: int | None
    # Appended to a name column to compare it regardless of case; PostgreSQL's
    # name columns are citext, which do that by themselves.
    nocase: str
    # The folder under migrations/ holding this engine's files ("" for the top).
    migrations_folder: str
    # Run first in a migration's transaction so that one process migrates at a
    # time ("" where BEGIN takes the lock already).
    migration_lock: str = ""

    def stamp(self, column: str, *, utc: bool) -> str:
        """SQL rendering `column` (UTC microseconds) as 'YYYY-MM-DD HH:MM:SS'."""
        raise NotImplementedError

    def same_name(self, column: str, param: str) -> str:
        """SQL true where name `column` is parameter `param`, case aside, in the form
        the column's index is built on."""
        return f"{column} = :{param}{self.nocase}"

    def day(self, column: str, *, utc: bool) -> str:
        """SQL rendering `column` (UTC microseconds) as 'YYYY-MM-DD'."""
        raise NotImplementedError

    def insert_messages(self, conn: Connection, rows: list[MessageRow]) -> Sequence[int]:
        """Store message rows and index them for search; return their ids, in order."""
        raise NotImplementedError

    def in_commit_order(self, conn: Connection) -> None:
        """Make the ids this transaction hands out from now on (messages, kicks) commit
        in the order they are handed out, so that readers of "every row after id N"
        miss none: hold a lock to the commit. SQLite has one writer at a time already."""

    def stream(self, conn: Connection, sql: str, parameters: Any) -> Iterator[Any]:
        """The rows of a query that may return millions (exports), a few at a time."""
        return iter(conn.execute(sql, parameters))  # SQLite steps through them as read

    def index_messages(self, conn: Connection, first_id: int, last_id: int) -> None:
        """Index for search the messages from first_id to last_id, stored with their ids
        given (a copy)."""

    def continue_ids(self, conn: Connection, last_message_id: int) -> None:
        """After rows were stored with their ids given (a copy): hand out new ids after
        theirs, and no message id up to `last_message_id`."""
        raise NotImplementedError

    def last_message_id(self, conn: Connection) -> int:
        """The newest message id ever handed out (0 for none), deleted ones included."""
        raise NotImplementedError

    def search(self, text_param: str) -> tuple[str, str, str]:
        """(join, condition, order column) matching messages `m` against the
        search query in the parameter `text_param` (see search_query)."""
        raise NotImplementedError

    def search_query(self, terms: list[tuple[str, bool]]) -> str:
        """The query text for (literal word, is a prefix) terms, all of which must match."""
        raise NotImplementedError

    def bookkeeping_table(self) -> str:
        """CREATE TABLE IF NOT EXISTS schema_migrations, in this engine's types."""
        return (
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at BIGINT NOT NULL)"  # UTC microseconds
        )

    def is_lost(self, conn: Connection) -> bool:
        """Whether the connection is gone for good (the server went away): reconnect."""
        return False
