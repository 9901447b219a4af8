"""Copying a whole chat from one database to another (`chatd-admin copy-db`).

Every row keeps its id, so memberships, catching up (by message id) and the
logs read the same in the copy; accounts keep their hashes and messages
their times. Either engine may be the source or the target: the rows go
through Python, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from chatd.rooms import GENERAL_ROOM_ID
from chatd.storage.engines import Connection, engine_of

CHUNK = 5000  # rows read and written at a time

# In the order they must be written (each refers only to those before it).
TABLES = ("users", "rooms", "memberships", "messages")
_COLUMNS = {
    "users": "id, username, password_hash, role, disabled, created_at, last_login_at, seen_upto",
    "rooms": "id, name, topic, created_at",
    "memberships": "room_id, user_id, joined_at",
    "messages": "id, sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body",
}
_ORDER = {"users": "id", "rooms": "id", "memberships": "room_id, user_id", "messages": "id"}


@dataclass(frozen=True)
class Census:
    """How many rows of each table a chat holds (#general, always there, not counted)."""

    users: int
    rooms: int
    memberships: int
    messages: int

    @property
    def total(self) -> int:
        return self.users + self.rooms + self.memberships + self.messages

    @property
    def is_empty(self) -> bool:
        return self.total == 0


def census(conn: Connection) -> Census:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM users),"
        " (SELECT count(*) FROM rooms WHERE id != ?),"
        " (SELECT count(*) FROM memberships),"
        " (SELECT count(*) FROM messages)",
        (GENERAL_ROOM_ID,),
    ).fetchone()
    return Census(*(int(n) for n in row))


def read_chunks(conn: Connection, table: str) -> Iterator[list[tuple[object, ...]]]:
    """Every row of `table`, in key order, CHUNK rows at a time."""
    rows = engine_of(conn).stream(
        conn, f"SELECT {_COLUMNS[table]} FROM {table} ORDER BY {_ORDER[table]}", ()
    )
    chunk: list[tuple[object, ...]] = []
    for row in rows:
        chunk.append(tuple(row))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_chunk(conn: Connection, table: str, rows: list[tuple[object, ...]]) -> None:
    """Insert rows read by read_chunks, ids and all; call it inside a write transaction."""
    if table == "rooms":  # #general exists in every chat: it takes the source's topic
        for room_id, _, topic, created_at in (r for r in rows if r[0] == GENERAL_ROOM_ID):
            conn.execute(
                "UPDATE rooms SET topic = ?, created_at = ? WHERE id = ?",
                (topic, created_at, room_id),
            )
        rows = [r for r in rows if r[0] != GENERAL_ROOM_ID]
        if not rows:
            return
    columns = _COLUMNS[table]
    marks = ", ".join("?" * (columns.count(",") + 1))
    conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    if table == "messages":
        engine_of(conn).index_messages(conn, cast(int, rows[0][0]), cast(int, rows[-1][0]))


def finish(conn: Connection, last_message_id: int) -> None:
    """After the rows: new ids come after the copied ones, and never reuse one the source
    handed out (a message deleted there keeps its id unused)."""
    engine_of(conn).continue_ids(conn, last_message_id)


def empty(conn: Connection) -> None:
    """Delete the whole chat (accounts, rooms, memberships, messages); call it in a
    write transaction."""
    for table in reversed(TABLES):
        where = f" WHERE id != {GENERAL_ROOM_ID}" if table == "rooms" else ""
        conn.execute(f"DELETE FROM {table}{where}")
    conn.execute("UPDATE rooms SET topic = '' WHERE id = ?", (GENERAL_ROOM_ID,))
