"""chatd-admin copy-db: a whole chat from one database into another, SQLite or PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatd.storage import Connection, engine_of, messages, open_database, transaction, users
from chatd.storage.messages import Kind, NewMessage
from tests.admin_helpers import run, seed

# Each test copies between a SQLite file and the engine of the test (see tests/conftest.py).
pytestmark = pytest.mark.both_engines

_TABLES = {
    "users": "id, username, password_hash, role, disabled, created_at, last_login_at, seen_upto",
    "rooms": "id, name, topic, created_at",
    "memberships": "room_id, user_id, joined_at",
    "messages": "id, sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body",
}


def _dump(target: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the chat, in key order (#general's time aside: each database made it)."""
    conn = open_database(target)
    try:
        dump = {
            table: [tuple(row) for row in conn.execute(f"SELECT {columns} FROM {table}")]
            for table, columns in _TABLES.items()
        }
    finally:
        conn.close()
    dump["rooms"] = [row if row[0] != 1 else row[:3] for row in dump["rooms"]]
    return {table: sorted(rows, key=repr) for table, rows in dump.items()}


def _seed_rooms(target: str) -> None:
    """#dev with alice and bob and a topic, a deleted newest message, catching-up marks."""
    conn = open_database(target)
    alice, bob = users.get(conn, "alice"), users.get(conn, "bob")
    with transaction(conn):
        dev = conn.execute("INSERT INTO rooms (name, topic, created_at) VALUES ('#dev', 't', 5)")
        del dev
        (dev_id,) = conn.execute("SELECT id FROM rooms WHERE name = '#dev'").fetchone()
        for user in (alice, bob):
            conn.execute(
                "INSERT INTO memberships (room_id, user_id, joined_at) VALUES (?, ?, 7)",
                (dev_id, user.id),
            )
        said = messages.insert_many(
            conn,
            [
                NewMessage(10, Kind.PUBLIC, alice.id, "alice", "ship it", room_id=dev_id),
                NewMessage(11, Kind.PUBLIC, bob.id, "bob", "shipped, pizza", room_id=dev_id),
            ],
        )
        users.set_seen_upto(conn, bob.id, said[0])
        conn.execute("DELETE FROM messages WHERE id = ?", (said[-1],))  # the newest id, gone
    conn.close()


def _last_id(target: str) -> int:
    conn = open_database(target)
    try:
        return messages.last_id(conn)
    finally:
        conn.close()


def _bodies(target: str, *args: str) -> list[str]:
    result = run("logs", "--json", "--limit", "0", "--db", target, *args)
    assert result.exit_code == 0, result.output
    return [m["body"] for m in json.loads(result.output)]


def test_copy_db_carries_the_whole_chat_there_and_back(chat_db: str, tmp_path: Path) -> None:
    source = str(tmp_path / "source.db")
    seed(source)
    _seed_rooms(source)
    result = run("copy-db", source, chat_db)
    assert result.exit_code == 0, result.output
    assert "Copied 3 accounts, 2 rooms, 2 memberships and 8 messages" in result.output
    assert _dump(chat_db) == _dump(source)
    assert _last_id(chat_db) == _last_id(source)  # the deleted newest id stays used
    assert _bodies(chat_db, "--query", "PIZZA") == _bodies(source, "--query", "pizza")
    assert _bodies(chat_db, "--query", "cafe") == ["the café is closed"]
    hashed = run("list-users", "--json", "--db", chat_db)
    assert [u["username"] for u in json.loads(hashed.output)] == ["alice", "bob", "carol"]

    back = str(tmp_path / "back.db")
    assert run("copy-db", chat_db, back).exit_code == 0
    assert _dump(back) == _dump(source)
    assert _last_id(back) == _last_id(source)


def test_the_copy_goes_on_numbering_after_the_copied_ids(chat_db: str, tmp_path: Path) -> None:
    source = str(tmp_path / "source.db")
    seed(source)
    _seed_rooms(source)
    assert run("copy-db", source, chat_db).exit_code == 0
    conn: Connection = open_database(chat_db)
    with transaction(conn):
        new_id = messages.insert(conn, NewMessage(99, Kind.PUBLIC, None, "zoe", "after the copy"))
        added = users.add(conn, "zoe", "$2b$04$" + "x" * 53)
        (room,) = conn.execute(
            "INSERT INTO rooms (name, created_at) VALUES ('#new', 1) RETURNING id"
        ).fetchone()
    conn.close()
    assert new_id == _last_id(source) + 1
    assert added.id == 4 and room == 3
    assert "after the copy" in _bodies(chat_db, "--query", "copy")


def test_copy_db_refuses_a_target_holding_a_chat_unless_told(
    chat_db: str, tmp_path: Path, engine: str
) -> None:
    source = str(tmp_path / "source.db")
    seed(source)
    seed(chat_db)
    _seed_rooms(chat_db)
    before = _dump(chat_db)
    refused = run("copy-db", source, chat_db)
    assert refused.exit_code == 1
    assert "already holds a chat (3 accounts, 8 messages)" in refused.output
    assert "--replace" in refused.output
    assert _dump(chat_db) == before
    replaced = run("copy-db", source, chat_db, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert _dump(chat_db) == _dump(source)
    assert _bodies(chat_db, "--query", "ship") == []  # the old chat is gone from search too
    conn = open_database(chat_db)
    assert engine_of(conn).name == engine
    conn.close()


def test_copy_db_errors_are_one_line(chat_db: str, tmp_path: Path) -> None:
    missing = run("copy-db", str(tmp_path / "nope.db"), chat_db)
    assert missing.exit_code == 1 and "does not exist" in missing.output
    same = run("copy-db", chat_db, chat_db)
    assert same.exit_code == 2 and "the same database" in same.output
