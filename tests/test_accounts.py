"""Account rules and users.txt, shared by the server, chatd-admin and import_users.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatd import accounts
from chatd.accounts import AccountError, PasswordHasher, UsersFileError
from chatd.storage import open_database, users


@pytest.mark.parametrize("name", ["alice", "Bob_2", "a", "x" * 32, "dot.name", "_under", "9lives"])
def test_valid_usernames(name: str) -> None:
    assert accounts.check_username(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 33, ".hidden", "-dash", "with space", "../etc", "émile", "a/b", "a:b"]
)
def test_invalid_usernames_are_refused(name: str) -> None:
    with pytest.raises(AccountError, match="invalid username"):
        accounts.check_username(name)


def test_password_rules() -> None:
    assert accounts.check_password("x" * 72) == b"x" * 72
    assert accounts.check_password("é" * 36) == "é".encode() * 36  # 72 bytes
    for bad in ("", "x" * 73, "é" * 37):
        with pytest.raises(AccountError):
            accounts.check_password(bad)


def test_parse_users_skips_blanks_and_comments_and_splits_at_the_first_colon() -> None:
    text = "# accounts\n\nalice:pass123\n  # indented comment\nbob:has:colons\n"
    assert accounts.parse_users(text) == [("alice", "pass123"), ("bob", "has:colons")]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("alice:pw\nnocolon\n", "users.txt:2: expected username:password"),
        ("alice:pw\n\n-bad:pw\n", "users.txt:3: invalid username"),
        ("alice:\n", "users.txt:1: the password is empty"),
        ("alice:pw\nALICE:pw2\n", "users.txt:2: user 'ALICE' is already on line 1"),
        ("alice:" + "x" * 73 + "\n", "users.txt:1: the password is 73 bytes"),
    ],
)
def test_parse_users_names_the_bad_line(text: str, error: str) -> None:
    with pytest.raises(UsersFileError, match=error):
        accounts.parse_users(text)


@pytest.mark.both_engines
def test_import_is_all_or_nothing_and_keeps_existing_passwords(
    tmp_path: Path, chat_db: str
) -> None:
    conn = open_database(chat_db)
    hasher = PasswordHasher(4)
    result = accounts.import_users(conn, [("alice", "first")], hasher)
    assert (result.added, result.existing) == (1, 0)
    result = accounts.import_users(conn, [("Alice", "second"), ("bob", "pw")], hasher)
    assert (result.added, result.existing) == (1, 1)
    alice = users.get(conn, "alice")
    assert hasher.verify("first", alice.password_hash)
    bad = tmp_path / "bad.txt"
    bad.write_text("carol:pw\ndave\n")
    with pytest.raises(UsersFileError):
        accounts.read_users_file(bad)
    assert users.find(conn, "carol") is None
