"""The seed transcript and the chat commands of SPEC §4, over real sockets."""

from __future__ import annotations

import re

import pytest

from chatd.line.commands import COMMANDS
from chatd.storage import open_database, users
from tests.conftest import RunningServer

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


def test_seed_transcript(server: RunningServer) -> None:
    alice = server.connect()
    alice.expect("^Username:")
    alice.send("alice")
    alice.expect("^Password:")
    alice.send("pass123")
    alice.expect("^Welcome, alice!")
    bob = server.login("bob", "qwerty")

    alice.send("Hello")
    alice.expect("^You said: Hello$")
    line = bob.expect("alice.*Hello").string
    assert line == "alice: Hello"

    alice.send("/users")
    alice.expect("^Active users: alice, bob$")

    alice.send("/history")
    alice.expect(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d alice: Hello$")

    alice.send("/quit")
    alice.expect("^Disconnected from server.$")
    assert alice.wait_closed() == []
    bob.expect(r"^\*\*\* alice left")


def test_server_accepts_crlf_and_lf_and_ends_lines_with_crlf(server: RunningServer) -> None:
    alice = server.connect()
    alice.send(b"alice\r\npass123\n")
    alice.expect("^Welcome, alice!")
    alice.send(b"one\r\ntwo\n")
    alice.expect("^You said: one$")
    alice.expect("^You said: two$")
    assert b"\r\n" in b"".join(line.encode() + b"\r\n" for line in alice.received)
    alice.sock.settimeout(5)


def test_every_message_is_echoed_then_broadcast_to_everyone_else(server: RunningServer) -> None:
    alice, bob, carol = (
        server.login(name, pw)
        for name, pw in (("alice", "pass123"), ("bob", "qwerty"), ("carol", "carol-pw"))
    )
    bob.send("hi all")
    bob.expect("^You said: hi all$")
    alice.expect("^bob: hi all$")
    carol.expect("^bob: hi all$")


def test_users_lists_each_online_user_once_sorted(server: RunningServer) -> None:
    carol = server.login("carol", "carol-pw")
    others = [
        server.login("alice", "pass123"),
        server.login("alice", "pass123"),  # a second session of the same account
        server.login("bob", "qwerty"),
    ]
    carol.send("/users")
    carol.expect("^Active users: alice, bob, carol$")
    assert all(client.received for client in others)


def test_help_lists_every_command_with_a_description(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/help")
    lines = alice.lines_until("^Anything else")
    for entry in COMMANDS.values():
        listed = [line for line in lines if line.strip().startswith(entry.usage)]
        if entry.admin_only:
            assert not listed, f"{entry.usage} shown to a non-admin"
        else:
            assert listed and len(listed[0].strip()) > len(entry.usage) + 3


def test_admins_see_and_use_admin_commands(make_server, chat_db) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    with open_database(chat_db) as conn:
        users.set_role(conn, "admin", "admin")
    admin = server.login("admin", "admin123")
    admin.send("/help")
    assert any("/kick" in line for line in admin.lines_until("^Anything else"))

    bob = server.login("bob", "qwerty")
    alice = server.login("alice", "pass123")
    admin.send("/announce Pizza at noon")
    for client in (admin, bob, alice):
        client.expect(r"^\*\*\* Announcement from admin: Pizza at noon$")

    admin.send("/kick bob flooding")
    admin.expect(r"bob was kicked")
    bob.expect(r"You were kicked by admin \(flooding\)")
    bob.wait_closed()
    alice.expect(r"^\*\*\* bob was kicked by admin \(flooding\)$")
    admin.send("/users")
    admin.expect("^Active users: admin, alice$")


def test_admin_commands_are_unknown_to_other_users(server: RunningServer) -> None:
    bob = server.login("bob", "qwerty")
    alice = server.login("alice", "pass123")
    alice.send("/kick bob")
    alice.expect("^Error: unknown command /kick.*/help")
    alice.send("/announce hi")
    alice.expect("^Error: unknown command /announce")
    bob.send("/users")
    bob.expect("^Active users: alice, bob$")


def test_unknown_command_points_to_help(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/frobnicate now")
    line = alice.expect("unknown command").string
    assert "/frobnicate" in line and "/help" in line


def test_double_slash_sends_a_message_starting_with_a_slash(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.send("//shrug")
    alice.expect("^You said: /shrug$")
    bob.expect("^alice: /shrug$")


def test_private_message_reaches_only_its_recipient(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    carol = server.login("carol", "carol-pw")
    alice.send("/msg bob the password is swordfish")
    alice.expect(r"^\[private\] You said to bob: the password is swordfish$")
    bob.expect(r"^\[private\] alice: the password is swordfish$")
    carol.send("/users")
    lines = carol.lines_until("^Active users:")
    assert not any("swordfish" in line for line in lines)


def test_private_message_to_offline_user_is_kept_for_their_history(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/msg carol see you tomorrow")
    alice.expect("You said to carol: see you tomorrow.*not online")
    carol = server.login("carol", "carol-pw")
    carol.send("/history")
    carol.expect(r"alice -> carol \(private\): see you tomorrow$")


def test_private_message_errors(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/msg nobody hello")
    alice.expect("^Error: there is no user named nobody")
    alice.send("/msg bob")
    alice.expect("^Error: usage: /msg USER TEXT$")


def test_history_shows_own_and_private_messages_oldest_first(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    for text in ("one", "two", "three"):
        alice.send(text)
        alice.expect(f"^You said: {text}$")
    bob.send("not in alice's history")
    bob.expect("^You said:")
    bob.send("/msg alice psst")
    bob.expect("You said to alice")
    alice.send("/history")
    lines = alice.lines_until("bob -> alice")
    entries = [line for line in lines if re.match(r"^\d{4}-", line)]
    assert [e.split(" ", 2)[2] for e in entries] == [
        "alice: one",
        "alice: two",
        "alice: three",
        "bob -> alice (private): psst",
    ]
    alice.send("/history 2")
    lines = alice.lines_until("bob -> alice")
    assert next(line for line in lines if re.match(r"^\d{4}-", line)).endswith("alice: three")


def test_history_when_there_is_none(server: RunningServer) -> None:
    carol = server.login("carol", "carol-pw")
    carol.send("/history")
    carol.expect("^No history yet")


def test_history_rejects_a_bad_count(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    for bad in ("0", "-3", "lots", "100000"):
        alice.send(f"/history {bad}")
        alice.expect("^Error: N must be a whole number")


def test_join_and_leave_notices(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.expect(r"^\*\*\* bob joined$")
    bob.close()
    alice.expect(r"^\*\*\* bob left$")


def test_join_notices_stop_above_the_quiet_threshold(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(quiet_joins_above=2)
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.expect(r"^\*\*\* bob joined$")
    carol = server.login("carol", "carol-pw")  # three online: above the threshold
    alice.send("/users")
    lines = alice.lines_until("^Active users:")
    assert not any("carol joined" in line for line in lines)
    assert bob.received and carol.received


def test_passwd_changes_the_password(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/passwd")
    alice.expect("^Current password:")
    alice.send("pass123")
    alice.expect("^New password:")
    alice.send("n3w-secret")
    alice.expect("^Repeat the new password:")
    alice.send("n3w-secret")
    alice.expect("^Password changed.$")
    server.login("alice", "n3w-secret")
    stale = server.connect()
    stale.expect("^Username:")
    stale.send("alice")
    stale.send("pass123")
    stale.expect("^Login failed")


def test_passwd_refuses_a_wrong_current_password_or_a_mismatch(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    for current, new, again, error in (
        ("wrong", "abc", "abc", "current password is wrong"),
        ("pass123", "abc", "abd", "differ"),
        ("pass123", "x" * 73, "x" * 73, "at most 72"),
    ):
        alice.send("/passwd")
        alice.send(current)
        alice.send(new)
        alice.send(again)
        alice.expect(f"^Error: .*{error}")
    server.login("alice", "pass123")


def test_a_pasted_burst_of_twenty_lines_gets_through(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send(b"".join(f"line {i}\n".encode() for i in range(20)))
    alice.expect("^You said: line 19$")
    assert not any(line.startswith("Error") for line in alice.received)


def test_flooding_gets_slow_down_then_a_disconnect(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(rate_burst=5, rate_per_second=1, rate_strikes=3)
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.send(b"".join(f"flood {i}\n".encode() for i in range(50)))
    alice.expect("^Error: slow down")
    tail = alice.wait_closed()
    assert any("disconnecting" in line for line in tail)
    bob.expect(r"^\*\*\* alice was disconnected for flooding$")
    stored = [line for line in bob.received if line.startswith("alice: flood")]
    assert len(stored) == 5


def test_a_private_message_to_oneself_reaches_ones_other_sessions(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    other = server.login("alice", "pass123")
    alice.send("/msg alice note to self")
    assert alice.expect(r"^\[private\] You said to alice: ").string == (
        "[private] You said to alice: note to self"
    )
    other.expect(r"^\[private\] alice: note to self$")
