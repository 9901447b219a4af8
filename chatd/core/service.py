"""What a session of any front end can do: log in, say things, use rooms, catch up.

`ChatService` owns the threads that do blocking work (the group-commit
writer, bcrypt workers, read workers) and the hub; on PostgreSQL also the
feed of every node's commits (two tasks on the event loop, core/delivery.py)
and this node's presence among the others (a thread, core/presence.py). It
speaks in accounts, rooms and messages; turning them into lines (or IRC) is
a front end's job. Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from chatd import accounts
from chatd.accounts import LoginResult, PasswordHasher
from chatd.clock import now_us
from chatd.core.delivery import FeedDelivery, LocalDelivery
from chatd.core.hub import Hub, Member, RoomState
from chatd.core.presence import NodePresence
from chatd.limits import LoginRefusedError, LoginThrottle
from chatd.rooms import GENERAL_ROOM_ID
from chatd.settings import Settings
from chatd.storage import ERRORS, Connection, is_url, messages, nodes, rooms, users
from chatd.storage.engines.base import DatabaseError
from chatd.storage.messages import Kind, LogEntry, NewMessage
from chatd.storage.rooms import Room
from chatd.storage.users import User
from chatd.workers import WorkerPool, no_connection
from chatd.writer import ActionJob, GroupCommitWriter, MessageJob, WriteJob

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads for /history, catching up and lookups; they wait on SQLite, not the CPU.
_READ_WORKERS = 2


@dataclass(frozen=True)
class Replay:
    """Messages shown at once: what came while away, or a room's latest on joining it."""

    room: str | None  # None: private messages
    total: int  # how many there are, even when fewer are shown
    lines: list[str]  # the latest of them, as history lines, oldest first
    first_time: bool  # joining the room (its latest), not coming back to it (what is new)
    # The same messages as stored, for front ends that render them their own way
    # (asked for with `structured=True`; then `lines` is empty).
    messages: tuple[LogEntry, ...] = ()


@dataclass(frozen=True)
class RoomListing:
    """One room in `/rooms`."""

    name: str
    members: int
    online: int
    topic: str
    mine: bool


