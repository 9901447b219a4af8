"""PostgreSQL, through psycopg 3 (the `chatd[postgres]` extra).

A PostgresConnection takes the very SQL the SQLite connection takes: `?` and
`:name` placeholders become psycopg's `%s` and `%(name)s` (once per query
text, cached), and psycopg's errors become chatd's DatabaseError types, so
code above storage catches one set of exceptions. Transactions are explicit
(autocommit mode, BEGIN/COMMIT issued by chatd.storage.db.transaction), as
they are on SQLite. Names are citext and search is PostgreSQL's text search
over unaccented words; see migrations/postgresql/.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from chatd.storage.engines import describe
from chatd.storage.engines.base import (
    FEED_CHANNEL,
    KICK_CHANNEL,
    ConnectError,
    Connection,
    DatabaseError,
    Engine,
    IntegrityError,
    MessageRow,
)

log = logging.getLogger(__name__)

# How long connecting may take before a server that does not answer is reported
# (a `connect_timeout` in the URL takes precedence).
CONNECT_TIMEOUT_S = 5
# A connection whose server went silent (its host lost, the network cut, no
# reset) is found dead in about half a minute, not TCP's quarter of an hour: the
# writer, the feed and presence then connect again. tcp_user_timeout decides:
# data sent (a query, or a keepalive probe on an idle connection) unacknowledged
# for 30 s ends the connection (on Linux it overrides keepalives_count). Options
# of the same name in the URL take precedence.
_DEAD_PEER_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 10,  # seconds of quiet before the first probe
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}
# Rows fetched at a time by PostgresConnection.stream.
STREAM_CHUNK = 1000


def _one_line(exc: BaseException, url: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = _password_of(url)
    return text.replace(password, "***") if password else text


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


# --- placeholders ----------------------------------------------------------------

# String literals and quoted names are copied as they are (with % doubled for
# psycopg); `::` is a cast; `?` and `:name` are placeholders.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|\?|:([A-Za-z_]\w*)|%")


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """The query with psycopg's placeholders: `?` -> `%s`, `:name` -> `%(name)s`."""

    def replace(match: re.Match[str]) -> str:
        piece = match[0]
        if piece[0] in "'\"":
            return piece.replace("%", "%%")
        if piece == "?":
            return "%s"
        if piece == "%":
            return "%%"
        if match[1] is not None:
            return f"%({match[1]})s"
        return piece  # ::

    return _TOKEN.sub(replace, sql)


@contextmanager
def _chatd_errors() -> Iterator[None]:
    """psycopg's errors as chatd's, which the code above storage catches."""
    try:
        yield
    except psycopg.IntegrityError as exc:
        raise IntegrityError(str(exc).strip()) from exc
    except psycopg.Error as exc:
        raise DatabaseError(str(exc).strip() or type(exc).__name__) from exc


class PostgresConnection:
    """A psycopg connection that speaks chatd's SQL (see the module's docstring)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        with _chatd_errors():
            if parameters is None:  # no placeholders to translate
                return self.raw.execute(sql)
            return self.raw.execute(to_pyformat(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        with _chatd_errors():
            cursor.executemany(to_pyformat(sql), parameters)
        return cursor

    def stream(self, sql: str, parameters: Any) -> Iterator[Any]:
        """The rows of a query as the server sends them, a chunk at a time (psycopg
        otherwise holds a whole result in memory: a million lines of an export)."""
        size = STREAM_CHUNK if psycopg.pq.version() >= 170000 else 1  # chunks: libpq 17
        with _chatd_errors():
            yield from self.raw.cursor().stream(to_pyformat(sql), parameters, size=size)

    def close(self) -> None:
        self.raw.close()

    # `with conn:` as with sqlite3 in autocommit mode: there is nothing to commit.
    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    @property
    def engine(self) -> PostgreSQLEngine:
        return POSTGRESQL


def _options(url: str) -> dict[str, Any]:
    """What chatd adds to the URL's own connection options (which take precedence)."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConnectError(f"bad database URL {describe(url)}: {_one_line(exc, url)}") from None
    ours = {"application_name": "chatd", "connect_timeout": CONNECT_TIMEOUT_S}
    ours.update(_DEAD_PEER_OPTIONS)
    return {name: value for name, value in ours.items() if name not in given}


