"""Everything said in the chat: writing it, and reading it back for users and admins."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from chatd.rooms import GENERAL_ROOM, GENERAL_ROOM_ID
from chatd.storage import rooms
from chatd.storage.engines import Connection, Engine, FeedConnection, engine_of


class Kind(enum.StrEnum):
    PUBLIC = "public"  # said to everyone
    PRIVATE = "private"  # /msg to one user
    ANNOUNCE = "announce"  # an admin's announcement
    JOIN = "join"  # logged in (in #general) or joined a room
    LEAVE = "leave"  # logged out (in #general) or left a room
    TOPIC = "topic"  # a room's topic was set


# What a user "said": the entries of their personal history.
SAID = (Kind.PUBLIC, Kind.PRIVATE, Kind.ANNOUNCE)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message on its way to the database."""

    sent_at: int
    kind: Kind
    sender_id: int | None
    sender: str
    body: str = ""
    recipient_id: int | None = None
    recipient: str | None = None
    room_id: int | None = GENERAL_ROOM_ID  # None for private messages
    room: str | None = GENERAL_ROOM  # the room's name, for delivery

    def __post_init__(self) -> None:
        if self.kind is Kind.PRIVATE:  # a private message belongs to no room
            object.__setattr__(self, "room_id", None)
            object.__setattr__(self, "room", None)

    def as_row(self) -> tuple[int, str, int | None, int | None, str, int | None, str | None, str]:
        return (
            self.sent_at,
            self.kind,
            self.room_id,
            self.sender_id,
            self.sender,
            self.recipient_id,
            self.recipient,
            self.body,
        )


def insert(conn: Connection, message: NewMessage) -> int:
    """Store one message; returns its id."""
    return insert_many(conn, [message])[0]


def insert_many(conn: Connection, messages: Iterable[NewMessage]) -> Sequence[int]:
    """Store messages and index them for search; call it inside a write transaction.

    Returns their ids, in order. Each engine writes the whole batch with one
    or two statements (see insert_messages in chatd/storage/engines/).
    """
    batch = list(messages)
    if not batch:
        return ()
    ids = engine_of(conn).insert_messages(conn, [m.as_row() for m in batch])
    for message in batch:
        if message.kind in _ROOM_EVENTS and message.room_id != GENERAL_ROOM_ID:
            _apply_room_event(conn, message)
    return ids


# A join, leave or topic in a room is both a line of its log and a change to
# the room: the change is written with the line, in the same transaction.
_ROOM_EVENTS = frozenset((Kind.JOIN, Kind.LEAVE, Kind.TOPIC))


def _apply_room_event(conn: Connection, message: NewMessage) -> None:
    assert message.room_id is not None
    if message.kind is Kind.TOPIC:
        rooms.set_topic(conn, message.room_id, message.body)
    elif message.sender_id is not None:
        change = rooms.add_member if message.kind is Kind.JOIN else rooms.remove_member
        change(conn, message.room_id, message.sender_id)


_KINDS = {kind.value: kind for kind in Kind}  # a dict lookup: Kind(text) costs ~1 us a row


# --- lines of history and logs ---------------------------------------------------


def _line(engine: Engine, *, utc: bool) -> str:
    """The SQL that renders a row as a line of history or log:

        2026-11-23 14:05:09 alice: Hello
        2026-11-23 14:06:00 alice -> bob (private): lunch?
        2026-11-23 14:07:12 *** bob joined
        2026-11-23 14:08:30 [#dev] alice: rooms other than #general are named

    The one definition of that format, used by /history and by the exports.
    The database renders it (SQLite in C: 0.9 s for a million lines, where
    Python took 4); times are local (the process's time zone) unless `utc`.
    """
    return (
        f"{engine.stamp('sent_at', utc=utc)} || ' ' ||"
        f" CASE WHEN room_id > {GENERAL_ROOM_ID}"
        "  THEN '[' || (SELECT name FROM rooms WHERE rooms.id = room_id) || '] ' ELSE '' END ||"
        " CASE kind"
        "  WHEN 'public' THEN sender || ': ' || body"
        "  WHEN 'private' THEN sender || ' -> ' || recipient || ' (private): ' || body"
        "  WHEN 'announce' THEN '*** Announcement from ' || sender || ': ' || body"
        "  WHEN 'join' THEN '*** ' || sender || ' joined'"
        "  WHEN 'topic' THEN '*** ' || sender || ' set the topic: ' || body"
        "  ELSE '*** ' || sender || ' ' || coalesce(nullif(body, ''), 'left')"
        " END"
    )


