"""Logging in: identical failures, a bounded number of attempts, re-hashing, deadlines."""

from __future__ import annotations

import bcrypt
import pytest

from chatd import accounts
from chatd.accounts import PasswordHasher
from chatd.storage import open_database, users
from tests.conftest import RunningServer

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


def _failed_login_reply(server: RunningServer, username: str, password: str) -> list[str]:
    client = server.connect()
    client.expect("^Username:")
    client.send(username)
    client.expect("^Password:")
    client.send(password)
    return client.lines_until("^Username:")


def test_failed_logins_get_the_same_reply_whatever_was_wrong(
    server: RunningServer, chat_db: str
) -> None:
    with open_database(chat_db) as conn:
        users.set_disabled(conn, "carol", True)
    replies = {
        "unknown user": _failed_login_reply(server, "nobody", "pass123"),
        "wrong password": _failed_login_reply(server, "alice", "wrong"),
        "disabled account": _failed_login_reply(server, "carol", "carol-pw"),
        "invalid name": _failed_login_reply(server, "../etc", "x"),
        "over-long password": _failed_login_reply(server, "alice", "p" * 100),
    }
    assert all(reply[0].startswith("Login failed") for reply in replies.values())
    assert len(set(map(tuple, replies.values()))) == 1, replies


def test_connection_closes_after_too_many_failures(server: RunningServer) -> None:
    client = server.connect()
    for _ in range(server.settings.login_attempts):
        client.expect("^Username:")
        client.send("alice")
        client.expect("^Password:")
        client.send("wrong")
    tail = client.wait_closed()
    assert tail[-1].startswith("Login failed")


def test_a_user_can_log_in_after_a_failure(server: RunningServer) -> None:
    client = server.connect()
    client.expect("^Username:")
    client.send("alice")
    client.send("wrong")
    client.expect("^Login failed")
    client.login("alice", "pass123")


def test_login_is_case_insensitive_for_the_name(server: RunningServer) -> None:
    client = server.connect()
    client.expect("^Username:")
    client.send("ALICE")
    client.send("pass123")
    client.expect("^Welcome, alice!")


class CountingHasher(PasswordHasher):
    """Counts the bcrypt work each login costs."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds)
        self.checks = 0

    def verify(self, password: str, hashed: str) -> bool:
        self.checks += 1
        return bcrypt.checkpw(password.encode(), hashed.encode()) if len(password) <= 72 else False

    def waste_one_check(self) -> None:
        self.checks += 1
        super().waste_one_check()


def test_every_kind_of_failed_login_costs_one_bcrypt_check(chat_db: str) -> None:
    conn = open_database(chat_db)
    hasher = PasswordHasher(4)
    accounts.import_users(conn, [("alice", "pass123"), ("carol", "pw")], hasher)
    users.set_disabled(conn, "carol", True)
    for username, password in [
        ("nobody", "pass123"),
        ("alice", "wrong"),
        ("carol", "pw"),
        ("not a valid name!", "x"),
    ]:
        counting = CountingHasher(4)
        assert accounts.authenticate(conn, counting, username, password) is None
        assert counting.checks == 1, username


def test_a_hash_of_another_cost_is_upgraded_at_login(make_server, chat_db: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(bcrypt_rounds=5)  # users.txt imported at cost 5
    with open_database(chat_db) as conn:
        assert users.get(conn, "alice").password_hash.startswith("$2b$05$")
    server.stop()
    server = make_server(bcrypt_rounds=4)
    server.login("alice", "pass123").send("/users")
    server.stop()  # the upgrade is written before the server stops
    with open_database(chat_db) as conn:
        alice = users.get(conn, "alice")
    assert alice.password_hash.startswith("$2b$04$")
    assert alice.last_login_at is not None


def test_login_deadline_closes_idle_connections(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(login_deadline_s=1)
    client = server.connect()
    client.expect("^Username:")
    tail = client.wait_closed(timeout=5)
    assert any("took too long" in line for line in tail)
    assert server.login("alice", "pass123")
