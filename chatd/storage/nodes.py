"""The nodes sharing a PostgreSQL database, and the accounts online on each (SPEC §9).

A node registers itself at start, beats every few seconds, and removes its
rows at a clean stop; any node removes a node whose beat is too old, with its
sessions, and records their logouts. Times are the database's clock.
An admin's kick of a user online elsewhere is a row every node reads (`kick`,
`kicks_after`). See migrations/postgresql/0005_nodes.sql and 0006_kicks.sql.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chatd.clock import now_us
from chatd.storage import messages
from chatd.storage.engines import Connection, engine_of
from chatd.storage.engines.base import KICK_CHANNEL
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.rooms import Room


def register(conn: Connection, name: str) -> int:
    """A new node; returns its id."""
    (node_id,) = conn.execute(
        "INSERT INTO nodes (name) VALUES (?) RETURNING id", (name,)
    ).fetchone()
    return int(node_id)


# An account online on a node: (user id, name, away message or "").
Session = tuple[int, str, str]


def beat(conn: Connection, node_id: int, name: str, online: Callable[[], list[Session]]) -> bool:
    """Record that the node is alive; returns False if it had been declared dead (it is
    then registered again under its id, with the accounts `online()` says are on it)."""
    if conn.execute("UPDATE nodes SET heartbeat_at = now() WHERE id = ?", (node_id,)).rowcount:
        return True
    conn.execute("INSERT INTO nodes (id, name) VALUES (?, ?)", (node_id, name))
    set_sessions(conn, node_id=node_id, sessions=online())
    return False


def add_session(conn: Connection, *, node_id: int, user_id: int, name: str) -> None:
    conn.execute(
        "INSERT INTO node_sessions (node_id, user_id, name) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (node_id, user_id, name),
    )


def set_away(conn: Connection, *, node_id: int, user_id: int, away: str) -> None:
    """An account's away message on this node ("": back)."""
    conn.execute(
        "UPDATE node_sessions SET away = ? WHERE node_id = ? AND user_id = ?",
        (away, node_id, user_id),
    )


def remove_session(conn: Connection, *, node_id: int, user_id: int) -> None:
    conn.execute("DELETE FROM node_sessions WHERE node_id = ? AND user_id = ?", (node_id, user_id))


def set_sessions(conn: Connection, *, node_id: int, sessions: list[Session]) -> None:
    """Replace the node's sessions with `sessions`."""
    conn.execute("DELETE FROM node_sessions WHERE node_id = ?", (node_id,))
    conn.executemany(
        "INSERT INTO node_sessions (node_id, user_id, name, away) VALUES (?, ?, ?, ?)",
        [(node_id, user_id, name, away) for user_id, name, away in sessions],
    )


def remove(conn: Connection, node_id: int) -> None:
    """A node's clean stop: its row and its sessions' go."""
    conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))


def reap(conn: Connection, dead_after_s: float) -> list[str]:
    """Remove every node whose beat is older than `dead_after_s`, with its sessions, and
    record a logout for each account now online nowhere; returns those accounts' names.
    Call it in a transaction."""
    late = "SELECT id FROM nodes WHERE heartbeat_at < now() - make_interval(secs => ?)"
    if conn.execute(late, (dead_after_s,)).fetchone() is None:
        return []  # the usual case, at every beat: no lock taken
    # The logouts below are messages, written under the ids lock; taking it before
    # the rows' locks keeps the order every writer keeps (its sessions' rows refer
    # to its node's row), so a node declared dead while still writing cannot
    # deadlock with the node declaring it.
    engine_of(conn).in_commit_order(conn)
    dead = [
        node_id for (node_id,) in conn.execute(late + " FOR UPDATE SKIP LOCKED", (dead_after_s,))
    ]
    if not dead:
        return []
    gone = conn.execute(
        "SELECT DISTINCT user_id, name FROM node_sessions WHERE node_id = ANY(?)", (dead,)
    ).fetchall()
    conn.execute("DELETE FROM nodes WHERE id = ANY(?)", (dead,))
    still = {
        user_id
        for (user_id,) in conn.execute(
            "SELECT user_id FROM node_sessions WHERE user_id = ANY(?)",
            ([user_id for user_id, _ in gone],),
        )
    }
    left = [(user_id, name) for user_id, name in gone if user_id not in still]
    messages.insert_many(
        conn, (NewMessage(now_us(), Kind.LEAVE, user_id, name, "") for user_id, name in left)
    )
    return [name for _, name in left]


