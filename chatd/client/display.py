"""Telling the server's lines apart, and making them safe to print.

Nothing from the server reaches the terminal raw: both modes pass every
line through `wire.sanitise` first, so a hostile server (or a bug) cannot
send escape sequences to the user's terminal.

A line from a room other than the current one starts with its room,
`[#dev] alice: hi`; the tag is split off first and the rest is classified
as any other line (that one is a MESSAGE).
"""

from __future__ import annotations

import enum
import re

from chatd.line import replies


class LineKind(enum.Enum):
    OWN = "own"  # You said: ...
    MESSAGE = "message"  # alice: ...
    PRIVATE = "private"  # [private] ...
    NOTICE = "notice"  # *** ...
    ERROR = "error"  # Error: ... / Login failed
    INFO = "info"  # answers to commands, the greeting


_MESSAGE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}: ")
_ROOM_TAG = re.compile(r"^\[#[a-z0-9_-]{1,32}\] ")


def split_room_tag(line: str) -> tuple[str, str]:
    """`[#dev] alice: hi` -> (`[#dev] `, `alice: hi`); a line without a tag -> (``, line)."""
    tag = _ROOM_TAG.match(line)
    if tag is None:
        return "", line
    return tag.group(), line[tag.end() :]


def classify(line: str) -> LineKind:
    """The kind of a server line, whether or not it starts with a room tag."""
    line = split_room_tag(line)[1]
    if line.startswith("You said: "):
        return LineKind.OWN
    if line.startswith(replies.PRIVATE_PREFIX):
        return LineKind.PRIVATE
    if line.startswith(replies.NOTICE_PREFIX):
        return LineKind.NOTICE
    if line.startswith((replies.ERROR_PREFIX, "Login failed")):
        return LineKind.ERROR
    if _MESSAGE.match(line) and not line.startswith("Active users: "):
        return LineKind.MESSAGE
    return LineKind.INFO


def asks_for_secret(line: str) -> bool:
    """Whether the server's line asks for a password (the next input is hidden)."""
    return line.rstrip().lower().endswith("password:")
