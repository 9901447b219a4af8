"""Who is online, which rooms their accounts belong to, and who gets each committed message.

The hub knows nothing of sockets or wire formats. A session of any front end
(the line protocol today, IRC next) is a `Member`; each front end is a
`FrontEnd` that renders a message for a group of its members at once, so
that a line is encoded once per message, not once per recipient.

Membership changes arrive the way messages do: a room's join, leave and
topic events are committed messages, and the hub applies them in commit
order (`deliver`), so everyone sees a room's membership change at the same
point in the stream of messages. Only the event loop touches a hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatd.rooms import GENERAL_ROOM, GENERAL_ROOM_ID
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.rooms import Room


class Member(Protocol):
    """A logged-in session, as the hub sees it."""

    @property
    def name(self) -> str: ...

    @property
    def user_id(self) -> int: ...

    @property
    def frontend(self) -> FrontEnd: ...


class FrontEnd(Protocol):
    """A wire protocol: renders what the hub hands out for its own members."""

    def deliver(
        self, message: NewMessage, audience: Iterable[Member], origin: Member | None
    ) -> None:
        """Send a committed message to `audience` (the origin, if it is among them, gets
        its acknowledgement instead)."""

    def deliver_said(
        self,
        messages: Sequence[NewMessage],
        said_by: Mapping[Member, list[int]],
        audience: Iterable[Member],
    ) -> None:
        """Send several committed messages said in one room, in order, to `audience`:
        each recipient's share can then go out as one write. `said_by` maps each
        sender online to the indexes of its messages, which it gets acknowledged."""

    def acknowledge(self, message: NewMessage, origin: Member, delivered: bool) -> None:
        """Tell the origin its message is stored, when it was not in the audience;
        `delivered` says whether anyone online received it."""

    def disconnect(self, member: Member, by: str, reason: str) -> None:
        """End a member's session: kicked by `by`, telling them why."""


@dataclass
class RoomState:
    """A room as the hub knows it: its name, topic, and its members' online sessions."""

    id: int
    name: str
    topic: str
    # Online sessions of member accounts, per front end: delivery loops over
    # each group once, with no per-recipient dispatch.
    online: dict[FrontEnd, dict[Member, None]]
    # Members online on other nodes sharing the database (see Hub.set_remote).
    remote: frozenset[str] = frozenset()

    def members(self) -> Iterable[Member]:
        for group in self.online.values():
            yield from group

    def online_names(self) -> list[str]:
        """Each online member once (on any node), sorted."""
        return sorted({m.name for m in self.members()} | self.remote, key=str.casefold)


