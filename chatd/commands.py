"""The slash commands: one registry of name -> handler and help text, so /help is always true.

A handler gets the session and the text after the command name. To add a
command, write a coroutine here and decorate it with `@command`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatd import replies
from chatd.accounts import AccountError, check_password
from chatd.clock import now_us
from chatd.storage.messages import Kind, NewMessage

if TYPE_CHECKING:
    from chatd.session import Session

Handler = Callable[["Session", str], Awaitable[None]]


class EndSession(Exception):
    """The session ends on purpose (/quit); its last words are already sent."""


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


@command("/help", "show this list of commands")
async def show_help(session: Session, args: str) -> None:
    visible = [c for c in COMMANDS.values() if session.is_admin or not c.admin_only]
    width = max(len(c.usage) for c in visible)
    lines = ["Commands:"]
    lines += [
        f"  {c.usage:<{width}}  {c.summary}{' (admins)' if c.admin_only else ''}" for c in visible
    ]
    lines.append("Anything else you type is sent to everyone (start it with // to begin with /).")
    session.conn.send_lines(lines)


@command("/users", "list who is online")
async def list_users(session: Session, args: str) -> None:
    session.conn.send(replies.active_users(session.server.online_names()))


@command("/history [N]", "show your last N messages, private ones included (default 20)")
async def show_history(session: Session, args: str) -> None:
    settings = session.server.settings
    limit = settings.history_default
    if args:
        if not args.isdecimal() or not 1 <= int(args) <= settings.history_max:
            session.conn.send(
                replies.error(f"N must be a whole number from 1 to {settings.history_max}.")
            )
            return
        limit = int(args)
    lines = await session.server.history_lines(session, limit)
    if not lines:
        session.conn.send("No history yet.")
        return
    session.conn.send_lines([f"Your last {len(lines)} message{'s' * (len(lines) != 1)}:", *lines])


@command("/msg USER TEXT", "send a private message")
async def private_message(session: Session, args: str) -> None:
    target, _, text = args.partition(" ")
    if not target or not text.strip():
        _usage_error(session, "msg")
        return
    recipient = await session.server.find_user(target)
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
    await session.server.post(message, origin=session)


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
    if await session.server.change_password(session, current, new):
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
    await session.server.post(message, origin=session)


@command("/kick USER [REASON]", "disconnect a user", admin_only=True)
async def kick(session: Session, args: str) -> None:
    target, _, reason = args.partition(" ")
    if not target:
        _usage_error(session, "kick")
        return
    kicked = session.server.kick(target, by=session.name, reason=reason.strip())
    if kicked:
        session.conn.send(replies.notice(f"{target} was kicked."))
    else:
        session.conn.send(replies.error(f"{target} is not online."))
