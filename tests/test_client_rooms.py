"""`chatd connect` and rooms: what the client learns from the server's lines, how it
shows them, and what Tab completes. Pure parts here; the terminal at the end."""

from __future__ import annotations

import re

import pexpect
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from chatd.client.completion import ChatCompleter
from chatd.client.display import LineKind, classify, split_room_tag
from chatd.client.names import BUILT_IN_COMMANDS, KnownNames
from tests.conftest import RunningServer
from tests.test_client import converse, finish, spawn


def learned(*lines: str) -> KnownNames:
    names = KnownNames()
    for line in lines:
        names.learn(line)
    return names


# --- the current room -----------------------------------------------------------------


def test_the_current_room_is_general_after_login() -> None:
    names = learned("Welcome, alice! Nobody else is online. Type /help for the commands.")
    assert names.current_room == "#general"
    assert names.rooms == {"#general"}


def test_now_talking_in_moves_the_current_room() -> None:
    names = KnownNames()
    assert names.learn("Now talking in #dev.") is True
    assert names.current_room == "#dev"
    assert names.learn("Now talking in #dev.") is False  # joined again: no change


def test_leaving_returns_to_the_room_the_server_names() -> None:
    names = learned("Now talking in #dev.", "You left #dev.", "Now talking in #general.")
    assert names.current_room == "#general"


@pytest.mark.parametrize(
    "line",
    [
        "alice: Now talking in #evil",  # someone's words, not the server's
        "[#dev] alice: Now talking in #evil",
        "[private] bob: Now talking in #evil",
        "You said: Now talking in #evil",
    ],
)
def test_only_the_servers_own_line_moves_the_current_room(line: str) -> None:
    names = learned(line)
    assert names.current_room == "#general"
    assert "#evil" not in names.rooms


# --- rooms heard of -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "room"),
    [
        ("Now talking in #dev.", "#dev"),
        ("[#dev] alice: Hello", "#dev"),
        ("[#dev] *** bob joined #dev", "#dev"),
        ("*** bob joined #lab-3", "#lab-3"),
        ("*** bob left #lab_3", "#lab_3"),
        ("*** alice set the topic of #ops: release on friday", "#ops"),
        ("*** 3 new messages in #dev while you were away:", "#dev"),
        ("2026-11-23 12:01:07 [#dev] alice: Hello", "#dev"),
        ("Online in #dev: alice, bob", "#dev"),
        ("> #general  3 members, 2 online", "#general"),
        ("* #dev  2 members, 1 online  topic: the #build channel", "#dev"),
        ("  #lab-3  1 member, 0 online", "#lab-3"),
        ("* #dev      2 members, 2 online  topic: ship it", "#dev"),  # names padded to line up
        ("You left #dev.", "#dev"),
    ],
)
def test_rooms_are_learned_from_the_lines_that_name_them(line: str, room: str) -> None:
    assert learned(line).rooms == {"#general", room}


@pytest.mark.parametrize(
    "line",
    [
        "alice: come to #secret",
        "[#dev] alice: come to #secret",
        "[private] bob: come to #secret",
        "*** Announcement from admin: everyone to #secret",
        "*** alice set the topic of #dev: see #secret",
        "*** You were kicked by admin (try #secret).",
        "Error: '#Secret!' is not a room name",
    ],
)
def test_rooms_in_what_people_write_are_not_learned(line: str) -> None:
    assert "#secret" not in learned(line).rooms


# --- commands from /help ------------------------------------------------------------------


def test_commands_are_built_in_and_learned_from_help() -> None:
    names = learned(
        "Commands:",
        "  /help               show this list of commands",
        "  /join ROOM          talk in a room (created if need be)",
        "  /announce TEXT      send an announcement to everyone (admins)",
        "  /kick USER [REASON] disconnect a user (admins)",
        "  #lab-3  1 member, 0 online",
        "alice:   /fake is not a command",
    )
    assert names.commands == {*BUILT_IN_COMMANDS, "/announce", "/kick"}
    assert {"/join", "/leave", "/rooms", "/who", "/topic", "/quit"} <= set(BUILT_IN_COMMANDS)


# --- classification and the room tag --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("[#dev] alice: Hello", LineKind.MESSAGE),
        ("[#dev] *** bob joined #dev", LineKind.NOTICE),
        ("alice: Hello", LineKind.MESSAGE),
        ("*** bob joined #dev", LineKind.NOTICE),
        ("Now talking in #dev.", LineKind.INFO),
        ("Online in #dev: alice, bob", LineKind.INFO),
        ("Rooms (* member, > current):", LineKind.INFO),
        ("* #dev  2 members, 1 online  topic: ship it", LineKind.INFO),
        ("2026-11-23 12:01:07 [#dev] alice: Hello", LineKind.INFO),
        ("[private] bob: psst", LineKind.PRIVATE),
        ("[#Dev] alice: Hello", LineKind.INFO),  # not a room name: no tag
    ],
)
def test_classify_sees_through_the_room_tag(line: str, kind: LineKind) -> None:
    assert classify(line) is kind


