"""The IRC commands: one table of command -> handler, minimum parameters, and whether it
is allowed before registration (the shape of ergo's irc/commands.go).

A handler is a coroutine taking the session and the message's parameters;
those are cleaned of formatting codes and control characters here, once,
except for the commands that need them exactly as sent (passwords, and the
message text that its handler cleans itself after reading CTCP out of it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatd.irc import channels, messaging, queries, registration
from chatd.irc import numerics as n
from chatd.irc.message import Message
from chatd.irc.messaging import plain_text
from chatd.irc.session import IrcSession

Handler = Callable[[IrcSession, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    handler: Handler
    min_params: int = 0
    before_registration: bool = False
    raw: bool = False  # the parameters reach the handler exactly as sent
    # It waits for the session's messages in flight before it runs (InFlight), so its
    # answers come after theirs; those that do not keep the order themselves.
    waits: bool = True


COMMANDS: dict[str, Command] = {
    # registration
    "CAP": Command(registration.cap, 1, before_registration=True),
    "AUTHENTICATE": Command(registration.authenticate, 1, before_registration=True, raw=True),
    "PASS": Command(registration.password, 1, before_registration=True, raw=True),
    "NICK": Command(registration.nick, 1, before_registration=True),
    "USER": Command(registration.user, 4, before_registration=True),
    "PING": Command(messaging.ping, 1, before_registration=True, waits=False),
    "PONG": Command(messaging.ignore, 0, before_registration=True, waits=False),
    "QUIT": Command(messaging.quit_irc, 0, before_registration=True),
    # channels
    "JOIN": Command(channels.join, 1),
    "PART": Command(channels.part, 1),
    "NAMES": Command(channels.names),
    "TOPIC": Command(channels.topic, 1),
    "LIST": Command(channels.list_rooms),
    "MODE": Command(channels.mode, 1),
    # messages
    "PRIVMSG": Command(messaging.privmsg, raw=True, waits=False),
    "NOTICE": Command(messaging.notice, raw=True, waits=False),
    "TAGMSG": Command(messaging.ignore, 1, waits=False),
    "AWAY": Command(messaging.away),
    # users
    "WHO": Command(queries.who),
    "WHOIS": Command(queries.whois, 1),
    "WHOWAS": Command(queries.whowas, 1),
    "ISON": Command(queries.ison, 1),
    "USERHOST": Command(queries.userhost, 1),
}


async def dispatch(session: IrcSession, message: Message) -> None:
    """Run the handler of a message's command, or answer why not."""
    name = message.command.upper()
    entry = COMMANDS.get(name)
    if entry is None or entry.waits or len(message.params) < entry.min_params:
        await session.in_flight.settled()  # its answer comes after the messages before it
    if entry is None:
        session.numeric(n.ERR_UNKNOWNCOMMAND, plain_text(name)[:32], "Unknown command")
        return
    if not (session.registered or entry.before_registration):
        await session.in_flight.settled()
        session.numeric(n.ERR_NOTREGISTERED, "You have not registered")
        return
    if len(message.params) < entry.min_params:
        session.numeric(n.ERR_NEEDMOREPARAMS, name, "Not enough parameters")
        return
    params = message.params if entry.raw else [plain_text(p) for p in message.params]
    await entry.handler(session, params)
