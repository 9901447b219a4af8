"""Rooms (SPEC §8) over real sockets: joining, talking, leaving, listing, topics."""

from __future__ import annotations

import re

import pytest

from tests.conftest import RunningServer, wait_for

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


def _log_in_all(server: RunningServer) -> tuple:  # type: ignore[type-arg]
    return tuple(
        server.login(name, pw)
        for name, pw in (("alice", "pass123"), ("bob", "qwerty"), ("carol", "carol-pw"))
    )


def test_join_creates_the_room_and_makes_it_current(server: RunningServer) -> None:
    alice, bob, carol = _log_in_all(server)
    alice.send("/join Dev")
    alice.expect(r"^Now talking in #dev\.$")
    bob.send("/join #dev")
    bob.expect(r"^Now talking in #dev\.$")
    alice.expect(r"^\*\*\* bob joined #dev$")
    alice.send("Hello")
    alice.expect("^You said: Hello$")
    bob.expect("^alice: Hello$")  # bob's current room is #dev too
    carol.send("/join dev")
    carol.expect(r"^Now talking in #dev\.$")
    carol.send("/join general")
    carol.expect(r"^Now talking in #general\.$")
    alice.send("still here")
    carol.expect(r"^\[#dev\] alice: still here$")  # a member, in another room


def test_messages_reach_only_the_rooms_members(server: RunningServer) -> None:
    alice, bob, carol = _log_in_all(server)
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    alice.send("for #dev only")
    alice.expect("^You said: for #dev only$")
    bob.expect("^alice: for #dev only$")
    carol.send("/users")
    lines = carol.lines_until("^Active users:")
    assert not any("for #dev only" in line for line in lines)
    carol.send("to general")
    carol.expect("^You said: to general$")
    alice.expect(r"^\[#general\] carol: to general$")
    bob.expect(r"^\[#general\] carol: to general$")


def test_joining_a_room_one_is_in_only_switches(server: RunningServer) -> None:
    alice, bob, _ = _log_in_all(server)
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    bob.send("/join dev")
    alice.expect(r"^\*\*\* bob joined #dev$")
    bob.send("/join general")
    bob.expect("^Now talking in #general")
    bob.send("/join dev")
    assert bob.lines_until("^Now talking in #dev") == ["Now talking in #dev."]
    alice.send("/who")
    alice.expect("^Online in #dev: alice, bob$")
    alice.send("/users")
    lines = alice.lines_until("^Active users:")
    assert lines.count("*** bob joined #dev") == 0  # no second notice


def test_leave_returns_to_general_and_general_cannot_be_left(server: RunningServer) -> None:
    alice, bob, _ = _log_in_all(server)
    for client in (alice, bob):
        client.send("/join dev")
        client.expect("^Now talking in #dev")
    alice.send("/leave")
    alice.expect(r"^You left #dev\.$")
    alice.expect(r"^Now talking in #general\.$")
    bob.expect(r"^\*\*\* alice left #dev$")
    bob.send("in dev")
    bob.expect("^You said: in dev$")
    alice.send("/leave #general")
    alice.expect("^Error: everyone stays in #general")
    alice.send("/leave dev")
    alice.expect(r"^Error: you are not in #dev")
    alice.send("/users")
    lines = alice.lines_until("^Active users:")
    assert not any("in dev" in line for line in lines)


def test_membership_belongs_to_the_account_and_survives_logging_out(
    server: RunningServer,
) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    second = server.login("alice", "pass123")  # another session of the same account
    bob = server.login("bob", "qwerty")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    bob.send("hi dev")
    alice.expect("^bob: hi dev$")
    second.expect(r"^\[#dev\] bob: hi dev$")  # its current room is #general
    alice.send("/quit")
    second.send("/quit")
    alice.wait_closed()
    second.wait_closed()
    again = server.login("alice", "pass123")
    again.send("/rooms")
    lines = again.lines_until(r"^. #dev ")
    assert lines[-1].startswith("* #dev ")  # still a member, not the current room
    bob.send("back?")
    again.expect(r"^\[#dev\] bob: back\?$")


def test_rooms_lists_members_online_and_marks(server: RunningServer) -> None:
    alice, bob, _ = _log_in_all(server)
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    bob.send("/join lab-3")
    bob.expect("^Now talking in #lab-3")
    alice.send("/rooms")
    lines = alice.lines_until(r"^. #lab-3")
    assert lines[0] == "Rooms (* member, > current):"
    assert re.match(r"^\* #general +4 members, 3 online$", lines[1]), lines
    assert re.match(r"^> #dev +1 member, 1 online$", lines[2]), lines
    assert re.match(r"^  #lab-3 +1 member, 1 online$", lines[3]), lines