def test_split_room_tag() -> None:
    assert split_room_tag("[#dev] alice: hi") == ("[#dev] ", "alice: hi")
    assert split_room_tag("alice: [#dev] hi") == ("", "alice: [#dev] hi")
    assert split_room_tag("[private] bob: hi") == ("", "[private] bob: hi")


# --- Tab ------------------------------------------------------------------------------------------


def completions(text: str, names: KnownNames | None = None) -> list[str]:
    """What Tab offers with the cursor at the end of `text`: the text each would leave."""
    completer = ChatCompleter(names or learned("[#dev] a: x", "[#design] b: y", "[#ops] c: z"))
    document = Document(text, len(text))
    found = completer.get_completions(document, CompleteEvent(completion_requested=True))
    return [text[: len(text) + c.start_position] + c.text for c in found]


def test_tab_completes_command_names() -> None:
    assert completions("/jo") == ["/join "]
    assert completions("/JO") == ["/join "]
    assert completions("/h") == ["/help ", "/history "]
    assert completions("/") == [name + " " for name in sorted(BUILT_IN_COMMANDS)]
    assert completions("/nope") == []


def test_tab_completes_commands_learned_from_help() -> None:
    names = learned("  /kick USER [REASON]  disconnect a user (admins)")
    assert completions("/k", names) == ["/kick "]
    assert completions("/k") == []


@pytest.mark.parametrize("command", ["/join", "/leave", "/who", "/history", "/JOIN"])
def test_tab_completes_rooms_after_room_commands(command: str) -> None:
    assert completions(f"{command} de") == [f"{command} design", f"{command} dev"]
    assert completions(f"{command} #o") == [f"{command} #ops"]
    assert completions(f"{command} ") == [
        f"{command} {room}" for room in ["design", "dev", "general", "ops"]
    ]


def test_tab_completes_a_word_starting_with_hash_anywhere() -> None:
    assert completions("see #op") == ["see #ops"]
    assert completions("/topic talk in #gen") == ["/topic talk in #general"]
    assert completions("#") == ["#design", "#dev", "#general", "#ops"]


def test_tab_offers_nothing_elsewhere() -> None:
    assert completions("hello de") == []
    assert completions("/msg de") == []
    assert completions("/join dev now") == []
    assert completions("/join #zzz") == []


def test_tab_completes_rooms_learned_later() -> None:
    names = KnownNames()
    assert completions("/join l", names) == []
    names.learn("*** bob joined #lab")
    assert completions("/join l", names) == ["/join lab"]


# --- in a real terminal, against a real server ------------------------------------------------
# The prompt's trailing space is drawn as a cursor move, so these wait for "#dev>".


def log_in(child: pexpect.spawn) -> None:
    """Log in as alice and wait for the prompt of #general."""
    converse(child, ("Username:", "alice"), ("Password:", "pass123"))
    child.expect("Welcome, alice!")
    child.expect("#general>")


def test_the_prompt_follows_the_current_room(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    bob = server.login("bob", "qwerty")
    bob.send("/join dev")
    bob.expect("^Now talking in #dev")
    child.sendline("/join dev")
    child.expect("Now talking in #dev")
    child.expect("#dev>")
    child.sendline("/join general")  # still a member of #dev
    child.expect("Now talking in #general")
    child.expect("#general>")
    bob.send("still here?")
    child.expect(r"\[#dev\] .*bob.*: still here\?")  # tagged: not alice's current room
    child.sendline("/join dev")
    child.expect("#dev>")
    child.sendline("/leave")
    child.expect("You left #dev")
    child.expect("#general>")
    child.sendline("/quit")
    assert finish(child)[0] == 0


def _drawn(typed: str, completed: str) -> str:
    """What the terminal shows once `typed` is completed with `completed`: the completed
    part may be drawn on its own, after the typed part, with terminal codes between."""
    return re.escape(typed) + r"(?:\x1b\[[0-9;?]*[A-Za-z])*" + re.escape(completed)


def test_tab_completes_commands_and_rooms(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    child.send("/jo\t")
    child.expect(_drawn("/jo", "in"))  # the input line is redrawn with the completion
    child.send("lab-3\r")
    child.expect("Now talking in #lab-3")
    child.expect("#lab-3>")
    child.send("/who #la\t")  # a room learned from the server's line
    child.expect(_drawn("/who #la", "b-3"))  # completing runs apart: wait before Enter
    child.send("\r")
    child.expect("Online in #lab-3: alice")
    child.sendline("/quit")
    assert finish(child)[0] == 0
