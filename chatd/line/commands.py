"""The slash commands: one registry of name -> handler and help text, so /help is always true.

A handler gets the session and the text after the command name. To add a
command, write a coroutine here and decorate it with `@command`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatd.accounts import AccountError, check_password
from chatd.clock import now_us
from chatd.line import replies
from chatd.line.session import EndSession, Session, replay_lines
from chatd.rooms import GENERAL_ROOM, GENERAL_ROOM_ID, RoomNameError, room_name
from chatd.storage.messages import Kind, NewMessage

if TYPE_CHECKING:
    from chatd.core.hub import RoomState

Handler = Callable[[Session, str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    usage: str  # "/msg USER TEXT"
    summary: str  # one line for /help
    handler: Handler
    admin_only: bool = False

    @property
    def name(self) -> str:
        return self.usage.split()[0].removeprefix("/")


COMMANDS: dict[str, Command] = {}


def command(usage: str, summary: str, *, admin_only: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as a slash command."""

    def register(handler: Handler) -> Handler:
        entry = Command(usage, summary, handler, admin_only)
        COMMANDS[entry.name] = entry
        return handler

    return register


async def handle_line(session: Session, line: str) -> None:
    """What a logged-in client typed: a /command, or a message to its current room."""
    if line.startswith("/") and not line.startswith("//"):
        await session.in_flight.settled()  # a command answers after the messages before it
        await dispatch(session, line)
    else:
        # "//text" sends "/text": the way to say something starting with a slash
        await say(session, line.removeprefix("/") if line.startswith("//") else line)


async def dispatch(session: Session, line: str) -> None:
    """Run the command on a line that starts with '/'."""
    name, _, args = line[1:].partition(" ")
    entry = COMMANDS.get(name.lower())
    if entry is None or (entry.admin_only and not session.is_admin):
        session.conn.send(replies.error(f"unknown command /{name}. Type /help for the commands."))
        return
    await entry.handler(session, args.strip())


def _usage_error(session: Session, name: str) -> None:
    session.conn.send(replies.error(f"usage: {COMMANDS[name].usage}"))


async def say(session: Session, text: str) -> None:
    """Send a message to the current room; returns once it is queued (see InFlight)."""
    assert session.user is not None
    message = NewMessage(
        now_us(),
        Kind.PUBLIC,
        session.user.id,
        session.name,
        text,
        room_id=session.room_id,
        room=session.room_name,
    )
    await session.in_flight.add(session.service.post_soon(message, origin=session))


def _room_name(session: Session, text: str) -> str | None:
    """The canonical room name for what was typed, or None after an error line."""
    try:
        return room_name(text)
    except RoomNameError as exc:
        session.conn.send(replies.error(f"{exc}."))
        return None


def _my_room(session: Session, text: str) -> RoomState | None:
    """One of the session's rooms by name (the current one when `text` is empty)."""
    name = _room_name(session, text) if text else session.room_name
    if name is None:
        return None
    for room in session.service.hub.rooms_of(session):
        if room.name == name:
            return room
    session.conn.send(replies.error(f"you are not in {name}. /join it first (see /rooms)."))
    return None


@command("/help", "show this list of commands")
async def show_help(session: Session, args: str) -> None:
    visible = [c for c in COMMANDS.values() if session.is_admin or not c.admin_only]
    width = max(len(c.usage) for c in visible)
    lines = ["Commands:"]
    lines += [
        f"  {c.usage:<{width}}  {c.summary}{' (admins)' if c.admin_only else ''}" for c in visible
    ]
    lines.append(
        "Anything else you type is sent to your current room (start it with // to begin with /)."
    )
    session.conn.send_lines(lines)


@command("/users", "list who is online")
async def list_users(session: Session, args: str) -> None:
    session.conn.send(replies.active_users(session.service.hub.online_names()))


@command(
    "/history [#ROOM] [N]",
    "your last N messages, private ones included (default 20); or a room's last N",
)
async def show_history(session: Session, args: str) -> None:
    settings = session.settings
    words = args.split()
    room = None
    if words and words[0].startswith("#"):
        room = _my_room(session, words.pop(0))
        if room is None:
            return
    limit = settings.history_default
    if words:
        number = words[0]
        if len(words) > 1 or not number.isdecimal() or not 1 <= int(number) <= settings.history_max:
            session.conn.send(
                replies.error(f"N must be a whole number from 1 to {settings.history_max}.")
            )
            return
        limit = int(number)
    assert session.user is not None
    if room is None:
        lines = await session.service.history_lines(session.user, limit)
    else:
        lines = await session.service.room_history(room.id, limit)
    if not lines:
        session.conn.send("No history yet.")
        return
    plural = "s" * (len(lines) != 1)
    if room is None:
        header = f"Your last {len(lines)} message{plural}:"
    else:
        header = f"The last {len(lines)} message{plural} in {room.name}:"
    session.conn.send_lines([header, *lines])


