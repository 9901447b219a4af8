"""Migration 0004 moves an existing chat to rooms: everything lands in #general, nothing lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatd.storage import messages, migrations, open_database
from chatd.storage.messages import LogQuery


def _version_3_database(path: Path) -> None:
    """A chat as chatd stored it before rooms: the first three migrations and some talk."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in migrations.available()[:3]:
        for statement in migration.statements():
            conn.execute(statement)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL)"
    )
    conn.executemany("INSERT INTO schema_migrations VALUES (?, 'x', 0)", [(1,), (2,), (3,)])
    conn.execute(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES"
        " (1, 'alice', 'h', 0), (2, 'bob', 'h', 0), (3, 'carol', 'h', 0)"
    )
    rows = [
        (1, "join", 1, "alice", None, None, ""),
        (2, "public", 1, "alice", None, None, "pizza at noon"),
        (3, "private", 1, "alice", 2, "bob", "psst"),
        (4, "announce", 2, "bob", None, None, "fire drill"),
        (5, "leave", 1, "alice", None, None, "left"),
        (6, "public", 2, "bob", None, None, "after alice left"),
    ]
    conn.executemany(
        "INSERT INTO messages (sent_at, kind, sender_id, sender, recipient_id, recipient, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages")
    conn.close()


def test_every_existing_message_lands_in_general_with_its_id(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_3_database(path)
    conn = open_database(path)
    assert migrations.current_version(conn) >= 4
    rows = conn.execute("SELECT id, kind, room_id FROM messages ORDER BY id").fetchall()
    assert [(i, room) for i, _, room in rows] == [
        (1, 1), (2, 1), (3, None), (4, 1), (5, 1), (6, 1)
    ]  # fmt: skip
    found = list(messages.query(conn, LogQuery(text="pizza")))
    assert [m.id for m in found] == [2]
    assert messages.history_lines(conn, 1, 10)[-1].endswith("alice -> bob (private): psst")


def test_accounts_catch_up_from_their_last_logout(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_3_database(path)
    conn = open_database(path)
    seen = dict(conn.execute("SELECT username, seen_upto FROM users"))
    assert seen == {"alice": 5, "bob": None, "carol": None}
    count, lines = messages.room_lines(conn, 1, 20, after=seen["alice"])
    assert count == 1 and lines[0].endswith("bob: after alice left")


def test_the_migration_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_3_database(path)
    open_database(path).close()
    conn = open_database(path)
    assert migrations.pending(conn) == []
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 6
