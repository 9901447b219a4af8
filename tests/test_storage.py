"""The database: migrations, file mode, WAL, and history across restarts.

The migration and restart tests run on SQLite and on PostgreSQL (each has its
own migrations folder: migrations/ and migrations/postgresql/).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from chatd.storage import Connection, connect, engine_of, migrations, open_database
from chatd.storage.migrations import MigrationError
from tests.conftest import RunningServer

pytestmark = pytest.mark.both_engines


def _tables(conn: Connection) -> set[str]:
    if engine_of(conn).name == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in rows}


def _schema(conn: Connection) -> list[tuple[str, str]]:
    if engine_of(conn).name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE name != 'schema_migrations'"
    else:
        query = (
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name != 'schema_migrations'"
            " UNION ALL SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    return sorted(conn.execute(query).fetchall())


def _known(conn: Connection) -> list[migrations.Migration]:
    return migrations.available(migrations.migrations_dir(engine_of(conn).migrations_folder))


def test_migrations_apply_in_order_on_a_blank_database(blank_db: str) -> None:
    conn = connect(blank_db)
    applied = migrations.migrate(conn)
    known = _known(conn)
    assert [m.version for m in applied] == [m.version for m in known]
    assert migrations.current_version(conn) == known[-1].version
    assert {"users", "rooms", "memberships", "messages", "schema_migrations"} <= _tables(conn)
    recorded = migrations.history(conn)
    assert [(v, n) for v, n, _ in recorded] == [(m.version, m.name) for m in known]


def test_both_engines_reach_the_same_schema_version() -> None:
    sqlite, postgresql = (
        migrations.available(),
        migrations.available(migrations.migrations_dir("postgresql")),
    )
    assert sqlite[-1].version == postgresql[-1].version


def test_migrating_a_current_database_changes_nothing(blank_db: str) -> None:
    conn = connect(blank_db)
    migrations.migrate(conn)
    before = _schema(conn), migrations.history(conn)
    assert migrations.migrate(conn) == []
    assert (_schema(conn), migrations.history(conn)) == before


def test_a_failing_migration_is_rolled_back(blank_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (folder / "0002_bad.sql").write_text(
        "CREATE TABLE b (y INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    conn = connect(blank_db)
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        migrations.migrate(conn, folder)
    tables = _tables(conn)
    assert "a" in tables and "b" not in tables
    assert migrations.current_version(conn) == 1


def test_a_database_newer_than_the_code_is_refused(blank_db: str) -> None:
    conn = open_database(blank_db)
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
