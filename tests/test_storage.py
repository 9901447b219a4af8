"""The database: migrations, file mode, WAL, and history across restarts."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from chatd.storage import connect, migrations, open_database
from chatd.storage.migrations import MigrationError
from tests.conftest import RunningServer


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE name != 'schema_migrations' ORDER BY name"
    ).fetchall()


def test_migrations_apply_in_order_on_a_blank_database(tmp_path: Path) -> None:
    conn = connect(tmp_path / "blank.db")
    applied = migrations.migrate(conn)
    known = migrations.available()
    assert [m.version for m in applied] == [m.version for m in known]
    assert migrations.current_version(conn) == known[-1].version
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"users", "messages", "schema_migrations"} <= names
    recorded = migrations.history(conn)
    assert [(v, n) for v, n, _ in recorded] == [(m.version, m.name) for m in known]


def test_migrating_a_current_database_changes_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "chat.db")
    migrations.migrate(conn)
    before = _schema(conn), migrations.history(conn)
    assert migrations.migrate(conn) == []
    assert (_schema(conn), migrations.history(conn)) == before


def test_a_failing_migration_is_rolled_back(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (folder / "0002_bad.sql").write_text(
        "CREATE TABLE b (y INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    conn = connect(tmp_path / "chat.db")
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        migrations.migrate(conn, folder)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" in tables and "b" not in tables
    assert migrations.current_version(conn) == 1


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "chat.db")
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(MigrationError, match="newer than this chatd"):
        migrations.migrate(conn)


def test_the_database_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    conn = open_database(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_history_survives_a_restart(make_server) -> None:  # type: ignore[no-untyped-def]
    first: RunningServer = make_server()
    alice = first.login("alice", "pass123")
    alice.send("remember me")
    alice.expect("^You said: remember me$")
    first.stop()
    second: RunningServer = make_server()
    alice = second.login("alice", "pass123")
    alice.send("/history")
    alice.expect("alice: remember me$")


def test_startup_import_keeps_a_password_changed_later(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first: RunningServer = make_server()
    alice = first.login("alice", "pass123")
    alice.send("/passwd")
    for answer in ("pass123", "changed-pw", "changed-pw"):
        alice.send(answer)
    alice.expect("^Password changed")
    first.stop()
    second: RunningServer = make_server()  # imports users.txt again on start
    second.login("alice", "changed-pw")
    client = second.connect()
    client.expect("^Username:")
    client.send("alice")
    client.send("pass123")
    client.expect("^Login failed")


def test_a_missing_users_file_is_not_an_error(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(users_file=tmp_path / "absent.txt")
    client = server.connect()
    client.expect("^Username:")
