"""Rooms and who belongs to them. #general is room 1 and holds every account implicitly."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.clock import now_us
from chatd.rooms import GENERAL_ROOM_ID
from chatd.storage.engines import Connection


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    name: str
    topic: str


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One room as `/rooms` and `chatd-admin rooms` show it."""

    name: str
    topic: str
    members: int
    messages: int
    last_activity: int | None  # UTC microseconds of its latest message


def find(conn: Connection, name: str) -> Room | None:
    row = conn.execute("SELECT id, name, topic FROM rooms WHERE name = ?", (name,)).fetchone()
    return None if row is None else Room(*row)


def find_or_create(conn: Connection, name: str) -> Room:
    """The room called `name` (canonical, see chatd.rooms), created if it does not exist."""
    conn.execute(
        "INSERT INTO rooms (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, now_us()),
    )
    room = find(conn, name)
    assert room is not None
    return room


def rooms_of(conn: Connection, user_id: int) -> list[Room]:
    """The rooms an account belongs to, #general first, then by name."""
    rows = conn.execute(
        "SELECT id, name, topic FROM rooms WHERE id = :general"
        " OR id IN (SELECT room_id FROM memberships WHERE user_id = :user)"
        " ORDER BY id != :general, name",
        {"general": GENERAL_ROOM_ID, "user": user_id},
    )
    return [Room(*row) for row in rows]


def add_member(conn: Connection, room_id: int, user_id: int) -> bool:
    """Make the account a member; False if it was one already."""
    if room_id == GENERAL_ROOM_ID:
        return False
    cursor = conn.execute(
        "INSERT INTO memberships (room_id, user_id, joined_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (room_id, user_id, now_us()),
    )
    return cursor.rowcount == 1


def remove_member(conn: Connection, room_id: int, user_id: int) -> bool:
    """End a membership; False if there was none."""
    cursor = conn.execute(
        "DELETE FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id)
    )
    return cursor.rowcount == 1


def set_topic(conn: Connection, room_id: int, topic: str) -> None:
    conn.execute("UPDATE rooms SET topic = ? WHERE id = ?", (topic, room_id))


def member_counts(conn: Connection) -> dict[int, int]:
    """Room id -> how many accounts belong to it (#general: every account)."""
    counts = dict(conn.execute("SELECT room_id, count(*) FROM memberships GROUP BY room_id"))
    (everyone,) = conn.execute("SELECT count(*) FROM users").fetchone()
    counts[GENERAL_ROOM_ID] = everyone
    return counts


def every_room(conn: Connection) -> list[Room]:
    """Every room, #general first, then by name."""
    rows = conn.execute(
        "SELECT id, name, topic FROM rooms ORDER BY id != ?, name", (GENERAL_ROOM_ID,)
    )
    return [Room(*row) for row in rows]


def summaries(conn: Connection) -> list[RoomSummary]:
    """Every room with its members, messages and last activity, #general first."""
    members = member_counts(conn)
    summaries = []
    for room in every_room(conn):
        said, last = conn.execute(
            "SELECT count(*), max(sent_at) FROM messages"
            " WHERE room_id = ? AND kind IN ('public', 'announce')",
            (room.id,),
        ).fetchone()
        summaries.append(RoomSummary(room.name, room.topic, members.get(room.id, 0), said, last))
    return summaries
