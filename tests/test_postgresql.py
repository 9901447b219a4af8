"""PostgreSQL specifics: --db URLs, one clear line for every way connecting fails
(for chatd serve and chatd-admin alike), and chatd's SQL in psycopg's placeholders.

Everything else runs on both engines through the tests marked both_engines.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from chatd.storage import engines, migrations
from chatd.storage.engines import describe
from chatd.storage.engines.postgresql import to_pyformat
from tests.admin_helpers import run
from tests.conftest import TIMEOUT, RunningServer, free_port
from tests.pg_cluster import PrivateCluster
from tests.test_serve_command import chatd_command


def test_placeholders_become_psycopgs_and_literals_stay_as_they_are() -> None:
    assert to_pyformat("SELECT a FROM t WHERE b = ? AND c = ?") == (
        "SELECT a FROM t WHERE b = %s AND c = %s"
    )
    assert to_pyformat("WHERE id > :after AND id <= :upto") == (
        "WHERE id > %(after)s AND id <= %(upto)s"
    )
    # A time format's colons and a cast are not placeholders; % is escaped.
    assert to_pyformat("to_char(x, 'HH24:MI:SS') || ?::text || '50%'") == (
        "to_char(x, 'HH24:MI:SS') || %s::text || '50%%'"
    )
    assert to_pyformat("SELECT 'it''s :not ?' , :yes") == "SELECT 'it''s :not ?' , %(yes)s"


def test_a_password_is_never_shown() -> None:
    assert describe("postgresql://chat:s3cret@db.example:5432/chat") == (
        "postgresql://chat:***@db.example:5432/chat"
    )
    assert describe("postgresql://chat@db/chat?password=s3cret&sslmode=require") == (
        "postgresql://chat@db/chat?password=***&sslmode=require"
    )
    assert describe("postgresql://chat@db/chat") == "postgresql://chat@db/chat"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _bad_urls(postgres_server: str, silent_port: int) -> dict[str, tuple[str, str]]:
    """What is wrong -> (the --db URL, what the error line must say)."""
    base = postgres_server.rsplit("/", 1)[0]
    return {
        "missing database": (
            f"{base}/chatd_no_such_db",
            'database "chatd_no_such_db" does not exist',
        ),
        "no server": (
            f"postgresql://chat:s3cret-pw@127.0.0.1:{free_port()}/chat",
            "Connection refused",
        ),
        "silent server": (
            f"postgresql://chat@127.0.0.1:{silent_port}/chat?connect_timeout=2",
            "timeout",
        ),
        "bad URL": ("postgresql://chat@127.0.0.1/chat?colour=blue", "bad database URL"),
        "bad port": ("postgresql://chat@127.0.0.1:http/chat", 'invalid integer value "http"'),
    }


def admin_command() -> list[str]:
    """The installed `chatd-admin` console script."""
    script = shutil.which("chatd-admin", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "admin"]


CASES = ["missing database", "no server", "silent server", "bad URL", "bad port"]


@pytest.mark.parametrize("case", CASES)
def test_chatd_admin_says_what_is_wrong_in_one_line(
    case: str, postgres_server: str, silent_port: int
) -> None:
    url, expected = _bad_urls(postgres_server, silent_port)[case]
    result = run("list-users", "--db", url)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0]
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize("case", CASES)
def test_chatd_serve_says_what_is_wrong_in_one_line(
    case: str, postgres_server: str, silent_port: int
) -> None:
    url, expected = _bad_urls(postgres_server, silent_port)[case]
    result = subprocess.run(
        [*chatd_command(), "serve", "--port", "0", "--db", url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and expected in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_chatd_db_from_the_environment_reaches_postgresql(
    chat_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATD_DB", chat_db)
    assert run("add-user", "zoe", "--password-stdin", input="zoe-pw\n").exit_code == 0
    listed = run("list-users", "--json")
    assert '"zoe"' in listed.output
    newest = migrations.available(migrations.migrations_dir("postgresql"))[-1].version
    assert run("migrate").output.strip() == f"Schema version {newest}."


def test_messages_by_a_name_are_found_by_its_index_whatever_the_case(
    postgres_database: tuple[str, Any],
) -> None:
    """`logs --user NAME` asks for the very expression messages_by_sender_name is built
    on (migration 0007), so the index serves it; and names match case aside, as on
    citext."""
    from chatd.storage import connect, messages
    from chatd.storage.engines.postgresql import POSTGRESQL

    url, keeper = postgres_database
    keeper.execute(
        "INSERT INTO messages (sent_at, kind, room_id, sender, body)"
        " SELECT i, 'public', (SELECT min(id) FROM rooms), 'User' || (i % 100), 'hi'"
        " FROM generate_series(1, 20000) AS i"
    )
    try:
        keeper.execute("ANALYZE messages")
        condition = POSTGRESQL.same_name("m.sender", "sender")
        plan = keeper.execute(
            f"EXPLAIN SELECT m.id FROM messages m WHERE {condition.replace(':sender', '%s')}",
            ("USER7",),
        ).fetchall()
        assert "messages_by_sender_name" in " ".join(line for (line,) in plan)
        conn = connect(url)
        try:
            found = list(messages.query(conn, messages.LogQuery(sender="uSeR7")))
        finally:
            conn.close()
        assert len(found) == 200
        assert {entry.sender for entry in found} == {"User7"}
    finally:
        keeper.execute("DELETE FROM messages")


def test_a_silent_server_is_found_dead_within_a_minute_unless_the_url_says_otherwise(
    postgres_server: str,
) -> None:
    """chatd's connections probe a quiet server and give up on unacknowledged data (a
    host lost without a reset would otherwise hold the writer for TCP's 15 minutes);
    the URL's own options win."""
    from chatd.storage import connect
    from chatd.storage.engines.postgresql import PostgresConnection

    conn = connect(postgres_server)
    try:
        given = cast(PostgresConnection, conn).raw.info.get_parameters()
    finally:
        conn.close()
    assert given["keepalives"] == "1"  # an idle connection is probed...
    assert int(given["keepalives_idle"]) <= 30
    assert int(given["tcp_user_timeout"]) <= 60_000  # ...and given up on unanswered
    assert given["application_name"] == "chatd"
    separator = "&" if "?" in postgres_server else "?"
    conn = connect(f"{postgres_server}{separator}tcp_user_timeout=5000&keepalives_idle=30")
    try:
        given = cast(PostgresConnection, conn).raw.info.get_parameters()
    finally:
        conn.close()
    assert (given["tcp_user_timeout"], given["keepalives_idle"]) == ("5000", "30")


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_after_its_connections_are_cut_the_server_reconnects_and_lies_about_nothing(
    server: RunningServer, chat_db: str
) -> None:
    import psycopg

    alice = server.login("alice", "pass123")
    alice.send("before")
    alice.expect("^You said: before$")
    with psycopg.connect(chat_db, autocommit=True) as admin:  # as a restart of PostgreSQL
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'chatd'"
        ).fetchone()
    assert cut is not None and cut[0] >= 2  # the writer's and the readers'

    # The writer's connection was cut while idle: nothing of the next batch was
    # written when that showed, so it goes again on a new connection. (A message
    # caught in the cut itself gets an error: tests/test_database_restart.py.)
    alice.send("after")
    alice.expect("^You said: after$")
    alice.send("/history")  # the readers reconnect too, and read again
    alice.expect(r"alice: after$")
    server.login("bob", "qwerty")  # so do the password checkers
    with psycopg.connect(chat_db) as check:
        bodies = [
            body for (body,) in check.execute("SELECT body FROM messages WHERE kind = 'public'")
        ]
    assert bodies == ["before", "after"]


def test_without_psycopg_a_url_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "chatd.storage.engines.postgresql", raising=False)
    monkeypatch.delattr(engines, "postgresql", raising=False)
    result = run("list-users", "--db", "postgresql://chat@127.0.0.1/chat")
    assert result.exit_code == 1
    assert result.output == (
        "Error: PostgreSQL support is not installed: pip install 'chatd[postgres]'\n"
    )


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["list-users"]], ids=" ".join)
def test_a_wrong_password_is_one_line_naming_the_user_and_never_the_password(
    command: list[str], private_postgres: PrivateCluster
) -> None:
    """On a server that asks for passwords (the private cluster's scram-sha-256)."""
    wrong = "WRONG-pw-" + secrets.token_hex(4)
    url = private_postgres.url("postgres", password=wrong)
    program = chatd_command() if command[0] == "serve" else admin_command()
    result = subprocess.run(
        [*program, *command, "--db", url], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: cannot connect to postgresql://chat:***@127.0.0.1:")
    assert lines[0].endswith('password authentication failed for user "chat"'), lines[0]
    assert wrong not in result.stderr