class Hub:
    """The protocol-neutral core: presence, rooms and their members, and delivery."""

    def __init__(self, quiet_joins_above: int) -> None:
        self.quiet_joins_above = quiet_joins_above
        self.last_delivered_id = 0  # every message up to this id has been handed out
        self._by_name: dict[str, list[Member]] = {}  # lower-case name -> sessions
        self._rooms_of: dict[int, set[int]] = {}  # user id -> room ids, while online
        self._rooms: dict[int, RoomState] = {}
        self._room_ids: dict[str, int] = {}  # room name -> id
        self._general = self._room(Room(GENERAL_ROOM_ID, GENERAL_ROOM, ""))
        # Accounts online on other nodes (several nodes on PostgreSQL): lower-case
        # name -> name, and (for WHOIS) the ids of their rooms but #general. Always
        # empty on SQLite.
        self._remote: dict[str, str] = {}
        self._remote_away: dict[str, str] = {}  # lower-case name -> away message
        self._remote_online: list[tuple[int | None, str]] = []  # as set_remote had it
        self._remote_rooms: dict[str, set[int]] | None = {}  # made when first asked for

    # --- presence ---------------------------------------------------------------

    def enter(self, member: Member, rooms: Iterable[Room]) -> bool:
        """A session has logged in, its account belonging to `rooms` (as stored); returns
        True if it is the account's first session online."""
        sessions = self._by_name.setdefault(member.name.lower(), [])
        sessions.append(member)
        first = len(sessions) == 1
        if first:
            self._rooms_of[member.user_id] = {room.id for room in rooms}
            for room in rooms:
                self._room(room)
        for room_id in self._rooms_of[member.user_id]:
            self._rooms[room_id].online.setdefault(member.frontend, {})[member] = None
        return first

    def leave(self, member: Member) -> bool:
        """A logged-in session has ended; returns True if it was the account's last."""
        key = member.name.lower()
        sessions = self._by_name.get(key, [])
        if member not in sessions:
            return False
        sessions.remove(member)
        for room_id in self._rooms_of.get(member.user_id, ()):
            group = self._rooms[room_id].online.get(member.frontend)
            if group is not None:
                group.pop(member, None)
        if sessions:
            return False
        del self._by_name[key]
        del self._rooms_of[member.user_id]
        return True

    def online_count(self) -> int:
        """How many users (not sessions) are online, on every node."""
        if not self._remote:
            return len(self._by_name)
        return len(self._by_name.keys() | self._remote.keys())

    def online_names(self) -> list[str]:
        """Each online user once (on any node), sorted."""
        names = {key: s[0].name for key, s in self._by_name.items()}
        return sorted((self._remote | names).values(), key=str.casefold)

    def online_name(self, username: str) -> str | None:
        """The name of a user online on any node, as the account spells it."""
        sessions = self._by_name.get(username.lower())
        return sessions[0].name if sessions else self._remote.get(username.lower())

    def away_elsewhere(self, username: str) -> str:
        """The user's away message on another node ("" if not away there)."""
        return self._remote_away.get(username.lower(), "")

    def online_elsewhere(self, username: str) -> bool:
        """Whether the user is online on another node sharing the database."""
        return username.lower() in self._remote

    def set_remote(
        self,
        online: list[tuple[int | None, str]],
        rooms: Iterable[Room] = (),
        away: Mapping[str, str] | None = None,
    ) -> None:
        """Who is online on the other nodes: (None, name) for each account and
        (room id, name) for each of its rooms (from chatd/core/presence.py); `rooms`
        are those rooms, so that the hub knows the ones no local user is in; `away`,
        the away messages of those away (by name)."""
        for room in rooms:
            self._room(room)
        self._remote_away = {name.lower(): text for name, text in (away or {}).items()}
        self._remote = {name.lower(): name for room_id, name in online if room_id is None}
        self._remote_online, self._remote_rooms = online, None
        names: dict[int, set[str]] = {}
        for room_id, name in online:
            if room_id is not None:
                names.setdefault(room_id, set()).add(name)
        for room_id, state in self._rooms.items():
            if room_id == GENERAL_ROOM_ID:
                state.remote = frozenset(self._remote.values())
            else:
                state.remote = frozenset(names.get(room_id, ()))

    def sessions_of(self, username: str) -> list[Member]:
        return list(self._by_name.get(username.lower(), ()))

    def kick(self, username: str, by: str, reason: str) -> int:
        """Disconnect every session of a user; returns how many there were."""
        sessions = self.sessions_of(username)
        for member in sessions:
            member.frontend.disconnect(member, by, reason)
        return len(sessions)

    # --- rooms ----------------------------------------------------------------

    def rooms_of(self, member: Member) -> list[RoomState]:
        """The rooms of an online member's account, #general first, then by name."""
        return self._sorted_rooms(self._rooms_of.get(member.user_id, {GENERAL_ROOM_ID}))

    def rooms_of_user(self, username: str) -> list[RoomState]:
        """The rooms of a user online on any node (none if offline), #general first, then
        by name; for a user online elsewhere only, as of the last read of presence."""
        sessions = self._by_name.get(username.lower())
        if sessions:
            return self.rooms_of(sessions[0])
        key = username.lower()
        if key not in self._remote:
            return []
        if self._remote_rooms is None:  # once per read of presence, and only if asked
            self._remote_rooms = {}
            for room_id, name in self._remote_online:
                if room_id is not None:
                    self._remote_rooms.setdefault(name.lower(), set()).add(room_id)
        ids = self._remote_rooms.get(key, set()) & self._rooms.keys()
        return self._sorted_rooms({GENERAL_ROOM_ID, *ids})

    def _sorted_rooms(self, ids: Iterable[int]) -> list[RoomState]:
        return sorted(
            (self._rooms[i] for i in ids), key=lambda r: (r.id != GENERAL_ROOM_ID, r.name)
        )

    def is_member(self, member: Member, room_id: int) -> bool:
        return room_id in self._rooms_of.get(member.user_id, ())

    def room(self, name: str) -> RoomState | None:
        """A room someone online belongs to (or has belonged to since the start)."""
        room_id = self._room_ids.get(name)
        return None if room_id is None else self._rooms[room_id]

    def room_by_id(self, room_id: int) -> RoomState | None:
        return self._rooms.get(room_id)

    def online_in(self, room_id: int) -> int:
        """How many users (not sessions) of the room are online."""
        if room_id == GENERAL_ROOM_ID:
            return self.online_count()  # everyone's room
        state = self._rooms.get(room_id)
        if state is None:
            return 0
        if state.remote:
            return len(
                {m.name.lower() for m in state.members()} | {n.lower() for n in state.remote}
            )
        return len({m.user_id for m in state.members()})

    def _room(self, room: Room) -> RoomState:
        state = self._rooms.get(room.id)
        if state is None:
            state = RoomState(room.id, room.name, room.topic, {})
            self._rooms[room.id] = state
            self._room_ids[room.name] = room.id
        return state

    # --- delivery ---------------------------------------------------------------

    def deliver_batch(self, batch: Sequence[tuple[NewMessage, int, Member | None]]) -> None:
        """Hand a committed batch out in commit order: (message, id, origin) each.

        Messages said one after another in the same room go to each front end
        together (`FrontEnd.deliver_said`): under load a batch holds many, and
        each recipient then gets one write for all of them instead of one each.
        """
        start = 0
        while start < len(batch):
            message = batch[start][0]
            end = start + 1
            if message.kind is Kind.PUBLIC:
                while (
                    end < len(batch)
                    and batch[end][0].kind is Kind.PUBLIC
                    and batch[end][0].room_id == message.room_id
                ):
                    end += 1
            if end - start == 1:
                self.deliver(*batch[start])
            else:
                self._deliver_said(batch[start:end])
            start = end

    def _deliver_said(self, run: Sequence[tuple[NewMessage, int, Member | None]]) -> None:
        self.last_delivered_id = max(self.last_delivered_id, run[-1][1])
        first = run[0][0]
        room = self._general if first.room_id == GENERAL_ROOM_ID else self._room_of(first)
        messages = [message for message, _, _ in run]
        origins = [origin for _, _, origin in run]
        said_by: dict[Member, list[int]] = {}
        for index, origin in enumerate(origins):
            if origin is not None:
                said_by.setdefault(origin, []).append(index)
        for frontend, members in room.online.items():
            frontend.deliver_said(messages, said_by, members)
        for message, origin in zip(messages, origins, strict=True):
            if origin is not None and origin not in room.online.get(origin.frontend, ()):
                origin.frontend.acknowledge(message, origin, delivered=True)

    def deliver(self, message: NewMessage, message_id: int, origin: Member | None) -> None:
        """Hand a committed message to whoever should see it, in commit order."""
        self.last_delivered_id = max(self.last_delivered_id, message_id)
        room = self._general if message.room_id == GENERAL_ROOM_ID else None
        if message.room_id is not None and room is None:
            room = self._room_of(message)
            # A joiner hears from the room from its join on; a leaver's own sessions
            # hear of the leave (so each front end can close the room), then no more.
            if message.kind is not Kind.LEAVE:
                self._apply_room_event(message, room)
            self._deliver_kind(message, room, origin)
            if message.kind is Kind.LEAVE:
                self._apply_room_event(message, room)
            return
        self._deliver_kind(message, room, origin)

    def _deliver_kind(
        self, message: NewMessage, room: RoomState | None, origin: Member | None
    ) -> None:
        match message.kind:
            case Kind.PUBLIC | Kind.TOPIC:
                assert room is not None
                self._hand_out(message, room.online, origin)
            case Kind.ANNOUNCE:
                self._hand_out(message, self._general.online, origin)
            case Kind.PRIVATE:
                self._deliver_private(message, origin)
            case Kind.JOIN | Kind.LEAVE:
                assert room is not None
                if self._notices_wanted(room):
                    self._hand_out(message, room.online, origin)

    def _hand_out(
        self,
        message: NewMessage,
        online: dict[FrontEnd, dict[Member, None]],
        origin: Member | None,
    ) -> None:
        for frontend, members in online.items():
            frontend.deliver(message, members, origin)
        if origin is not None and origin not in online.get(origin.frontend, ()):
            origin.frontend.acknowledge(message, origin, delivered=True)

    def _deliver_private(self, message: NewMessage, origin: Member | None) -> None:
        assert message.recipient is not None
        online = self._by_name.get(message.recipient.lower(), [])
        by_frontend: dict[FrontEnd, list[Member]] = {}
        for member in online:
            if member is not origin:  # a message to oneself: the other sessions get it
                by_frontend.setdefault(member.frontend, []).append(member)
        for frontend, members in by_frontend.items():
            frontend.deliver(message, members, origin)
        if origin is not None:
            delivered = bool(online) or message.recipient.lower() in self._remote
            origin.frontend.acknowledge(message, origin, delivered=delivered)

    def _notices_wanted(self, room: RoomState) -> bool:
        """Joins and leaves are news only in rooms small enough (SPEC §4)."""
        return self.online_in(room.id) <= self.quiet_joins_above

    def _room_of(self, message: NewMessage) -> RoomState:
        assert message.room_id is not None and message.room is not None
        return self._room(Room(message.room_id, message.room, ""))

    def _apply_room_event(self, message: NewMessage, state: RoomState) -> None:
        """Keep a room and its online members in step with a committed message."""
        if message.kind is Kind.TOPIC:
            state.topic = message.body
        elif message.kind in (Kind.JOIN, Kind.LEAVE) and message.sender_id is not None:
            joined = message.kind is Kind.JOIN
            rooms = self._rooms_of.get(message.sender_id)
            if rooms is not None:
                (rooms.add if joined else rooms.discard)(state.id)
            for member in self._by_name.get(message.sender.lower(), ()):
                group = state.online.setdefault(member.frontend, {})
                if joined:
                    group[member] = None
                else:
                    group.pop(member, None)
