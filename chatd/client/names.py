"""What the client learns from the server's lines: the current room, rooms, and commands.

The server never says "your state is now ...": the current room is the one
named by the last `Now talking in #ROOM` line (`#general` at login), and
the rooms and commands worth completing are those the server has named.
Only the server's own words teach anything: a room mentioned inside
someone's message is not learned, so nobody can fill another user's
completions.

Pure: lines in, names out; interactive.py feeds it and completion.py reads it.
"""

from __future__ import annotations

import re

from chatd.rooms import GENERAL_ROOM

# Those anyone may use; admin commands are learned from /help, which lists them to admins only.
BUILT_IN_COMMANDS = (
    "/help",
    "/users",
    "/history",
    "/msg",
    "/passwd",
    "/quit",
    "/join",
    "/leave",
    "/rooms",
    "/who",
    "/topic",
)

_ROOM = r"#[a-z0-9_-]{1,32}"
_NOW_TALKING_IN = re.compile(rf"^Now talking in ({_ROOM})\b")
_ROOM_LINES = [
    re.compile(rf"^\[({_ROOM})\] "),  # [#dev] alice: hi
    re.compile(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \[({_ROOM})\] "),  # a /history line
    re.compile(rf"^Online in ({_ROOM}): "),  # /who
    re.compile(rf"^[ *>]{{1,2}} ?({_ROOM})  "),  # a /rooms line: "* #dev  2 members, ..."
    re.compile(rf"^You left ({_ROOM})\b"),
]
# A notice names its room before any ": " or "(" ("*** bob joined #dev", "*** alice set
# the topic of #dev: ..."); what follows may be someone's words (a topic, a kick's reason).
_NOTICE_ROOM = re.compile(rf"^\*\*\* [^:(]*?(?<![^ ])({_ROOM})(?![^ .,:])")
_HELP_COMMAND = re.compile(r"^  (/[a-z]+)(?: |$)")  # "  /join ROOM  ..." in /help


class KnownNames:
    """The current room, and the rooms and commands learned so far."""

    def __init__(self) -> None:
        self.current_room = GENERAL_ROOM
        self.rooms: set[str] = {GENERAL_ROOM}
        self.commands: set[str] = set(BUILT_IN_COMMANDS)

    def learn(self, line: str) -> bool:
        """Take in one (sanitised) server line; True when it changed the current room."""
        now_in = _NOW_TALKING_IN.match(line)
        if now_in is not None:
            room = now_in.group(1)
            self.rooms.add(room)
            changed = room != self.current_room
            self.current_room = room
            return changed
        for pattern in (*_ROOM_LINES, _NOTICE_ROOM):
            named = pattern.match(line)
            if named is not None:
                self.rooms.add(named.group(1))
                break
        help_line = _HELP_COMMAND.match(line)
        if help_line is not None:
            self.commands.add(help_line.group(1))
        return False