class ChatService:
    """The chat's operations for sessions; start() on the event loop, stop() at the end."""

    def __init__(self, settings: Settings, not_saved: Callable[[Member], None]) -> None:
        self.settings = settings
        self.hasher = PasswordHasher(settings.bcrypt_rounds)
        self.hub = Hub(settings.quiet_joins_above)
        self._not_saved = not_saved
        self._throttle = LoginThrottle(
            per_account=settings.throttle_account_after,
            per_address=settings.throttle_address_after,
            max_delay_s=settings.throttle_max_delay_s,
            forget_s=settings.throttle_forget_s,
        )
        # Where each account's sessions had got to when its last one left,
        # exact for this process; the database has it for the next one.
        self._seen_at_logout: dict[int, int] = {}
        self._to_writer: list[WriteJob] = []  # this turn's writes (see _submit)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._feed: FeedDelivery | None = None
        self._presence: NodePresence | None = None
        if is_url(self.settings.db):  # PostgreSQL: other nodes may share the database
            self._presence = NodePresence(
                loop, self.hub, self.settings.db, on_kick=self._kicked_elsewhere
            )
            self._feed = FeedDelivery(
                loop,
                self.hub,
                self._not_saved,
                self.settings.db,
                on_presence=self._presence.wake,
                on_kick=self._presence.wake,  # it reads the kicks not applied yet
            )
            self._writer = GroupCommitWriter(
                self.settings.db,
                self._feed.committed,
                batch_max=self.settings.commit_batch,
                before_commit=self._feed.prepared,
            )
        else:
            delivery = LocalDelivery(loop, self.hub, self._not_saved)
            self._writer = GroupCommitWriter(
                self.settings.db, delivery.committed, batch_max=self.settings.commit_batch
            )
        self._writer.start()
        if self._presence is not None:  # its sessions are written by the writer
            self._presence.start(self._submit)
        self._reads = WorkerPool(_READ_WORKERS, "chatd-read", self.settings.db)
        self._hashing = WorkerPool(self.settings.hash_workers, "chatd-bcrypt", self.settings.db)
        self._reads.start(loop)
        self._hashing.start(loop)
        # Make the decoy hash for unknown users now, so the first one costs no more.
        self._hashing.run(no_connection(lambda: self.hasher.decoy_hash))
        self.hub.last_delivered_id = self._writer.last_message_id
        if self._feed is not None:  # delivery starts after what is committed by now
            self.hub.last_delivered_id = self._feed.start()

    async def stop(self) -> None:
        """Commit what is pending, deliver it, then end every thread."""
        self._hand_over()
        await self._loop.run_in_executor(None, self._writer.stop)
        if self._feed is not None:
            await self._feed.stop()  # delivers what the writer committed last
        stops = [self._reads.stop, self._hashing.stop]
        if self._presence is not None:
            stops.insert(0, self._presence.stop)
        for stop in stops:
            await self._loop.run_in_executor(None, stop)

    async def flush(self) -> None:
        """Return once every write submitted so far is committed."""
        await self._write(lambda conn: None)

    # --- logins and passwords ---------------------------------------------------

    async def authenticate(
        self, username: str, password: str, address: str, peer: str
    ) -> User | None:
        """Check a login on a bcrypt worker; None for every kind of failure.

        Raises LoginRefusedError, without checking, while this address or name
        has failed too often lately; before that, each attempt may be delayed.
        """
        wait = self._throttle.begin(address, username)
        if wait is None:
            log.warning("%s: login as %r refused: too many failures", peer, username[:40])
            raise LoginRefusedError
        if wait:
            await asyncio.sleep(wait)
        result = await self._hashing.run(self._check_login, username, password)
        if result is None:
            self._throttle.failed(address)
            log.info("%s: failed login as %r", peer, username[:40])
            return None
        self._throttle.succeeded(username)
        self._submit(ActionJob(partial(_record_login, result=result)))
        log.info("%s: %s logged in", peer, result.user.username)
        return result.user

    def _check_login(self, conn: Connection, username: str, password: str) -> LoginResult | None:
        return accounts.authenticate(conn, self.hasher, username, password)

    async def change_password(self, user: User, current: str, new: str) -> bool:
        """Change a user's password if `current` is right."""
        if await self._hashing.run(self._check_login, user.username, current) is None:
            return False
        new_hash = await self._hashing.run(no_connection(self.hasher.hash), new)
        await self._write(
            partial(users.set_password, username=user.username, password_hash=new_hash)
        )
        log.info("%s changed their password", user.username)
        return True

    # --- coming and going ---------------------------------------------------------

    async def enter(self, member: Member, user: User, *, structured: bool = False) -> list[Replay]:
        """Put a logged-in session online; returns what it missed while away, if this
        is the account's only session (nothing when it had another one online), as
        lines or, if `structured`, as stored messages."""
        rooms_of_user = await self._read(rooms.rooms_of, user.id)
        first = self.hub.enter(member, rooms_of_user)
        if not first:
            return []
        upto = self.hub.last_delivered_id  # later messages reach the session live
        if self._presence is not None:  # online here, for the other nodes: before the login
            self._presence.logged_in(user.id, member.name)
        self._record(Kind.JOIN, member)
        seen = self._seen_at_logout.pop(user.id, user.seen_upto)
        limit = self.settings.replay_max
        if limit == 0:
            return []
        return await self._read(_catch_up, user.id, rooms_of_user, seen, upto, limit, structured)

    def leave(self, member: Member, reason: str) -> None:
        """A logged-in session has ended."""
        if self.hub.leave(member):
            if self._presence is not None:
                self._presence.logged_out(member.user_id)
            self._record(Kind.LEAVE, member, reason)
            seen = self.hub.last_delivered_id
            self._seen_at_logout[member.user_id] = seen
            self._submit(ActionJob(partial(_set_seen, user_id=member.user_id, seen=seen)))

    def _record(self, kind: Kind, member: Member, body: str = "") -> None:
        """Store a login or logout; its notice goes out once it is committed."""
        message = NewMessage(now_us(), kind, member.user_id, member.name, body)
        self._submit(MessageJob(message, (None, None)))

    async def find_user(self, username: str) -> User | None:
        """An account by name, from the database."""
        if not accounts.is_valid_username(username):
            return None
        return await self._read(users.find, username)

    async def kick(self, username: str, *, by: str, reason: str) -> int:
        """Disconnect every session of a user; returns how many there were (a user
        online on other nodes counts one more). If the user was on no session here and
        the kick for the other nodes cannot be saved (the database is away), the
        storage error is raised; with sessions here kicked, it is only logged."""
        kicked = self.hub.kick(username, by, reason)
        try:
            if self._presence is not None and await self._online_elsewhere(username):
                # Online on another node: a kick committed for every node to read, and
                # applied by the one(s) where the user is (see NodePresence).
                node_id = self._presence.node_id
                await self._write(
                    partial(nodes.kick, node_id=node_id, username=username, by=by, reason=reason)
                )
                kicked += 1
        except ERRORS as exc:
            if not kicked:
                raise
            log.error("the kick of %s could not reach the other nodes: %s", username, exc)
        finally:
            if kicked:
                log.info("%s kicked %s%s", by, username, f" ({reason})" if reason else "")
        return kicked

    def set_away(self, member: Member, away: str) -> None:
        """The account's away message on this node ("": back), for the other nodes."""
        if self._presence is not None:
            self._presence.set_away(member.user_id, away)

    async def _online_elsewhere(self, username: str) -> bool:
        """Whether the user is online on another node: as this node last read it, or
        else as the database has it now (a login there since the last beat)."""
        if self.hub.online_elsewhere(username):
            return True
        assert self._presence is not None
        return await self._read(
            nodes.online_elsewhere, self._presence.node_id, username, self._presence.dead_after_s
        )

    def _kicked_elsewhere(self, kick: nodes.Kick) -> None:
        """A kick from another node: disconnect the user's sessions here."""
        if self.hub.kick(kick.username, kick.by, kick.reason):
            why = f" ({kick.reason})" if kick.reason else ""
            log.info("%s kicked %s%s (from another node)", kick.by, kick.username, why)

    # --- messages -----------------------------------------------------------------

    async def post(self, message: NewMessage, origin: Member | None = None) -> bool:
        """Store a message, then deliver it; True once both are done."""
        return await self.post_soon(message, origin)

    def post_soon(self, message: NewMessage, origin: Member | None = None) -> asyncio.Future[bool]:
        """Queue a message to be stored, then delivered; the future is True once both
        are done (False if it could not be stored). Messages are stored and
        delivered in the order they are queued."""
        done: asyncio.Future[bool] = self._loop.create_future()
        self._submit(MessageJob(message, (origin, done)))
        return done

    async def history_lines(self, user: User, limit: int) -> list[str]:
        """The user's last `limit` history entries as lines, in local time."""
        return await self._read(messages.history_lines, user.id, limit)

    async def room_history(self, room_id: int, limit: int) -> list[str]:
        """A room's last `limit` messages as lines, in local time."""
        _, lines = await self._read(messages.room_lines, room_id, limit)
        return lines

    # --- rooms --------------------------------------------------------------------

    async def find_room(self, name: str) -> Room | None:
        """A room by its canonical name, whether or not anyone online is in it."""
        state = self.hub.room(name)
        if state is not None:
            return Room(state.id, state.name, state.topic)
        return await self._read(rooms.find, name)

    async def join(
        self, member: Member, name: str, *, structured: bool = False
    ) -> tuple[RoomState, Replay | None]:
        """Make the account a member of a room (created if need be); returns the room and,
        if the account was not in it yet, its latest messages (as lines or, if
        `structured`, as stored messages)."""
        state = self.hub.room(name)
        if state is not None and self.hub.is_member(member, state.id):
            return state, None
        room = await self._write(partial(rooms.find_or_create, name=name))
        if not await self.post(self._room_event(Kind.JOIN, member, room), member):
            raise DatabaseError(f"the join of {room.name} was not saved")
        state = self.hub.room_by_id(room.id)
        assert state is not None  # the join was delivered: the hub knows the room
        limit = self.settings.replay_max
        if limit == 0:
            return state, None
        if structured:
            total, stored = await self._read(messages.room_messages, room.id, limit)
            return state, Replay(room.name, total, [], True, tuple(stored))
        total, lines = await self._read(messages.room_lines, room.id, limit)
        return state, Replay(room.name, total, lines, first_time=True)

    async def leave_room(self, member: Member, state: RoomState) -> None:
        """End the account's membership of a room (not #general)."""
        assert state.id != GENERAL_ROOM_ID
        await self.post(self._room_event(Kind.LEAVE, member, state), member)

    async def set_topic(self, member: Member, state: RoomState, topic: str) -> None:
        await self.post(self._room_event(Kind.TOPIC, member, state, topic), member)

    async def listing(self, member: Member) -> list[RoomListing]:
        """Every room with its members and members online; the member's own marked."""
        every, counts = await self._read(_rooms_and_counts)
        mine = {state.id for state in self.hub.rooms_of(member)}
        return [
            RoomListing(
                room.name,
                counts.get(room.id, 0),
                self.hub.online_in(room.id),
                room.topic,
                room.id in mine,
            )
            for room in every
        ]

    @staticmethod
    def _room_event(
        kind: Kind, member: Member, room: Room | RoomState, body: str = ""
    ) -> NewMessage:
        return NewMessage(
            now_us(), kind, member.user_id, member.name, body, room_id=room.id, room=room.name
        )

    # --- database helpers -----------------------------------------------------

    def _submit(self, job: WriteJob) -> None:
        """Queue a write for the writer. The writes of one turn of the event loop go
        over together at the start of the next: one wake-up of the writer thread for
        them all, not one each (on a busy server that was a thread switch a message)."""
        if not self._to_writer:
            self._loop.call_soon(self._hand_over)
        self._to_writer.append(job)

    def _hand_over(self) -> None:
        if self._to_writer:
            jobs, self._to_writer = self._to_writer, []
            self._writer.submit_all(jobs)

    async def _read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a read query on a read worker, with that thread's own connection."""
        return await self._reads.run(query, *args)

    async def _write(self, action: Callable[[Connection], T]) -> T:
        """Run a write on the writer thread, in its next batch."""
        done: asyncio.Future[T] = self._loop.create_future()
        self._submit(ActionJob(action, done))
        return await done

    async def write(self, action: Callable[[Connection], T]) -> T:
        """Run a write of the server's own (retention) in the writer's next batch."""
        return await self._write(action)


