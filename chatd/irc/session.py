"""One IRC client's connection, as one coroutine: registration, then commands.

    connect ─► CAP / AUTHENTICATE / PASS / NICK / USER ─► 001-005, MOTD, a JOIN per room,
               ▲   (SASL may be retried)     │              what was missed meanwhile
               └─────────────────────────────┘                      │
                                                       commands ◄───┘ ─► QUIT, ERROR, or gone

Like the line protocol's session it handles its lines in order, and answers
them in order: a PRIVMSG is queued and the next lines are read while it is
stored; a command waits for the messages before it, and a PING is answered
once they are stored and delivered (clients, bots and the benchmark rely on
that). See InFlight in core/service.py.
What a command does is in the handler modules; the table of commands is
`commands.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from chatd.core.service import InFlight
from chatd.irc import numerics
from chatd.irc.message import Message, MessageError, parse
from chatd.limits import TokenBucket
from chatd.storage import ERRORS
from chatd.wire import LINE_TOO_LONG

if TYPE_CHECKING:
    from chatd.connection import Connection
    from chatd.core.service import ChatService
    from chatd.irc.frontend import IrcFrontEnd
    from chatd.settings import Settings
    from chatd.storage.users import User

log = logging.getLogger(__name__)

# The host part of every user's source (alice!alice@chatd): clients' addresses
# are nobody else's business, and the line protocol does not show them either.
HOST = "chatd"

Dispatch = Callable[["IrcSession", Message], Awaitable[None]]


class ClientGone(Exception):
    """The client sent its last line or went away."""


UNAVAILABLE = "The database is unavailable; that was not done. Please try again."


class EndSession(Exception):
    """The session ends on purpose; its ERROR line is already sent."""


def reply(source: str, command: str, *params: str) -> str:
    """A line from `source`; the last parameter always goes as a trailing one (` :...`)."""
    if not params:
        return f":{source} {command}"
    *middle, last = params
    return f":{source} {command} {' '.join(middle)}{' ' if middle else ''}:{last}"


def source_of(name: str) -> str:
    return f"{name}!{name}@{HOST}"


class IrcSession:
    """The state of one IRC client; once registered, a member of the hub."""

    def __init__(self, frontend: IrcFrontEnd, conn: Connection) -> None:
        self.frontend = frontend
        self.service: ChatService = frontend.service
        self.settings: Settings = frontend.service.settings
        self.conn = conn
        self.server_name = frontend.server_name
        # Registration: what the client has said so far.
        self.nick = ""  # the nick it asked for (its account's name once registered)
        self.password: str | None = None  # from PASS
        self.got_user = False  # USER was sent
        self.cap_negotiating = False  # CAP LS/REQ holds registration until CAP END
        self.sasl_buffer: str | None = None  # AUTHENTICATE data so far, once PLAIN is chosen
        self.failed_logins = 0
        self.user: User | None = None  # the account, once a login succeeded
        self.registered = False
        # Capabilities, as plain flags: delivery reads them once per recipient.
        self.caps: set[str] = set()
        self.server_time = False
        self.echo_message = False
        self.away = ""
        self.leave_reason = "left"  # what the others are told when this session ends
        self._closed_link = False  # the ERROR line has been sent
        self._rate = TokenBucket(self.settings.rate_per_second, self.settings.rate_burst)
        self._strikes = 0
        self.in_flight = InFlight()  # its messages not yet stored and delivered

    # --- the hub's Member -----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.user.username if self.user is not None else (self.nick or "*")

    @property
    def user_id(self) -> int:
        assert self.user is not None
        return self.user.id

    @property
    def source(self) -> str:
        return source_of(self.name)

    # --- sending ----------------------------------------------------------------------

    def numeric(self, code: str, *params: str) -> None:
        """A numeric reply to this client, addressed to its nick ("*" until it has one)."""
        self.conn.send(self.numeric_line(code, *params))

    def numeric_line(self, code: str, *params: str) -> str:
        target = self.name if self.registered or self.user else (self.nick or "*")
        return reply(self.server_name, code, target, *params)

    def notice(self, text: str) -> None:
        """A NOTICE from the server: how chatd says what IRC has no numeric for."""
        self.conn.send(reply(self.server_name, "NOTICE", self.nick or "*", text))

    def close_link(self, reason: str) -> None:
        """Send ERROR (once) and stop reading: the session ends after this."""
        if not self._closed_link:
            self._closed_link = True
            self.conn.send(f"ERROR :Closing link: {self.nick or '*'}[{HOST}] ({reason})")
        self.conn.stop_reading()

    def end(self, reason: str) -> EndSession:
        """Close the link and return the exception that ends the session: `raise s.end(..)`."""
        self.close_link(reason)
        return EndSession(reason)

    # --- the conversation -----------------------------------------------------------

    async def run(
        self,
        dispatch: Dispatch,
        log_in: Callable[[IrcSession], Awaitable[User]],
        welcome: Callable[[IrcSession], Awaitable[None]],
    ) -> None:
        """Serve the client from its first line to its last: registration (`dispatch`
        until `log_in` can be tried), the `welcome`, then commands."""
        online = False
        try:
            while not self.ready_to_register:
                await dispatch(self, await self.next_message())
            self.user = await log_in(self)
            if self.conn.gone:
                return
            self.nick = self.user.username
            self.conn.logged_in()
            online = True
            await welcome(self)
            while True:
                message = await self.next_message()
                if await self._within_rate():
                    try:
                        await dispatch(self, message)
                    except ERRORS as exc:  # the command needed the database, which is away
                        log.error("%s: %s: %s", self.conn.peer, self.name, exc)
                        await self.in_flight.settled()  # after the earlier lines' answers
                        self.numeric(numerics.RPL_TRYAGAIN, message.command.upper(), UNAVAILABLE)
        except (ClientGone, EndSession):
            # Its last messages are answered before the connection closes.
            await self.in_flight.settled()
        except ERRORS as exc:  # registering or being let in, with the database away
            log.error("%s: %s: %s", self.conn.peer, self.name, exc)
            self.conn.drop_held_output()
            self.close_link("The database is unavailable; try again later")
        finally:
            if online:
                if self.conn.close_reason:
                    self.leave_reason = f"was disconnected ({self.conn.close_reason})"
                self.service.leave(self, self.leave_reason)
                if self.away:  # the account's other sessions here may not be away
                    self.away = ""
                    self.away_changed()
            self.close_link(self.conn.close_reason or "Goodbye")
            self.conn.close()

    def account_away(self) -> str:
        """This account's away message here: that of any of its IRC sessions on this
        node ("" if none is away)."""
        for other in self.service.hub.sessions_of(self.name):
            if isinstance(other, IrcSession) and other.away:
                return other.away
        return ""

    def away_changed(self) -> None:
        """Tell the other nodes this account's away message here (after AWAY, or after
        a session that was away has ended)."""
        self.service.set_away(self, self.account_away())

    @property
    def ready_to_register(self) -> bool:
        return bool(self.nick) and self.got_user and not self.cap_negotiating

    async def next_message(self) -> Message:
        """The next message from the client; lines that are none are answered and skipped."""
        while True:
            frame = await self.conn.next_frame()
            if frame is None:
                raise ClientGone
            if not isinstance(frame, str):
                await self.in_flight.settled()  # its answer comes after the earlier ones'
            if frame is LINE_TOO_LONG:
                self.numeric(numerics.ERR_INPUTTOOLONG, "Input line was too long")
            elif not isinstance(frame, str):
                self.notice("*** That line was not valid UTF-8; it was ignored.")
            else:
                try:
                    return parse(frame)
                except MessageError:
                    pass  # blank, or tags alone: ignored, as the message rules say

    async def _within_rate(self) -> bool:
        """Take a line if the client is within its rate; refuse it, or end a flood, if not."""
        if self._rate.take():
            self._strikes = 0
            return True
        await self.in_flight.settled()  # the refusal comes after the earlier lines' answers
        self._strikes += 1
        if self._strikes >= self.settings.rate_strikes:
            self.leave_reason = "was disconnected for flooding"
            log.warning("%s: %s disconnected for flooding", self.conn.peer, self.name)
            raise self.end("Excess flood")
        self.notice(
            f"*** Slow down: at most {self.settings.rate_per_second:g} lines a second"
            " (that line was ignored)."
        )
        return False