@command("/join ROOM", "join a room (created if new) and make it your current room")
async def join_room(session: Session, args: str) -> None:
    if not args:
        _usage_error(session, "join")
        return
    name = _room_name(session, args)
    if name is None:
        return
    room, replay = await session.service.join(session, name)
    session.switch_to(room.id, room.name)
    if replay is not None and replay.total:
        session.conn.send_lines(replay_lines([replay]))


@command("/leave [ROOM]", "leave a room (the current one by default); #general stays")
async def leave_room(session: Session, args: str) -> None:
    room = _my_room(session, args)
    if room is None:
        return
    if room.id == GENERAL_ROOM_ID:
        session.conn.send(replies.error("everyone stays in #general; it cannot be left."))
        return
    await session.service.leave_room(session, room)
    session.conn.send(f"You left {room.name}.")
    for other in session.service.hub.sessions_of(session.name):
        if isinstance(other, Session) and other.room_id == room.id:
            other.switch_to(GENERAL_ROOM_ID, GENERAL_ROOM)


@command("/rooms", "list the rooms: members, members online, topic; yours marked")
async def list_rooms(session: Session, args: str) -> None:
    listing = await session.service.listing(session)
    lines = ["Rooms (* member, > current):"]
    width = max(len(room.name) for room in listing)
    for room in listing:
        mark = ">" if room.name == session.room_name else "*" if room.mine else " "
        members = f"{room.members} member{'s' * (room.members != 1)}, {room.online} online"
        topic = f"  topic: {room.topic}" if room.topic else ""
        lines.append(f"{mark} {room.name:<{width}}  {members}{topic}")
    session.conn.send_lines(lines)


@command("/who [ROOM]", "who is online in a room (your current room by default)")
async def who(session: Session, args: str) -> None:
    name = _room_name(session, args) if args else session.room_name
    if name is None:
        return
    room = session.service.hub.room(name)
    names = [] if room is None else room.online_names()
    if not names:
        if room is None and await session.service.find_room(name) is None:
            session.conn.send(replies.error(f"there is no room named {name}."))
        else:
            session.conn.send(f"Nobody is online in {name}.")
        return
    session.conn.send(replies.online_in(name, names))


@command("/topic [TEXT]", "show the current room's topic, or set it")
async def topic(session: Session, args: str) -> None:
    room = _my_room(session, "")
    if room is None:
        return
    if not args:
        shown = (
            f"The topic of {room.name} is: {room.topic}"
            if room.topic
            else (f"{room.name} has no topic. Set one with /topic TEXT.")
        )
        session.conn.send(shown)
        return
    limit = session.settings.max_topic_chars
    if len(args) > limit:
        session.conn.send(replies.error(f"a topic is at most {limit} characters; it was not set."))
        return
    await session.service.set_topic(session, room, args)


@command("/msg USER TEXT", "send a private message")
async def private_message(session: Session, args: str) -> None:
    target, _, text = args.partition(" ")
    if not target or not text.strip():
        _usage_error(session, "msg")
        return
    recipient = await session.service.find_user(target)
    if recipient is None:
        session.conn.send(replies.error(f"there is no user named {target}."))
        return
    assert session.user is not None
    message = NewMessage(
        now_us(),
        Kind.PRIVATE,
        session.user.id,
        session.name,
        text,
        recipient.id,
        recipient.username,
    )
    await session.service.post(message, origin=session)


@command("/passwd", "change your password (you are asked for the old and new one)")
async def change_password(session: Session, args: str) -> None:
    current = await session.ask(replies.ASK_CURRENT_PASSWORD, raw=True)
    new = await session.ask(replies.ASK_NEW_PASSWORD, raw=True)
    again = await session.ask(replies.ASK_NEW_PASSWORD_AGAIN, raw=True)
    if new != again:
        session.conn.send(replies.error("the new passwords differ; nothing changed."))
        return
    try:
        check_password(new)
    except AccountError as exc:
        session.conn.send(replies.error(f"{exc}; nothing changed."))
        return
    assert session.user is not None
    if await session.service.change_password(session.user, current, new):
        session.conn.send("Password changed.")
    else:
        session.conn.send(replies.error("the current password is wrong; nothing changed."))


@command("/quit", "leave the chat")
async def quit_chat(session: Session, args: str) -> None:
    session.conn.send(replies.DISCONNECTED)
    raise EndSession


@command("/announce TEXT", "send an announcement to everyone", admin_only=True)
async def announce(session: Session, args: str) -> None:
    if not args:
        _usage_error(session, "announce")
        return
    assert session.user is not None
    message = NewMessage(now_us(), Kind.ANNOUNCE, session.user.id, session.name, args)
    await session.service.post(message, origin=session)


@command("/kick USER [REASON]", "disconnect a user", admin_only=True)
async def kick(session: Session, args: str) -> None:
    target, _, reason = args.partition(" ")
    if not target:
        _usage_error(session, "kick")
        return
    kicked = await session.service.kick(target, by=session.name, reason=reason.strip())
    if kicked:
        session.conn.send(replies.notice(f"{target} was kicked."))
    else:
        session.conn.send(replies.error(f"{target} is not online."))