def _record_login(conn: Connection, *, result: LoginResult) -> None:
    users.record_login(conn, result.user.id, now_us(), result.upgraded_hash)


def _set_seen(conn: Connection, *, user_id: int, seen: int) -> None:
    users.set_seen_upto(conn, user_id, seen)


def _rooms_and_counts(conn: Connection) -> tuple[list[Room], dict[int, int]]:
    return rooms.every_room(conn), rooms.member_counts(conn)


def _catch_up(  # noqa: PLR0917  (run on a worker: arguments go by position)
    conn: Connection,
    user_id: int,
    rooms_of_user: list[Room],
    seen: int | None,
    upto: int,
    limit: int,
    structured: bool = False,
) -> list[Replay]:
    """What was said in the user's rooms, and privately to them, after message `seen`
    and up to message `upto` (after which the session receives messages live).

    `seen` is None at an account's first login: that counts as joining its rooms,
    so it is shown their latest messages.
    """
    if structured:
        return _catch_up_messages(conn, user_id, rooms_of_user, seen, upto, limit)
    replays = []
    for room in rooms_of_user:
        total, lines = messages.room_lines(conn, room.id, limit, after=seen, upto=upto)
        if total:
            replays.append(Replay(room.name, total, lines, first_time=seen is None))
    total, lines = messages.private_lines(conn, user_id, seen or 0, limit, upto=upto)
    if total:
        replays.append(Replay(None, total, lines, first_time=False))
    return replays


