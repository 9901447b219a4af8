"""chatd-admin logs, full-text search and stats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chatd.storage import connect, messages, migrations, open_database, transaction
from chatd.storage.messages import Kind, NewMessage
from tests.admin_helpers import run, seed

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


@pytest.fixture
def db(chat_db: str) -> str:
    seed(chat_db)
    return chat_db


def _bodies(db: Path, *args: str) -> list[str]:
    result = run("logs", "--json", "--db", str(db), *args)
    assert result.exit_code == 0, result.output
    return [m["body"] for m in json.loads(result.output)]


def test_logs_prints_a_table_of_everything_in_order(db: Path) -> None:
    result = run("logs", "--db", str(db))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "time" in lines[0] and "message" in lines[0]
    assert "2026-11-20 09:00:05" in result.output
    assert result.output.index("good morning") < result.output.index("café is closed")


def test_logs_json_is_one_valid_array_with_every_field(db: Path) -> None:
    data = json.loads(run("logs", "--json", "--utc", "--db", str(db)).output)
    assert len(data) == 7
    private = next(m for m in data if m["kind"] == "private")
    assert private["sender"] == "alice" and private["recipient"] == "bob"
    assert set(private) == {"id", "time", "room", "kind", "sender", "recipient", "body"}
    assert private["room"] is None and data[0]["room"] == "#general"
    assert data[0]["time"].endswith("+00:00")
    empty = run("logs", "--json", "--user", "nobody", "--db", str(db))
    assert json.loads(empty.output) == []


def test_logs_filter_by_user_and_dates(db: Path) -> None:
    assert _bodies(db, "--user", "BOB") == ["morning! pizza for lunch?", "the café is closed"]
    assert _bodies(db, "--since", "2026-11-21", "--user", "bob") == ["the café is closed"]
    assert _bodies(db, "--until", "2026-11-20", "--user", "bob") == ["morning! pizza for lunch?"]
    assert _bodies(db, "--since", "2026-11-20 09:00:30", "--until", "2026-11-20 09:01:30") == [
        "morning! pizza for lunch?"
    ]


def test_logs_limit_keeps_the_latest(db: Path) -> None:
    assert _bodies(db, "--limit", "2") == ["evil \x1b[2J escape", "left"]
    assert len(_bodies(db, "--limit", "0")) == 7


def test_full_text_search(db: Path) -> None:
    assert _bodies(db, "--query", "pizza") == ["morning! pizza for lunch?", "secret pizza plan"]
    assert _bodies(db, "--query", "PIZZA lunch") == ["morning! pizza for lunch?"]
    assert _bodies(db, "--query", "cafe") == ["the café is closed"]  # accents folded
    assert _bodies(db, "--query", "piz*") == ["morning! pizza for lunch?", "secret pizza plan"]
    assert _bodies(db, "--query", 'he said "AND" OR -x') == []  # taken literally, no syntax error
    assert _bodies(db, "--query", "pizza", "--user", "alice") == ["secret pizza plan"]


def test_search_index_follows_new_and_deleted_messages(db: Path) -> None:
    conn = open_database(db)
    with transaction(conn):
        conn.execute("DELETE FROM messages WHERE body = 'secret pizza plan'")
    assert _bodies(db, "--query", "pizza") == ["morning! pizza for lunch?"]
    with transaction(conn):
        messages.insert(conn, NewMessage(1, Kind.PUBLIC, None, "zoe", "pizza again"))
    assert "pizza again" in _bodies(db, "--query", "pizza")


def test_table_output_shows_control_characters_as_escapes(db: Path) -> None:
    result = run("logs", "--query", "evil", "--db", str(db))
    assert "\x1b" not in result.output
    assert "\\x1b[2J" in result.output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--since", "last week"], "cannot read 'last week' as a date"),
        (["--until", "2026-13-40"], "cannot read"),
        (["--query", "   "], "no words"),
        (["--limit", "-1"], "Invalid value"),
    ],
)
def test_logs_bad_input_is_one_line(db: Path, args: list[str], error: str) -> None:
    result = run("logs", "--db", str(db), *args)
    assert result.exit_code == 2
    assert error in result.output


def test_stats(db: Path) -> None:
    result = run("stats", "--db", str(db), "--days", "100000")
    assert result.exit_code == 0, result.output
    assert "Users:     3 (1 admin, 0 disabled)" in result.output
    assert "Messages:  5" in result.output
    assert "2026-11-20" in result.output and "2026-11-21" in result.output
    data = json.loads(run("stats", "--json", "--days", "100000", "--db", str(db)).output)
    assert data["messages"] == 5
    assert data["most_active"] == {"alice": 3, "bob": 2}
    assert data["per_day"] == {"2026-11-20": 3, "2026-11-21": 2}


def test_commands_bring_an_old_database_up_to_date(tmp_path: Path) -> None:
    old = tmp_path / "only-first"
    old.mkdir()
    shutil.copy(migrations.migrations_dir() / "0001_initial.sql", old)
    path = tmp_path / "old.db"
    conn = connect(path)
    migrations.migrate(conn, old)
    with transaction(conn):  # a row as version 1 of chatd wrote it
        conn.execute(
            "INSERT INTO messages (sent_at, kind, sender, body)"
            " VALUES (1, 'public', 'zoe', 'written before search')"
        )
    conn.close()
    found = _bodies(path, "--query", "search")
    assert found == ["written before search"]  # migrated, and the old rows indexed
    result = run("migrate", "--db", str(path))
    assert result.output.strip() == f"Schema version {migrations.available()[-1].version}."
