"""chatd-admin's account commands, through typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatd.accounts import PasswordHasher
from chatd.storage import open_database, users
from tests.admin_helpers import run, seed

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


@pytest.fixture
def db(chat_db: str) -> str:
    seed(chat_db)
    return chat_db


def _user(db: Path, name: str) -> users.User:
    conn = open_database(db)
    try:
        return users.get(conn, name)
    finally:
        conn.close()


def test_add_user_prompts_twice_and_hashes(db: Path) -> None:
    result = run("add-user", "dave", "--db", str(db), input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert "Added user dave." in result.output
    dave = _user(db, "dave")
    assert dave.role == "user" and dave.password_hash.startswith("$2b$04$")
    assert PasswordHasher(4).verify("s3cret", dave.password_hash)


def test_add_user_admin_from_stdin(db: Path) -> None:
    result = run("add-user", "eve", "--admin", "--password-stdin", "--db", str(db), input="pw\n")
    assert result.exit_code == 0, result.output
    assert _user(db, "eve").is_admin


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (["add-user", "ALICE", "--password-stdin"], "x\n", "already exists"),
        (["add-user", "../etc", "--password-stdin"], "x\n", "invalid username"),
        (["add-user", "dave", "--password-stdin"], "x" * 73 + "\n", "bcrypt takes at most 72"),
        (["add-user", "dave", "--password-stdin"], "", "no password on stdin"),
        (["remove-user", "nobody", "--yes"], None, "no user named 'nobody'"),
        (["passwd", "nobody", "--password-stdin"], "x\n", "no user named 'nobody'"),
        (["disable-user", "nobody"], None, "no user named 'nobody'"),
        (["set-role", "alice", "boss"], None, "role must be one of"),
    ],
)
def test_account_errors_are_one_clear_line(
    db: Path, args: list[str], stdin: str | None, error: str
) -> None:
    result = run(*args, "--db", str(db), input=stdin)
    assert result.exit_code != 0
    assert error in result.output
    assert "Traceback" not in result.output


def test_a_missing_database_is_refused(tmp_path: Path) -> None:
    result = run("list-users", "--db", str(tmp_path / "nope.db"))
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_passwd_changes_the_password(db: Path) -> None:
    result = run("passwd", "alice", "--password-stdin", "--db", str(db), input="n3w\n")
    assert result.exit_code == 0, result.output
    assert PasswordHasher(4).verify("n3w", _user(db, "alice").password_hash)


def test_disable_and_enable(db: Path) -> None:
    assert run("disable-user", "bob", "--db", str(db)).exit_code == 0
    assert _user(db, "bob").disabled
    assert run("enable-user", "bob", "--db", str(db)).exit_code == 0
    assert not _user(db, "bob").disabled


def test_remove_user_asks_first_and_keeps_their_messages(db: Path) -> None:
    declined = run("remove-user", "bob", "--db", str(db), input="n\n")
    assert declined.exit_code != 0
    assert _user(db, "bob")
    result = run("remove-user", "bob", "--db", str(db), input="y\n")
    assert result.exit_code == 0, result.output
    conn = open_database(db)
    assert users.find(conn, "bob") is None
    rows = conn.execute("SELECT sender, sender_id FROM messages WHERE sender = 'bob'").fetchall()
    assert rows and all(sender_id is None for _, sender_id in rows)
    logs = run("logs", "--user", "bob", "--json", "--db", str(db))
    assert [m["body"] for m in json.loads(logs.output)] == [
        "morning! pizza for lunch?",
        "the café is closed",
    ]


def test_list_users_table_and_json(db: Path) -> None:
    table = run("list-users", "--db", str(db))
    assert table.exit_code == 0
    for word in ("alice", "bob", "carol", "admin", "active", "never"):
        assert word in table.output
    data = json.loads(run("list-users", "--json", "--db", str(db)).output)
    assert [(u["username"], u["role"], u["messages"]) for u in data] == [
        ("alice", "user", 3),
        ("bob", "user", 2),
        ("carol", "admin", 0),
    ]


def test_import_users_adds_new_accounts_only(db: Path, tmp_path: Path) -> None:
    (tmp_path / "more.txt").write_text("alice:other\nfrank:f-pw\n# comment\n\ngina:g-pw\n")
    result = run("import-users", str(tmp_path / "more.txt"), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "2 accounts added, 1 already existed." in result.output
    assert PasswordHasher(4).verify("pass123", _user(db, "alice").password_hash)


def test_import_users_reports_bad_files(db: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("frank:pw\nnot a line\n")
    result = run("import-users", str(tmp_path / "bad.txt"), "--db", str(db))
    assert result.exit_code == 1
    assert "bad.txt:2: expected username:password" in result.output
    assert run("import-users", str(tmp_path / "absent.txt"), "--db", str(db)).exit_code == 1
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in run("import-users", str(tmp_path / "binary.txt"), "--db", str(db)).output
    assert users.find(open_database(db), "frank") is None


def _script(name: str) -> list[str]:
    return [str(Path(sys.executable).parent / name)]


def test_console_scripts_run_as_subprocesses(tmp_path: Path, chat_db: str) -> None:
    env = {**os.environ, "CHATD_DB": chat_db, "CHATD_BCRYPT_ROUNDS": "4"}
    (tmp_path / "users.txt").write_text("alice:pass123\nbob:qwerty\n")
    repo = Path(__file__).resolve().parent.parent
    imported = subprocess.run(
        [sys.executable, str(repo / "import_users.py"), "users.txt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert imported.returncode == 0, imported.stderr
    assert "2 accounts added" in imported.stdout
    listed = subprocess.run(
        [*_script("chatd-admin"), "list-users", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert [u["username"] for u in json.loads(listed.stdout)] == ["alice", "bob"]
    bad = subprocess.run(
        [*_script("chatd-admin"), "logs", "--since", "tuesday"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("Error: cannot read 'tuesday'")
    unknown = subprocess.run(
        [*_script("chatd-admin"), "frobnicate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