def test_who_lists_a_rooms_members_online(server: RunningServer) -> None:
    alice, bob, _ = _log_in_all(server)
    alice.send("/who")
    alice.expect("^Online in #general: alice, bob, carol$")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    alice.send("/who #dev")
    alice.expect("^Online in #dev: bob$")
    bob.close()
    alice.expect(r"^\*\*\* bob left$")
    alice.send("/who dev")
    alice.expect(r"^Nobody is online in #dev\.$")
    alice.send("/who nowhere")
    alice.expect(r"^Error: there is no room named #nowhere\.$")


def test_topic_is_shown_set_and_announced(server: RunningServer) -> None:
    alice, bob, carol = _log_in_all(server)
    for client in (alice, bob):
        client.send("/join dev")
        client.expect("^Now talking in #dev")
    alice.send("/topic")
    alice.expect(r"^#dev has no topic\.")
    alice.send("/topic release on Friday")
    alice.expect(r"^\*\*\* alice set the topic of #dev: release on Friday$")
    bob.expect(r"^\*\*\* alice set the topic of #dev: release on Friday$")
    bob.send("/topic")
    bob.expect("^The topic of #dev is: release on Friday$")
    carol.send("/rooms")
    carol.expect(r"^  #dev +2 members, 2 online  topic: release on Friday$")
    bob.send("/topic \x1b[31mred\x1b[0m")  # escape sequences never reach anyone raw
    line = alice.expect("set the topic of #dev").string
    assert "\x1b" not in line


def test_history_shows_other_rooms_and_a_rooms_own_history(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("in general")
    alice.expect("^You said: in general$")
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    alice.send("in dev")
    alice.expect("^You said: in dev$")
    alice.send("/history")
    alice.expect(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d alice: in general$")
    alice.expect(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[#dev\] alice: in dev$")
    alice.send("/history #dev 5")
    alice.expect(r"^The last 1 message in #dev:$")
    alice.expect(r"\[#dev\] alice: in dev$")
    alice.send("/history #nowhere")
    alice.expect(r"^Error: you are not in #nowhere")


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("/join " + "x" * 1000, "is not a room name"),
        ("/join #", "is not a room name"),
        ("/join ../x", "is not a room name"),
        ("/join dev ops", "is not a room name"),
        ("/join #" + "a" * 33, "is not a room name"),
        ("/join", "usage: /join ROOM"),
        ("/who bad/name", "is not a room name"),
        ("/leave ~x", "is not a room name"),
        ("/topic " + "t" * 301, "a topic is at most 300 characters"),
    ],
)
def test_bad_room_input_gets_one_error_line(
    server: RunningServer, command: str, error: str
) -> None:
    alice, bob, _ = _log_in_all(server)
    alice.send(command)
    line = alice.expect("^Error: ").string
    assert error in line
    assert len(line) < 200
    alice.send("still fine")
    alice.expect("^You said: still fine$")
    bob.expect("^alice: still fine$")


def test_help_lists_the_room_commands(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send("/help")
    lines = alice.lines_until("^Anything else")
    for name in ("/join ROOM", "/leave [ROOM]", "/rooms", "/who [ROOM]", "/topic [TEXT]"):
        assert any(line.startswith(f"  {name}") for line in lines), name


def test_join_and_leave_notices_in_rooms_respect_quiet_joins_above(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(quiet_joins_above=1)
    alice, bob, _ = _log_in_all(server)
    alice.send("/join dev")
    alice.expect("^Now talking in #dev")
    bob.send("/join dev")  # the room then has 2 online, more than 1: no notice
    bob.expect("^Now talking in #dev")
    bob.send("hi")
    lines = alice.lines_until("^bob: hi$")
    assert "*** bob joined #dev" not in lines


def test_retention_days_deletes_old_messages_at_start(make_server, chat_db) -> None:  # type: ignore[no-untyped-def]
    from chatd.clock import now_us
    from chatd.storage import messages, open_database, transaction
    from chatd.storage.messages import Kind, LogQuery, NewMessage

    conn = open_database(chat_db)
    day = 86_400_000_000
    with transaction(conn):
        messages.insert_many(
            conn,
            [
                NewMessage(now_us() - 40 * day, Kind.PUBLIC, None, "old", "ancient pizza"),
                NewMessage(now_us() - 1 * day, Kind.PUBLIC, None, "new", "fresh pizza"),
            ],
        )
    server: RunningServer = make_server(retention_days=30)
    wait_for(
        lambda: [m.body for m in messages.query(conn, LogQuery(text="pizza"))] == ["fresh pizza"],
        what="the old message to be deleted",
    )
    alice = server.login("alice", "pass123")
    alice.send("/history #general")
    lines = alice.lines_until("fresh pizza$")
    assert not any("ancient" in line for line in lines)
    conn.close()
