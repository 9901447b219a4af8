"""The line protocol as a front end of the hub: committed messages rendered as lines.

This is the hot path of the whole server: a message is encoded once for
everyone whose current room it was said in, and once more (lazily) with its
`[#room]` tag for members whose current room is another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, cast

from chatd.line import commands, replies
from chatd.line.session import Session
from chatd.rooms import GENERAL_ROOM
from chatd.storage.messages import Kind, NewMessage
from chatd.wire import LineFramer, encode_line

if TYPE_CHECKING:
    from chatd.connection import Connection
    from chatd.core.hub import Member
    from chatd.core.service import ChatService


class LineFrontEnd:
    """Serves line-protocol connections, and renders what the hub hands out for them."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    async def serve(self, conn: Connection) -> None:
        """Run one client's session from greeting to goodbye."""
        await Session(self.service, self, conn).run(commands.handle_line)

    def new_framer(self) -> LineFramer:
        return LineFramer(self.service.settings.max_line_bytes)

    @staticmethod
    def error_line(text: str) -> str:
        return replies.error(text)

    @staticmethod
    def shutdown_line() -> str:
        return replies.SHUTTING_DOWN

    def deliver(
        self, message: NewMessage, audience: Iterable[Member], origin: Member | None
    ) -> None:
        sessions = cast(Iterable[Session], audience)
        match message.kind:
            case Kind.PUBLIC:
                self._deliver_public(message, sessions, origin)
            case Kind.PRIVATE:
                line = encode_line(replies.private_from(message.sender, message.body))
                for session in sessions:
                    session.conn.send_bytes(line)
            case Kind.ANNOUNCE:
                line = encode_line(replies.announcement(message.sender, message.body))
                for session in sessions:
                    session.conn.send_bytes(line)
            case Kind.JOIN | Kind.LEAVE | Kind.TOPIC:
                self._deliver_notice(message, sessions)

    def _deliver_public(
        self, message: NewMessage, sessions: Iterable[Session], origin: Member | None
    ) -> None:
        room_id = message.room_id
        here = encode_line(replies.public(message.sender, message.body))
        elsewhere = b""  # the same with its [#room] tag, made when first needed
        for session in sessions:
            if session is origin:
                session.conn.send(replies.you_said(message.body))
            elif session.room_id == room_id:
                session.conn.send_bytes(here)
            else:
                if not elsewhere:
                    assert message.room is not None
                    elsewhere = encode_line(
                        replies.in_room(message.room, replies.public(message.sender, message.body))
                    )
                session.conn.send_bytes(elsewhere)

    def deliver_said(
        self,
        messages: Sequence[NewMessage],
        said_by: Mapping[Member, list[int]],
        audience: Iterable[Member],
    ) -> None:
        """Several messages said in one room: each member gets them in one write.

        The lines are encoded once and joined once; a member who said one of
        them gets the same bytes with `You said: ...` spliced in at its place.
        """
        room, room_id = messages[0].room, messages[0].room_id
        here = [encode_line(replies.public(m.sender, m.body)) for m in messages]
        here_all = b"".join(here)
        starts = list(accumulate(map(len, here), initial=0))  # where each line begins
        elsewhere_all = b""  # the same with [#room] tags, made when first needed
        for session in cast(Iterable[Session], audience):
            mine = said_by.get(session)
            if mine is not None:
                if len(mine) == 1 and session.room_id == room_id:  # the usual case
                    index = mine[0]
                    own = encode_line(replies.you_said(messages[index].body))
                    data = here_all[: starts[index]] + own + here_all[starts[index + 1] :]
                else:
                    data = self._with_own(messages, here, mine, session, room)
                session.conn.send_bytes(data)
            elif session.room_id == room_id:
                session.conn.send_bytes(here_all)
            else:
                if not elsewhere_all:
                    assert room is not None
                    elsewhere_all = b"".join(
                        encode_line(replies.in_room(room, replies.public(m.sender, m.body)))
                        for m in messages
                    )
                session.conn.send_bytes(elsewhere_all)

    @staticmethod
    def _with_own(
        messages: Sequence[NewMessage],
        here: list[bytes],
        mine: list[int],
        session: Session,
        room: str | None,
    ) -> bytes:
        """The run as one of its senders sees it: its own lines acknowledged."""
        lines = list(here)
        if session.room_id != messages[0].room_id:
            assert room is not None
            lines = [
                encode_line(replies.in_room(room, replies.public(m.sender, m.body)))
                for m in messages
            ]
        for index in mine:
            lines[index] = encode_line(replies.you_said(messages[index].body))
        return b"".join(lines)

    def _deliver_notice(self, message: NewMessage, sessions: Iterable[Session]) -> None:
        room = message.room or GENERAL_ROOM
        if message.kind is Kind.TOPIC:
            text = replies.topic_set(message.sender, room, message.body)
        elif message.kind is Kind.JOIN:
            text = replies.joined(message.sender, room)
        else:
            text = replies.left(message.sender, room, message.body)
        line = encode_line(text)
        for session in sessions:
            # Topics go to the one who set it too: that is their confirmation.
            if message.kind is Kind.TOPIC or session.name != message.sender:
                session.conn.send_bytes(line)

    def acknowledge(self, message: NewMessage, origin: Member, delivered: bool) -> None:
        if message.kind is not Kind.PRIVATE:
            return  # the session confirms room changes itself
        assert message.recipient is not None
        ack = replies.private_sent(message.recipient, message.body)
        if not delivered:
            ack += f"  ({message.recipient} is not online; they will see it in /history)"
        cast(Session, origin).conn.send(ack)

    def disconnect(self, member: Member, by: str, reason: str) -> None:
        session = cast(Session, member)
        why = f" ({reason})" if reason else ""
        session.leave_reason = f"was kicked by {by}{why}"
        session.conn.send(replies.notice(f"You were kicked by {by}{why}."))
        session.conn.stop_reading()
        session.conn.close()

    @staticmethod
    def not_saved(member: Member) -> None:
        cast(Session, member).conn.send(replies.NOT_SAVED)
