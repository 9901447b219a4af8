"""What a room is called: the naming rule shared by the server, the stores and chatd-admin.

A room name is `#` and 1-32 of `a-z 0-9 _ -`, case-insensitive: `#Dev` is
`#dev`, and the `#` may be left out when typing one. Names are kept in their
lower-case form, so they are safe in file names, log lines and IRC channels.
"""

from __future__ import annotations

import re

GENERAL_ROOM = "#general"  # everyone's room: it always exists and cannot be left
GENERAL_ROOM_ID = 1  # its id in every database (migrations/0004_rooms.sql)
MAX_ROOM_NAME = 32

_NAME = re.compile(r"#[a-z0-9_-]{1,32}")


class RoomNameError(ValueError):
    """A room name that breaks the rule; the message says what the rule is."""


def room_name(text: str) -> str:
    """The canonical name for what a user typed (`Dev`, `#DEV` -> `#dev`), or RoomNameError."""
    name = text.strip().lower()
    if not name.startswith("#"):
        name = "#" + name
    if _NAME.fullmatch(name) is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise RoomNameError(
            f"{shown!r} is not a room name: use # and 1-{MAX_ROOM_NAME} of a-z, 0-9, _ and -"
        )
    return name


def is_room_name(text: str) -> bool:
    """Whether `text` names a room (with or without its `#`)."""
    try:
        room_name(text)
    except RoomNameError:
        return False
    return True
