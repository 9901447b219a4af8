"""The nodes sharing a PostgreSQL database, and the accounts online on each (SPEC §9).

A node registers itself at start, beats every few seconds, and removes its
rows at a clean stop; any node removes a node whose beat is too old, with its
sessions, and records their logouts. Times are the database's clock.
See migrations/postgresql/0005_nodes.sql.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from chatd.clock import now_us
from chatd.storage import messages
from chatd.storage.engines import Connection
from chatd.storage.messages import Kind, NewMessage


def register(conn: Connection, name: str) -> int:
    """A new node; returns its id."""
    (node_id,) = conn.execute(
        "INSERT INTO nodes (name) VALUES (?) RETURNING id", (name,)
    ).fetchone()
    return int(node_id)


def beat(conn: Connection, node_id: int, name: str, online: Iterable[tuple[int, str]]) -> bool:
    """Record that the node is alive; returns False if it had been declared dead (it is
    then registered again under its id, with the accounts `online` on it now)."""
    if conn.execute("UPDATE nodes SET heartbeat_at = now() WHERE id = ?", (node_id,)).rowcount:
        return True
    conn.execute("INSERT INTO nodes (id, name) VALUES (?, ?)", (node_id, name))
    for user_id, user_name in online:
        add_session(conn, node_id=node_id, user_id=user_id, name=user_name)
    return False


def add_session(conn: Connection, *, node_id: int, user_id: int, name: str) -> None:
    conn.execute(
        "INSERT INTO node_sessions (node_id, user_id, name) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (node_id, user_id, name),
    )


def remove_session(conn: Connection, *, node_id: int, user_id: int) -> None:
    conn.execute("DELETE FROM node_sessions WHERE node_id = ? AND user_id = ?", (node_id, user_id))


def set_sessions(conn: Connection, *, node_id: int, sessions: list[tuple[int, str]]) -> None:
    """Replace the node's sessions with `sessions` ((user id, name) of each account)."""
    conn.execute("DELETE FROM node_sessions WHERE node_id = ?", (node_id,))
    conn.executemany(
        "INSERT INTO node_sessions (node_id, user_id, name) VALUES (?, ?, ?)",
        [(node_id, user_id, name) for user_id, name in sessions],
    )


def remove(conn: Connection, node_id: int) -> None:
    """A node's clean stop: its row and its sessions' go."""
    conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))


def reap(conn: Connection, dead_after_s: float) -> list[str]:
    """Remove every node whose beat is older than `dead_after_s`, with its sessions, and
    record a logout for each account now online nowhere; returns those accounts' names.
    Call it in a transaction."""
    dead = [
        node_id
        for (node_id,) in conn.execute(
            "SELECT id FROM nodes WHERE heartbeat_at < now() - make_interval(secs => ?)"
            " FOR UPDATE SKIP LOCKED",
            (dead_after_s,),
        )
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


def online(conn: Connection, node_id: int, alive_s: float) -> list[tuple[int | None, str]]:
    """(room id, name) for each account online on another live node and each room it
    belongs to besides #general (room id None: the account itself)."""
    rows = conn.execute(
        "SELECT DISTINCT NULL::bigint, s.name FROM node_sessions AS s JOIN nodes AS n"
        " ON n.id = s.node_id"
        " WHERE s.node_id <> :me AND n.heartbeat_at >= now() - make_interval(secs => :alive)"
        " UNION ALL"
        " SELECT DISTINCT m.room_id, s.name FROM node_sessions AS s JOIN nodes AS n"
        " ON n.id = s.node_id JOIN memberships AS m ON m.user_id = s.user_id"
        " WHERE s.node_id <> :me AND n.heartbeat_at >= now() - make_interval(secs => :alive)",
        {"me": node_id, "alive": alive_s},
    ).fetchall()
    return [(room_id, str(name)) for room_id, name in rows]


def kick(conn: Connection, *, node_id: int, username: str, by: str, reason: str) -> None:
    """Tell the other nodes to disconnect a user's sessions (when this transaction
    commits); `node_id` is the sender's."""
    payload = json.dumps({"node": node_id, "user": username, "by": by, "reason": reason})
    conn.execute("SELECT pg_notify('chatd_kicks', ?)", (payload,))


def kick_of(payload: str) -> tuple[int, str, str, str]:
    """(sending node, user, by, reason) of a kick's notice."""
    kick = json.loads(payload)
    return int(kick["node"]), str(kick["user"]), str(kick["by"]), str(kick["reason"])
