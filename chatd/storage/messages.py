"""Everything said in the chat: writing it, and reading it back for users and admins."""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class Kind(enum.StrEnum):
    PUBLIC = "public"  # said to everyone
    PRIVATE = "private"  # /msg to one user
    ANNOUNCE = "announce"  # an admin's announcement
    JOIN = "join"
    LEAVE = "leave"


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

    def as_row(self) -> tuple[int, str, int | None, str, int | None, str | None, str]:
        return (
            self.sent_at,
            self.kind,
            self.sender_id,
            self.sender,
            self.recipient_id,
            self.recipient,
            self.body,
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read back from the database."""

    id: int
    sent_at: int
    kind: Kind
    sender: str
    recipient: str | None
    body: str


_INSERT = (
    "INSERT INTO messages (sent_at, kind, sender_id, sender, recipient_id, recipient, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, sent_at, kind, sender, recipient, body"


def insert(conn: sqlite3.Connection, message: NewMessage) -> None:
    conn.execute(_INSERT, message.as_row())


def insert_many(conn: sqlite3.Connection, messages: Iterable[NewMessage]) -> None:
    conn.executemany(_INSERT, (m.as_row() for m in messages))


def _stored(row: tuple[int, int, str, str, str | None, str]) -> StoredMessage:
    return StoredMessage(row[0], row[1], Kind(row[2]), row[3], row[4], row[5])


def personal_history(conn: sqlite3.Connection, user_id: int, limit: int) -> list[StoredMessage]:
    """The last `limit` things a user said or was sent privately, oldest first.

    Two index range scans (by sender, by recipient), each stopped after
    `limit` rows, then merged: fast however long the history is.
    """
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM ("
        f"  SELECT * FROM (SELECT {_COLUMNS} FROM messages"
        "    WHERE sender_id = :user AND kind IN ('public', 'private', 'announce')"
        "    ORDER BY id DESC LIMIT :limit)"
        "  UNION ALL"
        f"  SELECT * FROM (SELECT {_COLUMNS} FROM messages"
        "    WHERE recipient_id = :user AND sender_id IS NOT :user"
        "    ORDER BY id DESC LIMIT :limit)"
        ") ORDER BY id DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    rows.reverse()
    return [_stored(row) for row in rows]


def iter_personal_history(conn: sqlite3.Connection, user_id: int) -> Iterator[StoredMessage]:
    """A user's whole history, oldest first, streamed."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM messages"
        " WHERE (sender_id = :user AND kind IN ('public', 'private', 'announce'))"
        "    OR recipient_id = :user"
        " ORDER BY id",
        {"user": user_id},
    )
    return map(_stored, rows)


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
