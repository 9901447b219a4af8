"""Saying things: PRIVMSG and NOTICE (to channels and nicks), and the rest of the
conversation's plumbing: AWAY, PING, PONG, TAGMSG, QUIT.

A PRIVMSG to a channel is a room message, to a nick a private message,
stored exactly as the line protocol stores them; NOTICE is the same (chatd
has one kind of message), except that it is never answered with an error,
as RFC 1459 asks. Nothing is acknowledged before it is committed: the
sender's `echo-message` copy comes from the delivery of the stored message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chatd.clock import now_us
from chatd.irc import numerics as n
from chatd.irc.channels import channel_name
from chatd.irc.session import IrcSession, reply
from chatd.storage.messages import Kind, NewMessage
from chatd.wire import sanitise

Error = Callable[..., None]  # answers with an error numeric (or, for a NOTICE, not)

_MAX_TARGETS = 4  # MAXTARGETS in ISUPPORT
_AWAY_MAX = 200
# mIRC-style formatting: bold, colours (with their numbers), italics, reset...
# Removed from what is stored: the line protocol would show the colour numbers
# as text, and no terminal should receive them raw.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


def plain_text(text: str) -> str:
    """Text from an IRC client as chatd keeps it: no formatting codes, no control
    characters or escape sequences (wire.sanitise)."""
    if text.isprintable():
        return text
    return sanitise(_FORMATTING.sub("", text))


def message_text(session: IrcSession, text: str) -> str | None:
    """What a PRIVMSG's text says, as stored; a CTCP ACTION (/me waves) is kept as
    "* alice waves", other CTCP requests (VERSION, PING...) are not messages: None."""
    if text.startswith("\x01"):
        inner = text.strip("\x01")
        if not inner.upper().startswith("ACTION "):
            return None
        return f"* {session.name} {plain_text(inner[7:])}"
    return plain_text(text)


async def privmsg(session: IrcSession, params: list[str], *, notice: bool = False) -> None:
    """A message to each target; queued, not waited for (see InFlight in core/service.py).
    Error replies wait for the messages before them, so answers keep their order."""
    command = "NOTICE" if notice else "PRIVMSG"
    errors: list[tuple[str, ...]] = []

    def error(code: str, *what: str) -> None:
        if not notice:
            errors.append((code, *what))

    if not params or not params[0]:
        error(n.ERR_NORECIPIENT, f"No recipient given ({command})")
        await _answer(session, errors)
        return
    text = message_text(session, params[1]) if len(params) > 1 else ""
    if text is None:
        return
    targets = params[0].split(",")
    if not text.strip():
        error(n.ERR_NOTEXTTOSEND, "No text to send")
    elif len(targets) > _MAX_TARGETS:
        error(n.ERR_TOOMANYTARGETS, params[0][:40], f"Too many targets (at most {_MAX_TARGETS})")
    else:
        for target in targets:
            message = await _addressed(session, target, text, error)
            await _answer(session, errors)
            if message is not None:
                await session.in_flight.add(session.service.post_soon(message, origin=session))
    await _answer(session, errors)


async def _answer(session: IrcSession, errors: list[tuple[str, ...]]) -> None:
    """Send the error replies gathered so far, after the answers to earlier messages."""
    if errors:
        await session.in_flight.settled()
        for code, *what in errors:
            session.numeric(code, *what)
        errors.clear()


async def _addressed(
    session: IrcSession, target: str, text: str, error: Error
) -> NewMessage | None:
    """The message to store for one target, or None after an error."""
    assert session.user is not None
    hub = session.service.hub
    if target.startswith("#"):
        name = channel_name(session, target)
        if name is None:
            return None
        state = hub.room(name)
        if state is None:  # nobody online is in it, so neither is the sender
            error(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None
        if not hub.is_member(session, state.id):
            error(n.ERR_CANNOTSENDTOCHAN, name, "Cannot send to channel (JOIN it first)")
            return None
        return NewMessage(
            now_us(), Kind.PUBLIC, session.user.id, session.name, text,
            room_id=state.id, room=state.name,
        )  # fmt: skip
    recipient = await session.service.find_user(target)
    if recipient is None:
        error(n.ERR_NOSUCHNICK, target[:40], "No such nick/channel")
        return None
    away = away_message(session, recipient.username)
    if away:
        error(n.RPL_AWAY, recipient.username, away)
    return NewMessage(
        now_us(), Kind.PRIVATE, session.user.id, session.name, text,
        recipient.id, recipient.username,
    )  # fmt: skip


async def notice(session: IrcSession, params: list[str]) -> None:
    await privmsg(session, params, notice=True)


def away_message(session: IrcSession, name: str) -> str:
    """A user's away message, if one of their IRC sessions set one, on this node or
    another (as this node last read the others')."""
    hub = session.service.hub
    for other in hub.sessions_of(name):
        if isinstance(other, IrcSession) and other.away:
            return other.away
    return hub.away_elsewhere(name)


async def away(session: IrcSession, params: list[str]) -> None:
    session.away = params[0][:_AWAY_MAX] if params else ""
    session.away_changed()
    if session.away:
        session.numeric(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        session.numeric(n.RPL_UNAWAY, "You are no longer marked as being away")


async def ping(session: IrcSession, params: list[str]) -> None:
    """PONG once the messages sent before the PING are stored and delivered: clients
    and bots use it to know their earlier lines were handled."""
    pong = reply(session.server_name, "PONG", session.server_name, params[0])
    session.in_flight.after(lambda: session.conn.send(pong))


async def ignore(session: IrcSession, params: list[str]) -> None:
    """PONG, and TAGMSG (client-only tags such as typing notices are not relayed)."""


async def quit_irc(session: IrcSession, params: list[str]) -> None:
    reason = params[0][:_AWAY_MAX] if params and params[0] else ""
    session.leave_reason = f"left ({reason})" if reason else "left"
    raise session.end(f"Quit: {reason}" if reason else "Quit")