def connect(url: str) -> PostgresConnection:
    """Connect to the database a postgresql:// URL names; ConnectError says what is wrong."""
    extra = _options(url)
    try:
        raw = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise ConnectError(f"cannot connect to {describe(url)}: {_one_line(exc, url)}") from None
    _use_local_time_zone(raw)
    return PostgresConnection(raw)


class AsyncPostgresConnection:
    """A connection for the event loop (psycopg's AsyncConnection), as the feed of
    committed messages uses it (chatd/core/delivery.py): reads and notices, chatd's
    SQL and chatd's errors, nothing that blocks."""

    def __init__(self, raw: psycopg.AsyncConnection[Any]) -> None:
        self.raw = raw

    async def fetchall(self, sql: str, parameters: Any) -> list[Any]:
        with _chatd_errors():
            cursor = await self.raw.execute(to_pyformat(sql), parameters)
            return await cursor.fetchall()

    async def listen(self) -> None:
        """Be told of messages committed and kicks sent by any node (see `notices`)."""
        with _chatd_errors():
            await self.raw.execute(f"LISTEN {FEED_CHANNEL}")
            await self.raw.execute(f"LISTEN {KICK_CHANNEL}")

    def fileno(self) -> int:
        """The socket: readable when notices (or the end of the connection) arrive."""
        return self.raw.fileno()

    def notices(self) -> list[tuple[str, str]]:
        """(channel, payload) of the notices that have arrived, without waiting; raises
        DatabaseError if the connection is lost. For a connection that only listens."""
        pgconn = self.raw.pgconn
        encoding = self.raw.info.encoding
        arrived = []
        with _chatd_errors():
            pgconn.consume_input()
            while (notice := pgconn.notifies()) is not None:
                arrived.append((notice.relname.decode(encoding), notice.extra.decode(encoding)))
        return arrived

    async def close(self) -> None:
        await self.raw.close()


async def connect_async(url: str) -> AsyncPostgresConnection:
    """`connect`, for the event loop; ConnectError says what is wrong."""
    extra = _options(url)
    try:
        raw = await psycopg.AsyncConnection.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise ConnectError(f"cannot connect to {describe(url)}: {_one_line(exc, url)}") from None
    return AsyncPostgresConnection(raw)


def _use_local_time_zone(raw: psycopg.Connection[Any]) -> None:
    """Render local times in this process's time zone, as SQLite's 'localtime' does."""
    zone = local_zone()
    try:
        raw.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
    except psycopg.Error:
        log.warning("PostgreSQL does not know the time zone %r: times shown in its own", zone)


def local_zone() -> str:
    """This process's time zone, by a name PostgreSQL knows: $TZ, else the zone that
    /etc/localtime links to, else /etc/timezone's (Debian), else UTC."""
    zone = os.environ.get("TZ", "").removeprefix(":") or os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in zone:  # a file of the zone database: its name is the rest
        return zone.split("/zoneinfo/", 1)[1]
    if not zone.startswith("/"):
        return zone
    try:
        with open("/etc/timezone", encoding="utf-8") as named:
            return named.read().strip() or "UTC"
    except OSError:
        return "UTC"


# --- the engine ----------------------------------------------------------------------

# Message ids must commit in the order they are handed out, or a node reading
# "id > the last I delivered" would skip an id that commits after a higher one
# (sequence values are taken at INSERT, transactions commit when they commit).
# So a transaction takes a lock (an advisory key of chatd's own) before its
# messages get ids and holds it to its commit: one node's batch at a time. The
# notice, sent at that commit, is the other nodes' doorbell (chatd/core/delivery.py).
COMMIT_ORDER_KEY = 6007002  # an advisory lock key of chatd's own

