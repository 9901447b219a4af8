"""Bad input on the IRC port (SPEC §4 and §10): long lines, bad UTF-8, junk, escapes, floods."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import RunningServer
from tests.irc_helpers import IrcServer, start_irc


@pytest.fixture
def irc(make_server: Callable[..., RunningServer]) -> IrcServer:
    return start_irc(make_server)


def test_an_over_long_line_is_417_and_the_session_goes_on(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("PRIVMSG #general :" + "x" * 600)
    alice.expect(r" 417 alice :Input line was too long")
    alice.send(b"@" + b"t" * 9000 + b" PING :x\r\n")
    alice.expect(r" 417 alice :")
    alice.send("@" + "t=" + "v" * 8000 + " PING :tagged")  # tags may take 8,191 bytes
    alice.expect(r"PONG irc\.test :tagged$")


def test_invalid_utf8_and_junk_lines_are_answered_or_ignored(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send(b"PRIVMSG #general :\xff\xfe\r\n")
    alice.expect(r"NOTICE alice :\*\*\* That line was not valid UTF-8")
    for junk in ("   ", ":only.a.source", "@tags=only", "\x00\x01", ":a :b"):
        alice.send(junk)
    alice.send("PING :still-here")
    alice.expect(r"PONG irc\.test :still-here$")


def test_escape_sequences_and_formatting_never_reach_anyone_raw(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    bob = irc.line("bob", "qwerty")
    carol = irc.sasl("carol", "carol-pw")
    alice.send("PRIVMSG #general :\x1b]0;pwned\x07\x1b[2Jhello \x02bold\x02 \x0304,12red\x03!")
    bob.expect(r"^alice: hello bold red!$")
    carol.expect(r"^:alice!alice@chatd PRIVMSG #general :hello bold red!$")
    bob.send("/msg alice \x1b[31mred")
    alice.expect(r"^:bob!bob@chatd PRIVMSG alice :red$")


def test_a_ctcp_action_is_stored_as_text_and_relayed_as_an_action(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    bob = irc.line("bob", "qwerty")
    carol = irc.sasl("carol", "carol-pw")
    alice.send("PRIVMSG #general :\x01ACTION waves\x01")
    bob.expect(r"^alice: \* alice waves$")
    carol.expect("^:alice!alice@chatd PRIVMSG #general :\x01ACTION waves\x01$")
    alice.send("PRIVMSG carol :\x01VERSION\x01")  # not a message: dropped
    alice.send("PRIVMSG #general :after")
    carol.expect("PRIVMSG #general :after$")
    assert not any("VERSION" in line for line in carol.received)


def test_a_flood_is_refused_then_disconnected(make_server: Callable[..., RunningServer]) -> None:
    irc = start_irc(make_server, rate_burst=3, rate_per_second=0.5, rate_strikes=3)
    bob = irc.line("bob", "qwerty")
    alice = irc.sasl("alice", "pass123")
    alice.send("".join(f"PRIVMSG #general :line {i}\r\n" for i in range(20)).encode())
    alice.expect(r"NOTICE alice :\*\*\* Slow down")
    assert alice.wait_closed()[-1] == "ERROR :Closing link: alice[chatd] (Excess flood)"
    bob.expect(r"alice was disconnected for flooding")
    assert sum("alice: line" in line for line in bob.received) == 3


def test_errors_answer_commands_that_lack_what_they_need(irc: IrcServer) -> None:
    alice = irc.sasl("alice", "pass123")
    alice.send("PRIVMSG")
    alice.expect(r" 411 alice :No recipient given")
    alice.send("PRIVMSG #general")
    alice.expect(r" 412 alice :No text to send")
    alice.send("PRIVMSG #nowhere :hi")
    alice.expect(r" 403 alice #nowhere :")
    alice.send("JOIN")
    alice.expect(r" 461 alice JOIN :Not enough parameters")
    alice.send("WHOIS nobody")
    alice.expect(r" 401 alice nobody :")
    alice.send("WHOWAS nobody")  # what irssi asks next
    alice.expect(r" 406 alice nobody :")
    alice.send("NOTICE nobody :no error for a notice")
    alice.send("SUMMON bob")
    alice.expect(r" 421 alice SUMMON :Unknown command")
    assert not any(" 401 alice nobody" in line for line in alice.received[-2:])
