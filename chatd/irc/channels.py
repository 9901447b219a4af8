"""Channels are rooms: JOIN, PART, NAMES, TOPIC, LIST and MODE.

Membership is the account's, shared with the line protocol's /join and
/leave: each goes through the same `ChatService` calls and becomes the same
committed JOIN or LEAVE. Nobody is a channel operator (chatd rooms have
none), so modes can be looked at but not changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatd.irc import numerics as n
from chatd.irc.session import IrcSession, reply
from chatd.rooms import GENERAL_ROOM, GENERAL_ROOM_ID, RoomNameError, room_name

if TYPE_CHECKING:
    from chatd.core.hub import RoomState
    from chatd.core.service import Replay

_NAMES_PER_LINE = 400  # bytes of names in one 353, well inside 512 with its prefix


def channel_name(session: IrcSession, text: str) -> str | None:
    """The room a channel parameter names (`#Dev` is `#dev`), or None after an error."""
    if not text.startswith("#"):
        session.numeric(n.ERR_NOSUCHCHANNEL, text[:40], "No such channel")
        return None
    try:
        return room_name(text)
    except RoomNameError:
        session.numeric(
            n.ERR_BADCHANNAME, text[:40], "Illegal channel name: # and 1-32 of a-z, 0-9, _ and -"
        )
        return None


def my_room(session: IrcSession, name: str) -> RoomState | None:
    """One of the account's rooms, or None after 442."""
    hub = session.service.hub
    state = hub.room(name)
    if state is None or not hub.is_member(session, state.id):
        session.numeric(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return None
    return state


def join_lines(session: IrcSession, room: str) -> list[str]:
    """What a client is sent on joining a channel: JOIN, the topic, the names."""
    state = session.service.hub.room(room)
    lines = [f":{session.source} JOIN {room}"]
    if state is not None and state.topic:
        lines.append(session.numeric_line(n.RPL_TOPIC, room, state.topic))
    return lines + names_lines(session, room, state)


def names_lines(session: IrcSession, room: str, state: RoomState | None) -> list[str]:
    """353s listing who is online in a room (split to fit the line length), then 366."""
    lines = []
    chunk: list[str] = []
    size = 0
    for name in state.online_names() if state is not None else ():
        if chunk and size + len(name) + 1 > _NAMES_PER_LINE:
            lines.append(session.numeric_line(n.RPL_NAMREPLY, "=", room, " ".join(chunk)))
            chunk, size = [], 0
        chunk.append(name)
        size += len(name) + 1
    if chunk:
        lines.append(session.numeric_line(n.RPL_NAMREPLY, "=", room, " ".join(chunk)))
    lines.append(session.numeric_line(n.RPL_ENDOFNAMES, room, "End of /NAMES list."))
    return lines


def catch_up_lines(session: IrcSession, replays: list[Replay]) -> list[str]:
    """Messages shown at once (catching up, or a room's latest on joining it), as PRIVMSGs
    under a NOTICE that counts them."""
    lines = []
    for replay in replays:
        target = replay.room or session.name
        s = "s" * (replay.total != 1)
        if replay.room is None:
            head = f"{replay.total} private message{s} while you were away"
        elif replay.first_time:
            head = f"{replay.total} message{s} in {replay.room}"
        else:
            head = f"{replay.total} new message{s} in {replay.room} while you were away"
        if len(replay.messages) < replay.total:
            head += f"; the latest {len(replay.messages)}"
        lines.append(reply(session.server_name, "NOTICE", target, f"*** {head}:"))
        lines += [session.frontend.replayed(session, m, target) for m in replay.messages]
    return lines


async def join(session: IrcSession, params: list[str]) -> None:
    if params[0] == "0":  # "leave every channel": every room but #general
        for room in session.service.hub.rooms_of(session):
            if room.id != GENERAL_ROOM_ID:
                await _leave(session, room)
        return
    hub = session.service.hub
    for text in params[0].split(","):
        name = channel_name(session, text)
        if name is None:
            continue
        state = hub.room(name)
        if state is not None and hub.is_member(session, state.id):
            continue  # already there: nothing to do, as on any IRC server
        # Messages said in the room right after the JOIN is committed must
        # reach the client after its JOIN: hold them back until it is sent.
        session.conn.hold_output()
        lines: list[str] = []
        try:
            joined, replay = await session.service.join(session, name, structured=True)
            if hub.is_member(session, joined.id):  # else it was not saved, and said so
                lines = join_lines(session, name)
                if replay is not None and replay.total:
                    lines += catch_up_lines(session, [replay])
        finally:
            session.conn.release_output(lines)


async def part(session: IrcSession, params: list[str]) -> None:
    for text in params[0].split(","):
        name = channel_name(session, text)
        state = None if name is None else my_room(session, name)
        if state is None:
            continue
        if state.id == GENERAL_ROOM_ID:
            session.conn.send(
                reply(
                    session.server_name,
                    "NOTICE",
                    GENERAL_ROOM,
                    "*** Everyone stays in #general; it cannot be left.",
                )
            )
            continue
        await _leave(session, state)


async def _leave(session: IrcSession, state: RoomState) -> None:
    """Leave a room; every IRC session of the account is told (the hub tells the others)."""
    hub = session.service.hub
    await session.service.leave_room(session, state)
    if hub.is_member(session, state.id):
        return  # not saved, and said so
    line = f":{session.source} PART {state.name}"
    for other in hub.sessions_of(session.name):
        if isinstance(other, IrcSession):
            other.conn.send(line)


async def names(session: IrcSession, params: list[str]) -> None:
    hub = session.service.hub
    wanted = params[0].split(",") if params else [r.name for r in hub.rooms_of(session)]
    for text in wanted:
        name = channel_name(session, text)
        if name is not None:
            session.conn.send_lines(names_lines(session, name, hub.room(name)))


async def topic(session: IrcSession, params: list[str]) -> None:
    name = channel_name(session, params[0])
    if name is None:
        return
    if len(params) == 1:
        room = await session.service.find_room(name)
        if room is None:
            session.numeric(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif room.topic:
            session.numeric(n.RPL_TOPIC, name, room.topic)
        else:
            session.numeric(n.RPL_NOTOPIC, name, "No topic is set")
        return
    state = my_room(session, name)
    if state is None:
        return
    limit = session.settings.max_topic_chars
    if len(params[1]) > limit:
        session.notice(f"*** A topic is at most {limit} characters; it was not set.")
        return
    # The TOPIC line comes back to the setter with everyone else's, once stored.
    await session.service.set_topic(session, state, params[1])


async def list_rooms(session: IrcSession, params: list[str]) -> None:
    listing = await session.service.listing(session)
    wanted = {name.lower() for name in params[0].split(",")} if params else None
    lines = [session.numeric_line(n.RPL_LISTSTART, "Channel", "Users  Name")]
    for room in listing:
        if wanted is None or room.name in wanted:
            lines.append(session.numeric_line(n.RPL_LIST, room.name, str(room.online), room.topic))
    lines.append(session.numeric_line(n.RPL_LISTEND, "End of /LIST"))
    session.conn.send_lines(lines)


# Lists a client may ask for with `MODE #room b` (bans, exceptions, invitations): all empty.
_LIST_ENDS = {
    "b": (n.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (n.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (n.RPL_ENDOFINVITELIST, "End of channel invite list"),
}


async def mode(session: IrcSession, params: list[str]) -> None:
    target = params[0]
    if target.startswith("#"):
        name = channel_name(session, target)
        if name is None:
            return
        if await session.service.find_room(name) is None:
            session.numeric(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif len(params) == 1:
            session.numeric(n.RPL_CHANNELMODEIS, name, "+nt")
        elif params[1].lstrip("+") in _LIST_ENDS:
            session.numeric(
                _LIST_ENDS[params[1].lstrip("+")][0], name, _LIST_ENDS[params[1].lstrip("+")][1]
            )
        else:
            session.numeric(
                n.ERR_CHANOPRIVSNEEDED, name, "You're not a channel operator (chatd has none)"
            )
        return
    if target.lower() != session.name.lower():
        session.numeric(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
    elif len(params) == 1:
        session.numeric(n.RPL_UMODEIS, "+i")
    elif params[1] not in ("+i", "i"):  # everyone is invisible already: +i is no change
        session.numeric(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
