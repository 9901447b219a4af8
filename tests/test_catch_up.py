"""Catching up (SPEC §8): what was said while away, at login and on joining a room."""

from __future__ import annotations

import re

import pytest

from tests.conftest import RunningServer

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def _first_login_and_out(server: RunningServer, name: str, password: str) -> None:
    client = server.login(name, password)
    client.send("/quit")
    client.wait_closed()


def _said(client, *texts: str) -> None:  # type: ignore[no-untyped-def]
    for text in texts:
        client.send(text)
        client.expect(f"^You said: {re.escape(text)}$")


def test_login_shows_what_was_said_while_away_in_each_room(server: RunningServer) -> None:
    bob = server.login("bob", "qwerty")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    alice = server.login("alice", "pass123")
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    alice.send("/quit")
    alice.wait_closed()
    _said(bob, "dev one", "dev two")
    bob.send("/join general")
    bob.expect("^Now talking in #general")
    _said(bob, "general one")
    bob.send("/msg alice are you there?")
    bob.expect(r"^\[private\] You said to alice")

    alice = server.connect()
    alice.expect("^Username:")
    alice.send("alice")
    alice.send("pass123")
    lines = alice.lines_until(r"are you there\?$")
    welcome = next(n for n, line in enumerate(lines) if line.startswith("Welcome, alice!"))
    caught_up = lines[welcome + 1 :]
    patterns = [
        r"\*\*\* 1 new message in #general while you were away:",
        f"{STAMP} bob: general one",
        r"\*\*\* 2 new messages in #dev while you were away:",
        rf"{STAMP} \[#dev\] bob: dev one",
        rf"{STAMP} \[#dev\] bob: dev two",
        r"\*\*\* 1 private message while you were away:",
        rf"{STAMP} bob -> alice \(private\): are you there\?",
    ]
    assert len(caught_up) == len(patterns), caught_up
    for line, pattern in zip(caught_up, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_catching_up_counts_everything_but_shows_the_latest_replay_max(
    make_server,  # type: ignore[no-untyped-def]
) -> None:
    server: RunningServer = make_server(replay_max=3)
    _first_login_and_out(server, "alice", "pass123")
    bob = server.login("bob", "qwerty")
    _said(bob, *(f"note {n}" for n in range(1, 8)))
    bob.send("/quit")  # its leave notice is not a message: not counted
    bob.wait_closed()
    alice = server.connect()
    alice.send("alice")
    alice.send("pass123")
    lines = alice.lines_until("note 7$")
    header = lines.index("*** 7 new messages in #general while you were away; the latest 3:")
    assert [line[20:] for line in lines[header + 1 :]] == [
        "bob: note 5",
        "bob: note 6",
        "bob: note 7",
    ]


def test_nothing_new_shows_nothing_and_a_second_session_catches_up_on_nothing(
    server: RunningServer,
) -> None:
    _first_login_and_out(server, "alice", "pass123")
    alice = server.login("alice", "pass123")
    _said(alice, "first")
    assert not any(line.startswith("*** ") for line in alice.received)
    bob = server.login("bob", "qwerty")
    _said(bob, "while alice is online")
    second = server.login("alice", "pass123")  # the account was online all along
    _said(second, "second session")
    assert not any("while you were away" in line for line in second.received)


def test_first_login_counts_as_joining_general(server: RunningServer) -> None:
    bob = server.login("bob", "qwerty")
    _said(bob, "welcome to the class", "read the syllabus")
    carol = server.login("carol", "carol-pw")  # first login ever
    lines = carol.lines_until("read the syllabus$")
    assert "*** 2 messages in #general:" in lines
    assert re.fullmatch(f"{STAMP} bob: welcome to the class", lines[-2])


def test_joining_a_new_room_shows_its_latest_messages(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(replay_max=2)
    bob = server.login("bob", "qwerty")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    _said(bob, "a", "b", "c")
    alice = server.login("alice", "pass123")
    alice.send("/join dev")
    lines = alice.lines_until("bob: c$")
    assert lines[-4:-2] == ["Now talking in #dev.", "*** The latest 2 of 3 messages in #dev:"]
    assert re.fullmatch(rf"{STAMP} \[#dev\] bob: b", lines[-2])


def test_replay_max_zero_turns_catching_up_off(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(replay_max=0)
    bob = server.login("bob", "qwerty")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    _said(bob, "hidden")
    alice = server.login("alice", "pass123")
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    alice.send("/who")
    lines = alice.lines_until("^Online in #dev")
    assert not any(line.startswith("*** ") and "messages" in line for line in alice.received)
    assert not any("hidden" in line for line in lines)


def test_messages_during_catching_up_arrive_once_and_after_it(server: RunningServer) -> None:
    _first_login_and_out(server, "alice", "pass123")
    bob = server.login("bob", "qwerty")
    _said(bob, *(f"before {n}" for n in range(5)))
    alice = server.connect()
    alice.send("alice")
    alice.send("pass123")
    for n in range(5):
        bob.send(f"during {n}")
    alice.expect("during 4$")
    said = [line for line in alice.received if "before" in line or "during" in line]
    texts = [line.rsplit(": ", 1)[1] for line in said]
    assert texts == [f"before {n}" for n in range(5)] + [f"during {n}" for n in range(5)]