def _catch_up_messages(  # noqa: PLR0917  (run on a worker: arguments go by position)
    conn: Connection,
    user_id: int,
    rooms_of_user: list[Room],
    seen: int | None,
    upto: int,
    limit: int,
) -> list[Replay]:
    """`_catch_up`, with the messages as stored instead of as lines."""
    replays = []
    for room in rooms_of_user:
        total, stored = messages.room_messages(conn, room.id, limit, after=seen, upto=upto)
        if total:
            replays.append(Replay(room.name, total, [], seen is None, tuple(stored)))
    total, stored = messages.private_messages(conn, user_id, seen or 0, limit, upto=upto)
    if total:
        replays.append(Replay(None, total, [], False, tuple(stored)))
    return replays


_NOTHING_IN_FLIGHT: deque[asyncio.Future[bool] | Callable[[], None]] = deque(maxlen=0)


class InFlight:
    """One session's messages on their way to the database and back, oldest first,
    with the answers that must wait for them.

    A session need not wait for a message to be committed before it reads its
    next line: what answers a message (`You said:`, an IRC echo, "could not
    be saved") comes from its delivery, and the writer stores a session's
    messages in the order they were queued. An answer that comes any other
    way (a command's, an error, a PONG) waits for the messages sent before it
    (`settled`, `after`), so every answer still comes back in the order its
    line was sent. While one client's messages are committed, its next ones
    are read: batches grow with the clients' own pipelining, not only with
    their number. Past LIMIT the session waits for the oldest, reading nothing
    meanwhile, which holds the client back.
    """

    LIMIT = 32

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        # Messages' futures and answers waiting for them, in the order of the lines.
        # An empty deque costs 600 bytes: a session that has never said anything
        # (most of 10,000 idle ones) shares this one, which stays empty.
        self._queue: deque[asyncio.Future[bool] | Callable[[], None]] = _NOTHING_IN_FLIGHT

    async def add(self, done: asyncio.Future[bool]) -> None:
        """Track a queued message (ChatService.post_soon); waits only past LIMIT."""
        if self._queue is _NOTHING_IN_FLIGHT:
            self._queue = deque()
        self._queue.append(done)
        done.add_done_callback(self._advance)
        while len(self._queue) > self.LIMIT:
            await self._wait_for_head()

    async def settled(self) -> None:
        """Return once every message tracked so far is stored and delivered (or failed),
        and every answer waiting for them has been given."""
        while self._queue:
            await self._wait_for_head()

    def after(self, answer: Callable[[], None]) -> None:
        """Give `answer` once every message tracked so far is settled: now, if they are."""
        if self._queue:
            self._queue.append(answer)
        else:
            answer()

    async def _wait_for_head(self) -> None:
        head = self._queue[0]
        if isinstance(head, asyncio.Future) and not head.done():
            await head
        self._advance()

    def _advance(self, _: object = None) -> None:
        """Drop the settled messages at the head, giving the answers behind them."""
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, asyncio.Future):
                if not head.done():
                    return
                queue.popleft()
            else:
                queue.popleft()
                head()