def history_lines(conn: Connection, user_id: int, limit: int, *, utc: bool = False) -> list[str]:
    """The last `limit` things a user said or was sent privately, oldest first.

    Two index range scans (by sender, by recipient), each stopped after
    `limit` rows, then merged: fast however long the history is.
    """
    line = _line(engine_of(conn), utc=utc)
    rows = conn.execute(
        "SELECT line FROM ("
        f"  SELECT * FROM (SELECT id, {line} AS line FROM messages"
        "    WHERE sender_id = :user AND kind IN ('public', 'private', 'announce')"
        "    ORDER BY id DESC LIMIT :limit) AS said"
        "  UNION ALL"
        f"  SELECT * FROM (SELECT id, {line} AS line FROM messages"
        "    WHERE recipient_id = :user AND sender_id IS DISTINCT FROM :user"
        "    ORDER BY id DESC LIMIT :limit) AS received"
        ") AS history ORDER BY id DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    return [line for (line,) in reversed(rows)]


def iter_history_lines(conn: Connection, user_id: int, *, utc: bool = False) -> Iterator[str]:
    """A user's whole history, oldest first, streamed."""
    rows = engine_of(conn).stream(
        conn,
        f"SELECT {_line(engine_of(conn), utc=utc)} FROM messages"
        " WHERE (sender_id = :user AND kind IN ('public', 'private', 'announce'))"
        "    OR recipient_id = :user"
        " ORDER BY id",
        {"user": user_id},
    )
    return (line for (line,) in rows)


def iter_history_lines_of_everyone(
    conn: Connection, *, utc: bool = False
) -> Iterator[tuple[int | None, int | None, str]]:
    """(sender id, recipient id, line) of every history entry, in storage order.

    A line belongs to its sender's history, and a private message also to its
    recipient's. One sequential scan of the table: reading each user's rows
    through the indexes instead costs a random read per line (3.3 s for a
    million), which is what `export-history --all` would otherwise do.
    """
    rows = engine_of(conn).stream(
        conn,
        "SELECT sender_id,"
        " CASE WHEN recipient_id IS DISTINCT FROM sender_id THEN recipient_id END,"
        f" {_line(engine_of(conn), utc=utc)} FROM messages"
        " WHERE kind IN ('public', 'private', 'announce') ORDER BY id",
        (),
    )
    return iter(rows)


_NO_END = 2**63 - 1

# What catching up reads: what people wrote in a room (messages and
# announcements, not joins, leaves or topics; the partial index
# messages_said_by_room holds exactly these), and private messages from others.
_SAID_IN_ROOM = "room_id = :room AND id > :after AND id <= :upto AND kind IN ('public', 'announce')"
_RECEIVED = (
    "recipient_id = :user AND id > :after AND id <= :upto AND sender_id IS DISTINCT FROM :user"
)
# A stored message as a LogEntry row, its room by name.
_ENTRY = (
    "id, sent_at, kind, (SELECT name FROM rooms WHERE rooms.id = room_id), sender, recipient, body"
)


def room_lines(
    conn: Connection,
    room_id: int,
    limit: int,
    *,
    after: int | None = None,
    upto: int = _NO_END,
) -> tuple[int, list[str]]:
    """How many messages were said in a room (with ids after `after` and up to `upto`,
    if given), and the latest `limit` of them as history lines, oldest first."""
    params = {"room": room_id, "after": after or 0, "upto": upto}
    count, rows = _count_and_latest(conn, _SAID_IN_ROOM, params, limit, _history_line(conn))
    return count, [line for (line,) in rows]


def private_lines(
    conn: Connection, user_id: int, after: int, limit: int, *, upto: int = _NO_END
) -> tuple[int, list[str]]:
    """How many private messages others sent the user with ids after `after` (and up to
    `upto`), and the latest `limit` of them as history lines, oldest first."""
    params = {"user": user_id, "after": after, "upto": upto}
    count, rows = _count_and_latest(conn, _RECEIVED, params, limit, _history_line(conn))
    return count, [line for (line,) in rows]


def room_messages(
    conn: Connection,
    room_id: int,
    limit: int,
    *,
    after: int | None = None,
    upto: int = _NO_END,
) -> tuple[int, list[LogEntry]]:
    """`room_lines`, as stored messages rather than lines: for a front end that shows
    each message its own way (IRC's PRIVMSGs with their time)."""
    params = {"room": room_id, "after": after or 0, "upto": upto}
    count, rows = _count_and_latest(conn, _SAID_IN_ROOM, params, limit, _ENTRY)
    return count, [_log_entry(row) for row in rows]


def private_messages(
    conn: Connection, user_id: int, after: int, limit: int, *, upto: int = _NO_END
) -> tuple[int, list[LogEntry]]:
    """`private_lines`, as stored messages rather than lines."""
    params = {"user": user_id, "after": after, "upto": upto}
    count, rows = _count_and_latest(conn, _RECEIVED, params, limit, _ENTRY)
    return count, [_log_entry(row) for row in rows]


def _history_line(conn: Connection) -> str:
    return _line(engine_of(conn), utc=False)


def _count_and_latest(
    conn: Connection, where: str, params: dict[str, int], limit: int, columns: str
) -> tuple[int, list[Any]]:
    """How many messages match `where`, and `columns` of the latest `limit` of them,
    oldest first. Both read an index from its newest end."""
    (count,) = conn.execute(f"SELECT count(*) FROM messages WHERE {where}", params).fetchone()
    if count == 0 or limit == 0:
        return count, []
    rows = conn.execute(
        f"SELECT {columns} FROM messages WHERE {where} ORDER BY id DESC LIMIT :limit",
        {**params, "limit": limit},
    ).fetchall()
    rows.reverse()
    return count, rows


async def committed_after(
    conn: FeedConnection, after: int, limit: int
) -> list[tuple[int, NewMessage]]:
    """The committed messages with ids after `after`, oldest first, at most `limit`,
    with their rooms' names: what a node delivers next (chatd/core/delivery.py)."""
    rows = await conn.fetchall(
        "SELECT m.id, m.sent_at, m.kind, m.sender_id, m.sender, m.body, m.recipient_id,"
        " m.recipient, m.room_id, r.name FROM messages AS m"
        " LEFT JOIN rooms AS r ON r.id = m.room_id"
        " WHERE m.id > ? ORDER BY m.id LIMIT ?",
        (after, limit),
    )
    return [(row[0], NewMessage(row[1], _KINDS[row[2]], *row[3:])) for row in rows]


def last_committed_id(conn: Connection) -> int:
    """The id of the newest message committed and still stored (0 for none)."""
    (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
    return int(top)


def last_id(conn: Connection) -> int:
    """The id of the newest message ever stored (0 for none), deleted ones included."""
    return engine_of(conn).last_message_id(conn)


# --- admin queries -------------------------------------------------------------


class SearchSyntaxError(ValueError):
    """The search text has nothing to search for."""


def search_terms(text: str) -> list[tuple[str, bool]]:
    """A user's search words as (literal, is a prefix) terms: every word must appear,
    taken literally; a trailing * matches any word starting so ("pizz*")."""
    terms = []
    for word in text.split():
        prefix = len(word) > 1 and word.endswith("*")
        literal = word.rstrip("*")
        if literal:
            terms.append((literal, prefix))
    if not terms:
        raise SearchSyntaxError("the search text has no words")
    return terms


def fts_query(text: str, engine: Engine | None = None) -> str:
    """A user's search words as the engine's query (SQLite's FTS5 by default)."""
    from chatd.storage.engines.sqlite import SQLITE

    return (engine or SQLITE).search_query(search_terms(text))


@dataclass(frozen=True)
class LogQuery:
    """What `chatd-admin logs` asks for; None means "any"."""

    sender: str | None = None
    since: int | None = None  # UTC microseconds, inclusive
    until: int | None = None  # exclusive
    text: str | None = None  # search words, see search_terms
    limit: int | None = None  # the latest N; None for all
    room_id: int | None = None  # only this room's messages


class LogEntry(NamedTuple):
    """A message as `chatd-admin logs` shows it: a stored message and where it was said."""

    id: int
    sent_at: int
    kind: Kind
    room: str | None  # None for a private message
    sender: str
    recipient: str | None
    body: str


def _log_entry(row: tuple[int, int, str, str | None, str, str | None, str]) -> LogEntry:
    return LogEntry(row[0], row[1], _KINDS[row[2]], row[3], row[4], row[5], row[6])


def query(conn: Connection, q: LogQuery) -> Iterator[LogEntry]:
    """Messages matching `q`, oldest first (the latest `q.limit` of them if it is set)."""
    engine = engine_of(conn)
    tables = "messages m"
    conditions = []
    params: dict[str, object] = {"limit": engine.no_limit if q.limit is None else q.limit}
    search_order = ""
    if q.text is not None:
        join, condition, search_order = engine.search("text")
        tables += join
        conditions.append(condition)
        params["text"] = fts_query(q.text, engine)
    if q.sender is not None:
        conditions.append(engine.same_name("m.sender", "sender"))
        params["sender"] = q.sender
    if q.room_id is not None:
        conditions.append("m.room_id = :room")
        params["room"] = q.room_id
    if q.since is not None:
        conditions.append("m.sent_at >= :since")
        params["since"] = q.since
    if q.until is not None:
        conditions.append("m.sent_at < :until")
        params["until"] = q.until
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    room = "(SELECT name FROM rooms WHERE rooms.id = m.room_id)"
    columns = f"m.id, m.sent_at, m.kind, {room}, m.sender, m.recipient, m.body"
    # Both orders are chronological for what chatd stores (ids are handed out
    # in the order messages are said). A search on SQLite walks the index by
    # rowid, which FTS5 does newest first and stops after `limit`: 0.4 ms
    # instead of 240 ms for a word in half of a million messages; date, sender
    # and room queries walk their (sender, sent_at), (sent_at) and (room_id, id)
    # indexes.
    order = search_order if q.text is not None else "m.sent_at, m.id"
    if q.limit is None:
        query = f"SELECT {columns} FROM {tables}{where} ORDER BY {order}"
        return map(_log_entry, engine.stream(conn, query, params))
    descending = order.replace(",", " DESC,") + " DESC"
    latest = conn.execute(
        f"SELECT {columns} FROM {tables}{where} ORDER BY {descending} LIMIT :limit", params
    ).fetchall()
    latest.reverse()
    return map(_log_entry, latest)


def _public_log(room_id: int | None) -> str:
    """The rows of the public log: everything but private messages, of every room or one."""
    rows = (
        " FROM messages WHERE kind IN ('public', 'announce', 'join', 'leave', 'topic')"
        " AND sent_at >= :since AND sent_at < :until"
    )
    return rows if room_id is None else rows + " AND room_id = :room"


def iter_public_log_lines(
    conn: Connection,
    since: int,
    until: int,
    *,
    utc: bool = False,
    room_id: int | None = None,
) -> Iterator[str]:
    """Every public message, announcement, join, leave and topic in [since, until), in
    order: of every room (those of rooms other than #general tagged), or of one."""
    rows = engine_of(conn).stream(
        conn,
        f"SELECT {_line(engine_of(conn), utc=utc)}{_public_log(room_id)} ORDER BY sent_at, id",
        {"since": since, "until": until, "room": room_id},
    )
    return (line for (line,) in rows)


def count_public_log(
    conn: Connection, since: int, until: int, *, room_id: int | None = None
) -> int:
    row = conn.execute(
        f"SELECT count(*){_public_log(room_id)}",
        {"since": since, "until": until, "room": room_id},
    )
    return int(row.fetchone()[0])


def count_all_histories(conn: Connection) -> int:
    """How many lines all the users' histories hold together."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM messages WHERE sender_id IS NOT NULL"
        "  AND kind IN ('public', 'private', 'announce'))"
        " + (SELECT count(*) FROM messages WHERE recipient_id IS NOT NULL"
        "  AND sender_id IS DISTINCT FROM recipient_id)"
    )
    return int(row.fetchone()[0])


def count_personal_history(conn: Connection, user_id: int) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM messages WHERE sender_id = :user"
        "  AND kind IN ('public', 'private', 'announce'))"
        " + (SELECT count(*) FROM messages WHERE recipient_id = :user"
        "  AND sender_id IS DISTINCT FROM :user)",
        {"user": user_id},
    )
    return int(row.fetchone()[0])


def time_span(conn: Connection) -> tuple[int, int] | None:
    """The times of the first and the last message, if there are any."""
    first, last = conn.execute("SELECT min(sent_at), max(sent_at) FROM messages").fetchone()
    return None if first is None else (first, last)


def counts_by_kind(conn: Connection) -> dict[Kind, int]:
    rows = conn.execute("SELECT kind, count(*) FROM messages GROUP BY kind")
    return {Kind(kind): number for kind, number in rows}


def counts_by_day(conn: Connection, since: int, *, utc: bool = False) -> list[tuple[str, int]]:
    """(YYYY-MM-DD, messages said) for each day with messages since `since`."""
    day = engine_of(conn).day("sent_at", utc=utc)
    rows = conn.execute(
        f"SELECT {day} AS day, count(*) FROM messages"
        " WHERE sent_at >= :since AND kind IN ('public', 'private', 'announce')"
        " GROUP BY day ORDER BY day",
        {"since": since},
    )
    return [(day, number) for day, number in rows]


def most_active(conn: Connection, top: int) -> list[tuple[str, int]]:
    """The `top` senders by messages said, most first."""
    rows = conn.execute(
        "SELECT sender, count(*) AS said FROM messages"
        " WHERE kind IN ('public', 'private', 'announce')"
        f" GROUP BY sender{engine_of(conn).nocase} ORDER BY said DESC, sender LIMIT :top",
        {"top": top},
    )
    return [(name, number) for name, number in rows]
