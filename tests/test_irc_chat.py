"""Chatting over IRC, and IRC and line-protocol users seeing each other (SPEC §10)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from chatd.storage import open_database, users
from tests.conftest import RunningServer
from tests.irc_helpers import IrcServer, start_irc


@pytest.fixture
def irc(make_server: Callable[..., RunningServer]) -> IrcServer:
    return start_irc(make_server)


def test_irc_and_line_users_see_each_others_messages(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    bob = irc.line("bob", "qwerty")
    alice.expect(r"^:bob!bob@chatd JOIN #general$")
    alice.send("PRIVMSG #general :hi from irc")
    bob.expect(r"^alice: hi from irc$")
    bob.send("Hello")
    bob.expect("^You said: Hello$")
    alice.expect(r"^:bob!bob@chatd PRIVMSG #general :Hello$")
    bob.send("/users")
    bob.expect(r"^Active users: alice, bob$")
    bob.send("/history 1")
    bob.expect(r"Your last 1 message")
    bob.send("/who")
    bob.expect(r"^Online in #general: alice, bob$")


def test_private_messages_both_ways(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    bob = irc.line("bob", "qwerty")
    alice.send("PRIVMSG bob :psst")
    bob.expect(r"^\[private\] alice: psst$")
    bob.send("/msg alice back at you")
    alice.expect(r"^:bob!bob@chatd PRIVMSG alice :back at you$")
    alice.send("PRIVMSG carol :are you there?")  # offline: kept for later
    alice.expect(r"NOTICE alice :\*\*\* carol is not online")
    alice.send("PRIVMSG nobody :hello?")
    alice.expect(r" 401 alice nobody :No such nick")


def test_echo_message_only_when_negotiated_and_after_commit(irc: IrcServer) -> None:
    plain = irc.sasl("alice", "pass123")
    plain.send("PRIVMSG #general :one")
    plain.send("PING :after")
    lines = plain.lines_until(r"PONG irc\.test :after$")
    assert not any("PRIVMSG" in line for line in lines)
    echoing = irc.sasl("bob", "qwerty", caps="echo-message server-time")
    echoing.send("PRIVMSG #general :two")
    echoing.expect(r"^@time=\S+Z :bob!bob@chatd PRIVMSG #general :two$")
    echoing.send("PRIVMSG alice :three")
    echoing.expect(r"^@time=\S+Z :bob!bob@chatd PRIVMSG alice :three$")
    plain.expect(r"^:bob!bob@chatd PRIVMSG alice :three$")


def test_channels_are_rooms_shared_with_the_line_protocol(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    bob = irc.line("bob", "qwerty")
    alice.send("JOIN #Dev,#bad!name,nohash")
    alice.expect(r"^:alice!alice@chatd JOIN #dev$")
    alice.expect(r" 353 alice = #dev :alice$")
    alice.expect(r" 366 alice #dev :")
    alice.expect(r" 479 alice #bad!name :")
    alice.expect(r" 403 alice nohash :")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    alice.expect(r"^:bob!bob@chatd JOIN #dev$")
    bob.send("in dev")
    alice.expect(r"^:bob!bob@chatd PRIVMSG #dev :in dev$")
    alice.send("PRIVMSG #dev :from irc")
    bob.expect(r"^alice: from irc$")
    alice.send("TOPIC #dev :Deploys")
    alice.expect(r"^:alice!alice@chatd TOPIC #dev :Deploys$")
    bob.expect(r"alice set the topic of #dev: Deploys")
    bob.send("/topic Releases")
    alice.expect(r"^:bob!bob@chatd TOPIC #dev :Releases$")
    alice.send("NAMES #dev")
    alice.expect(r" 353 alice = #dev :alice bob$")
    alice.send("WHO #dev")
    alice.expect(r" 352 alice #dev alice chatd irc\.test alice H :0 alice$")
    alice.expect(r" 352 alice #dev bob chatd irc\.test bob H :0 bob$")
    alice.expect(r" 315 alice #dev :")
    alice.send("LIST")
    alice.expect(r" 322 alice #dev 2 :Releases$")
    alice.send("PART #dev")
    alice.expect(r"^:alice!alice@chatd PART #dev$")
    bob.expect(r"\*\*\* alice left #dev")
    bob.send("/who dev")
    bob.expect(r"^Online in #dev: bob$")
    alice.send("PRIVMSG #dev :still here?")
    alice.expect(r" 404 alice #dev :Cannot send to channel")
    alice.send("PART #general")
    alice.expect(r"NOTICE #general :\*\*\* Everyone stays in #general")
    alice.send("PART #dev")
    alice.expect(r" 442 alice #dev :You're not on that channel")


def test_joining_a_room_shows_its_latest_messages(irc: IrcServer) -> None:
    bob = irc.line("bob", "qwerty")
    bob.send("/join dev")
    for text in ("first", "second"):
        bob.send(text)
        bob.expect(f"You said: {text}")
    alice = irc.sasl("alice", "pass123", caps="server-time")
    alice.send("JOIN #dev")
    lines = alice.lines_until(r"PRIVMSG #dev :second$")
    assert lines[0] == ":alice!alice@chatd JOIN #dev"
    assert any("NOTICE #dev :*** 2 messages in #dev:" in line for line in lines)
    assert re.match(
        r"^@time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z :bob!bob@chatd PRIVMSG #dev :first$",
        lines[-2],
    )


def test_catching_up_arrives_as_privmsgs_with_time_tags(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("QUIT :brb")
    alice.wait_closed()
    bob = irc.line("bob", "qwerty")
    bob.send("while you were out")
    bob.expect("You said")
    bob.send("/msg alice call me")
    bob.expect(r"\[private\] You said to alice")
    tagged = irc.sasl("alice", "pass123", caps="server-time")
    tagged.expect(r"NOTICE #general :\*\*\* 1 new message in #general while you were away:$")
    tagged.expect(r"^@time=\S+Z :bob!bob@chatd PRIVMSG #general :while you were out$")
    tagged.expect(r"NOTICE alice :\*\*\* 1 private message while you were away:$")
    tagged.expect(r"^@time=\S+Z :bob!bob@chatd PRIVMSG alice :call me$")


def test_without_server_time_the_time_is_written_before_the_text(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("QUIT")
    alice.wait_closed()
    bob = irc.line("bob", "qwerty")
    bob.send("news")
    bob.expect("You said")
    again = irc.sasl("alice", "pass123")
    again.expect(r"^:bob!bob@chatd PRIVMSG #general :\[\d{4}-\d\d-\d\d \d\d:\d\d\] news$")


def test_admin_kick_and_announcements_reach_irc_users(
    make_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    irc = start_irc(make_server)
    with open_database(tmp_path / "chat.db") as conn:
        users.set_role(conn, "admin", "admin")
    admin = irc.line("admin", "admin123")
    alice = irc.sasl("alice", "pass123")
    admin.send("/announce Pizza at noon")
    alice.expect(r"^:irc\.test NOTICE #general :\*\*\* Announcement from admin: Pizza at noon$")
    admin.send("/kick alice flooding")
    admin.expect("alice was kicked")
    lines = alice.wait_closed()
    assert lines[-1] == "ERROR :Closing link: alice[chatd] (Kicked by admin (flooding))"
    admin.expect(r"alice was kicked by admin \(flooding\)")


def test_irc_users_see_each_other_join_part_and_quit(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("JOIN #dev")
    alice.expect(r" 366 alice #dev ")
    bob = irc.sasl("bob", "qwerty")
    alice.expect(r"^:bob!bob@chatd JOIN #general$")
    bob.send("JOIN #dev")
    alice.expect(r"^:bob!bob@chatd JOIN #dev$")
    bob.send("AWAY :lunch")
    bob.expect(r" 306 bob :")
    alice.send("PRIVMSG bob :hungry?")
    alice.expect(r" 301 alice bob :lunch$")
    alice.send("WHOIS bob")
    alice.expect(r" 311 alice bob bob chatd \* :bob$")
    alice.expect(r" 319 alice bob :#general #dev$")
    alice.expect(r" 318 alice bob :")
    alice.send("ISON bob carol")
    alice.expect(r" 303 alice :bob$")
    bob.send("PART #dev")
    alice.expect(r"^:bob!bob@chatd PART #dev$")
    bob.send("QUIT :bye")
    alice.expect(r"^:bob!bob@chatd QUIT :left \(bye\)$")


def test_modes_can_be_read_but_not_changed(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("MODE #general")
    alice.expect(r" 324 alice #general :\+nt$")
    alice.send("MODE #general b")
    alice.expect(r" 368 alice #general :")
    alice.send("MODE #general +o bob")
    alice.expect(r" 482 alice #general :")
    alice.send("MODE alice")
    alice.expect(r" 221 alice :\+i$")
    alice.send("MODE alice +x")
    alice.expect(r" 501 alice :")
    alice.send("MODE bob")
    alice.expect(r" 502 alice :")
    alice.send("MODE #nowhere")
    alice.expect(r" 403 alice #nowhere :")


def test_leaving_a_room_on_the_line_side_parts_the_accounts_irc_sessions(irc: IrcServer) -> None:
    on_irc = irc.sasl("alice", "pass123")
    on_line = irc.line("alice", "pass123")
    on_line.send("/join dev")
    on_line.expect("^Now talking in #dev")
    on_irc.expect(r"^:alice!alice@chatd JOIN #dev$")
    on_line.send("/leave")
    on_line.expect(r"^You left #dev\.$")
    on_irc.expect(r"^:alice!alice@chatd PART #dev$")
    on_irc.send("PRIVMSG #dev :gone?")
    on_irc.expect(r" 404 alice #dev :Cannot send to channel")