def online(
    conn: Connection, node_id: int, alive_s: float
) -> tuple[list[tuple[int | None, str]], dict[str, str]]:
    """Who is online on the other live nodes: (room id, name) for each account (room id
    None) and each room it belongs to besides #general; and name -> away message of
    those away (one query for both)."""
    rows = conn.execute(
        "SELECT NULL::bigint, s.name, max(s.away) FROM node_sessions AS s JOIN nodes AS n"
        " ON n.id = s.node_id"
        " WHERE s.node_id <> :me AND n.heartbeat_at >= now() - make_interval(secs => :alive)"
        " GROUP BY s.name"
        " UNION ALL"
        " SELECT DISTINCT m.room_id, s.name, '' FROM node_sessions AS s JOIN nodes AS n"
        " ON n.id = s.node_id JOIN memberships AS m ON m.user_id = s.user_id"
        " WHERE s.node_id <> :me AND n.heartbeat_at >= now() - make_interval(secs => :alive)",
        {"me": node_id, "alive": alive_s},
    ).fetchall()
    online = [(room_id, str(name)) for room_id, name, _ in rows]
    away = {str(name): str(text) for room_id, name, text in rows if room_id is None and text}
    return online, away


def online_elsewhere(conn: Connection, node_id: int, username: str, alive_s: float) -> bool:
    """Whether the account is online on another live node, as the database has it now
    (fresher than the last beat's reading: a login there a moment ago counts)."""
    row = conn.execute(
        "SELECT 1 FROM node_sessions AS s JOIN nodes AS n ON n.id = s.node_id"
        " JOIN users AS u ON u.id = s.user_id"
        " WHERE u.username = :name AND s.node_id <> :me"
        " AND n.heartbeat_at >= now() - make_interval(secs => :alive) LIMIT 1",
        {"name": username, "me": node_id, "alive": alive_s},
    ).fetchone()
    return row is not None


def rooms_with_ids(conn: Connection, room_ids: Iterable[int]) -> list[Room]:
    """The rooms with these ids (the rooms of users online elsewhere, for the hub)."""
    rows = conn.execute("SELECT id, name, topic FROM rooms WHERE id = ANY(?)", (list(room_ids),))
    return [Room(int(room_id), str(name), str(topic)) for room_id, name, topic in rows]


@dataclass(frozen=True)
class Kick:
    """An admin's /kick, for the nodes where the user is online (table kicks)."""

    id: int
    node_id: int  # the node that sent it
    username: str  # who is kicked, as the account spells it
    by: str
    reason: str


def kick(conn: Connection, *, node_id: int, username: str, by: str, reason: str) -> int | None:
    """Tell every node to disconnect a user's sessions, once this transaction commits:
    a row, and a notice carrying its id. `node_id` is the sender's. Returns the kick's
    id (None: no such account)."""
    engine_of(conn).in_commit_order(conn)  # kick ids commit in order, as message ids do
    row = conn.execute(
        "INSERT INTO kicks (node_id, user_id, by_name, reason)"
        " SELECT ?, id, ?, ? FROM users WHERE username = ? RETURNING id",
        (node_id, by, reason, username),
    ).fetchone()
    if row is None:
        return None
    conn.execute(f"SELECT pg_notify('{KICK_CHANNEL}', ?)", (str(row[0]),))
    return int(row[0])


def last_kick_id(conn: Connection) -> int:
    """The newest kick committed (0 for none): a starting node applies only later ones."""
    (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM kicks").fetchone()
    return int(newest)


def kicks_after(conn: Connection, after: int) -> list[Kick]:
    """Every kick committed after kick `after`, oldest first."""
    rows = conn.execute(
        "SELECT k.id, k.node_id, u.username, k.by_name, k.reason FROM kicks AS k"
        " JOIN users AS u ON u.id = k.user_id WHERE k.id > ? ORDER BY k.id",
        (after,),
    )
    return [Kick(int(i), int(node), str(who), str(by), str(why)) for i, node, who, by, why in rows]


def trim_kicks(conn: Connection, keep_s: float) -> None:
    """Forget the kicks older than `keep_s` (every node has applied them long since).
    Rows another node is deleting at the same time are left to it."""
    conn.execute(
        "DELETE FROM kicks WHERE id IN (SELECT id FROM kicks"
        " WHERE kicked_at < now() - make_interval(secs => ?) FOR UPDATE SKIP LOCKED)",
        (keep_s,),
    )