# One statement for a whole batch, so that the lock is held one round trip
# less: no row reaches the INSERT (nor its nextval) before the one row of
# `ids_lock` was made, which takes the lock and queues the notice. WITH
# ORDINALITY and ORDER BY make the ids follow the order of the rows, so sorting
# the returned ids maps them back.
_INSERT = (
    "WITH ids_lock AS MATERIALIZED"
    f" (SELECT pg_advisory_xact_lock({COMMIT_ORDER_KEY}), pg_notify('{FEED_CHANNEL}', ''))"
    " INSERT INTO messages"
    " (sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body)"
    " SELECT t.sent_at, t.kind, t.room_id, t.sender_id, t.sender, t.recipient_id,"
    " t.recipient, t.body FROM ids_lock,"
    " unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[],"
    " ?::text[], ?::text[]) WITH ORDINALITY"
    " AS t (sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body, n)"
    " ORDER BY t.n RETURNING id"
)

# Kicks between nodes (table kicks) take the same lock, for the same reason (one
# lock, so that a batch holding both can never deadlock with another); their notice's
# payload is the kick's id (chatd/storage/nodes.py).
COMMIT_ORDER_LOCK = f"SELECT pg_advisory_xact_lock({COMMIT_ORDER_KEY})"

# The search expression; the same as the messages_search index's, so that it is used.
_DOCUMENT = "to_tsvector('simple', chatd_unaccent(m.body))"


class PostgreSQLEngine(Engine):
    name = "postgresql"
    begin = "BEGIN"
    no_limit = None
    nocase = ""  # users.username and messages.sender are citext
    migrations_folder = "postgresql"
    migration_lock = "SELECT pg_advisory_xact_lock(6007001)"  # a key of chatd's own

    def stamp(self, column: str, *, utc: bool) -> str:
        zone = " AT TIME ZONE 'UTC'" if utc else ""  # else the session's: see local_zone
        return f"to_char(to_timestamp({column} / 1000000){zone}, 'YYYY-MM-DD HH24:MI:SS')"

    def same_name(self, column: str, param: str) -> str:
        # The expression of messages_by_sender_name (migration 0007): citext's
        # equality, with the index's cheaper byte-wise order.
        return f'lower({column}::text) COLLATE "C" = lower(:{param})'

    def day(self, column: str, *, utc: bool) -> str:
        zone = " AT TIME ZONE 'UTC'" if utc else ""
        return f"to_char(to_timestamp({column} / 1000000){zone}, 'YYYY-MM-DD')"

    def insert_messages(self, conn: Connection, rows: list[MessageRow]) -> Sequence[int]:
        columns = [list(column) for column in zip(*rows, strict=True)]
        ids = [row[0] for row in conn.execute(_INSERT, columns)]
        ids.sort()
        return ids

    def in_commit_order(self, conn: Connection) -> None:
        conn.execute(COMMIT_ORDER_LOCK)

    def stream(self, conn: Connection, sql: str, parameters: Any) -> Iterator[Any]:
        return cast(PostgresConnection, conn).stream(sql, parameters)

    def continue_ids(self, conn: Connection, last_message_id: int) -> None:
        for table in ("users", "rooms"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id))"
                f" FROM {table} HAVING max(id) IS NOT NULL"
            )
        (stored,) = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
        top = max(int(stored), last_message_id)
        conn.execute("SELECT setval('messages_id_seq', ?, ?)", (max(top, 1), top > 0))

    def last_message_id(self, conn: Connection) -> int:
        row = conn.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM messages_id_seq"
        ).fetchone()
        return int(row[0])

    def search(self, text_param: str) -> tuple[str, str, str]:
        return "", f"{_DOCUMENT} @@ to_tsquery('simple', chatd_unaccent(:{text_param}))", "m.id"

    def search_query(self, terms: list[tuple[str, bool]]) -> str:
        """A tsquery: each word quoted (several lexemes in one become a phrase),
        `:*` after a prefix, all joined with &."""
        return " & ".join(
            "'" + literal.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")
            for literal, prefix in terms
        )

    def is_lost(self, conn: Connection) -> bool:
        raw = cast(PostgresConnection, conn).raw
        return bool(raw.broken or raw.closed)


POSTGRESQL = PostgreSQLEngine()
