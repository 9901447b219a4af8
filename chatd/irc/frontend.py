"""IRC as a front end of the hub: committed messages rendered as IRC lines.

Rooms are channels, so a room message is one `PRIVMSG #room` line encoded
once for every IRC member online, and once more (lazily) with its `time`
tag for those that negotiated `server-time`. How each kind of committed
message looks on IRC:

    public         :alice!alice@chatd PRIVMSG #dev :Hello
    private        :alice!alice@chatd PRIVMSG bob :psst
    announce       :server NOTICE #general :*** Announcement from admin: ...
    join / leave   JOIN #room / PART #room; in #general (logging in and out): JOIN, QUIT
    topic          :alice!alice@chatd TOPIC #dev :the new topic

Like the line protocol, the sender of a message hears nothing back unless it
asked to (IRCv3 `echo-message`), and only once the message is committed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, cast

from chatd.irc import channels, commands, registration
from chatd.irc.message import IrcFramer
from chatd.irc.session import HOST, IrcSession, reply, source_of
from chatd.rooms import GENERAL_ROOM
from chatd.storage.messages import Kind, LogEntry, NewMessage
from chatd.wire import LineFramer

if TYPE_CHECKING:
    from chatd.connection import Connection
    from chatd.core.hub import Member
    from chatd.core.service import ChatService


def time_tag(stamp_us: int) -> str:
    """The IRCv3 `time` tag of a stored time, with its `@` and space."""
    seconds, micros = divmod(stamp_us, 1_000_000)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"@time={when}.{micros // 1000:03d}Z "


def as_action(sender: str, body: str) -> str | None:
    """The text of a `/me` (stored as "* alice waves"), if the message is one."""
    prefix = f"* {sender} "
    return body[len(prefix) :] if body.startswith(prefix) else None


def relay_line(server_name: str, kind: Kind, sender: str, target: str, body: str) -> str:
    """A message people wrote (public, private, announcement) as one IRC line."""
    if kind is Kind.ANNOUNCE:
        return reply(server_name, "NOTICE", target, f"*** Announcement from {sender}: {body}")
    action = as_action(sender, body)
    if action is not None:
        body = f"\x01ACTION {action}\x01"
    return reply(source_of(sender), "PRIVMSG", target, body)


def _without(joined: bytes, starts: list[int], indexes: list[int]) -> bytes:
    """`joined` (lines, joined) less the lines at `indexes` (in order); line i is
    `joined[starts[i] : starts[i + 1]]`. One slice each side for the usual single line."""
    kept = []
    start = 0
    for index in indexes:
        kept.append(joined[start : starts[index]])
        start = starts[index + 1]
    kept.append(joined[start:])
    return b"".join(kept)


class IrcFrontEnd:
    """Serves IRC connections, and renders what the hub hands out for them."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.server_name = service.settings.irc_server_name or socket.gethostname()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    # --- the listener's side ------------------------------------------------------

    async def serve(self, conn: Connection) -> None:
        session = IrcSession(self, conn)
        await session.run(commands.dispatch, registration.log_in, registration.welcome)

    @staticmethod
    def new_framer() -> LineFramer:
        return IrcFramer()

    @staticmethod
    def error_line(text: str) -> str:
        return f"ERROR :Closing link: {HOST} ({text})"

    def shutdown_line(self) -> str:
        return reply(self.server_name, "NOTICE", "*", "*** The server is shutting down. Goodbye.")

    # --- the hub's side -------------------------------------------------------------

    def deliver(
        self, message: NewMessage, audience: Iterable[Member], origin: Member | None
    ) -> None:
        sessions = cast(Iterable[IrcSession], audience)
        sender = message.sender
        match message.kind:
            case Kind.PUBLIC | Kind.ANNOUNCE:
                target = message.room or GENERAL_ROOM
                line = relay_line(self.server_name, message.kind, sender, target, message.body)
                self._send(message, line, sessions, origin)
            case Kind.PRIVATE:
                assert message.recipient is not None
                line = relay_line(
                    self.server_name, Kind.PRIVATE, sender, message.recipient, message.body
                )
                self._send(message, line, sessions, origin)
            case Kind.TOPIC:
                line = reply(source_of(sender), "TOPIC", message.room or "", message.body)
                self._send(message, line, sessions, origin=None)  # the setter's confirmation too
            case Kind.JOIN | Kind.LEAVE:
                self._deliver_presence(message, sessions, origin)

    def deliver_said(
        self,
        messages: Sequence[NewMessage],
        said_by: Mapping[Member, list[int]],
        audience: Iterable[Member],
    ) -> None:
        """Several messages said in one channel: each member gets them in one write,
        with time tags if it asked for them; a sender gets its own back only with
        echo-message."""
        target = messages[0].room or GENERAL_ROOM
        plain = [
            (relay_line(self.server_name, m.kind, m.sender, target, m.body) + "\r\n").encode()
            for m in messages
        ]
        tagged: list[bytes] = []  # made when first needed
        joined: dict[bool, tuple[bytes, list[int]]] = {}
        for session in cast(Iterable[IrcSession], audience):
            if session.server_time and not tagged:
                tagged = [
                    time_tag(m.sent_at).encode() + line
                    for m, line in zip(messages, plain, strict=True)
                ]
            kept = joined.get(session.server_time)
            if kept is None:
                lines = tagged if session.server_time else plain
                kept = joined[session.server_time] = (
                    b"".join(lines),
                    list(accumulate(map(len, lines), initial=0)),
                )
            data, starts = kept
            mine = said_by.get(session)
            if mine is not None and not session.echo_message:
                data = _without(data, starts, mine)
            session.conn.send_bytes(data)

    def _send(
        self,
        message: NewMessage,
        line: str,
        sessions: Iterable[IrcSession],
        origin: Member | None,
    ) -> None:
        """One line to many sessions: encoded once, and once with its time tag if wanted."""
        plain = (line + "\r\n").encode()
        tagged = b""
        for session in sessions:
            if session is origin and not session.echo_message:
                continue
            if session.server_time:
                if not tagged:
                    tagged = time_tag(message.sent_at).encode() + plain
                session.conn.send_bytes(tagged)
            else:
                session.conn.send_bytes(plain)

    def _deliver_presence(
        self, message: NewMessage, sessions: Iterable[IrcSession], origin: Member | None
    ) -> None:
        """Joins and leaves. In #general they are logins and logouts: a login is a JOIN
        of each of the account's rooms, a logout one QUIT (every IRC client shares
        #general with everyone)."""
        sender = message.sender
        others = [s for s in sessions if s is not origin and s.name != sender]
        room = message.room or GENERAL_ROOM
        source = source_of(sender)
        if message.kind is Kind.LEAVE:
            if room == GENERAL_ROOM:
                self._send(message, reply(source, "QUIT", message.body or "left"), others, None)
            else:
                # The account's other sessions leave the channel with it.
                leaving = [s for s in sessions if s is not origin]
                self._send(message, f":{source} PART {room}", leaving, None)
            return
        if room != GENERAL_ROOM:
            # A room joined elsewhere by one's own account: other sessions follow.
            mine = [s for s in sessions if s is not origin and s.name == sender]
            for session in mine:
                session.conn.send_lines(channels.join_lines(session, room))
            self._send(message, f":{source} JOIN {room}", others, None)
            return
        self._send(message, f":{source} JOIN {GENERAL_ROOM}", others, None)
        hub = self.service.hub
        online = hub.sessions_of(sender)
        for state in hub.rooms_of(online[0]) if online else ():
            if state.name != GENERAL_ROOM:
                group = cast(dict[IrcSession, None], state.online.get(self, {}))
                self._send(
                    message,
                    f":{source} JOIN {state.name}",
                    [s for s in group if s.name != sender],
                    None,
                )

    def acknowledge(self, message: NewMessage, origin: Member, delivered: bool) -> None:
        session = cast(IrcSession, origin)
        if message.kind is not Kind.PRIVATE:
            return  # room changes are confirmed by their handlers
        assert message.recipient is not None
        if session.echo_message:
            line = relay_line(
                self.server_name, Kind.PRIVATE, message.sender, message.recipient, message.body
            )
            self._send(message, line, [session], None)
        if not delivered:
            session.notice(
                f"*** {message.recipient} is not online; they will see it when they log in."
            )

    def disconnect(self, member: Member, by: str, reason: str) -> None:
        session = cast(IrcSession, member)
        why = f" ({reason})" if reason else ""
        session.leave_reason = f"was kicked by {by}{why}"
        session.close_link(f"Kicked by {by}{why}")
        session.conn.close()

    def not_saved(self, member: Member) -> None:
        cast(IrcSession, member).notice(
            "*** Your message could not be saved; please send it again."
        )

    # --- catching up ------------------------------------------------------------------

    def replayed(self, session: IrcSession, stored: LogEntry, target: str) -> str:
        """A message from the past as a line: with its `time` tag for clients that take
        one, else with the time written before the text."""
        line = relay_line(self.server_name, stored.kind, stored.sender, target, stored.body)
        if session.server_time:
            return time_tag(stored.sent_at) + line
        head, _, text = line.partition(" :")
        when = time.strftime("[%Y-%m-%d %H:%M] ", time.localtime(stored.sent_at / 1_000_000))
        action = "\x01ACTION "
        if text.startswith(action):  # the time goes inside the CTCP, which must stay whole
            return f"{head} :{action}{when}{text.removeprefix(action)}"
        return f"{head} :{when}{text}"
