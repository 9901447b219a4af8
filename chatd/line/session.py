"""One client's conversation, as one coroutine: the login dialogue, then chat.

    connect ─► Username:/Password: ─┬─► chat: lines and /commands ─► /quit or gone
                ▲     failed login  │
                └───────────────────┘ (closed after `login_attempts`)

A session handles its lines in order, and every answer comes back in the
order its line was sent. A message is answered with `You said: ...` once it
is committed; the next lines are read meanwhile, and a command waits for the
messages before it (`InFlight`, in core/service.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatd.core.hub import FrontEnd
from chatd.core.service import InFlight
from chatd.limits import LoginRefusedError, TokenBucket
from chatd.line import replies
from chatd.rooms import GENERAL_ROOM, GENERAL_ROOM_ID
from chatd.storage import ERRORS
from chatd.wire import LINE_TOO_LONG, FrameError, sanitise

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chatd.connection import Connection
    from chatd.core.service import ChatService, Replay
    from chatd.settings import Settings
    from chatd.storage.users import User

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client sent its last line or went away."""


class EndSession(Exception):
    """The session ends on purpose (/quit); its last words are already sent."""


class Session:
    """The state of one connected client; once logged in, a member of the hub."""

    def __init__(self, service: ChatService, frontend: FrontEnd, conn: Connection) -> None:
        self.service = service
        self.frontend = frontend
        self.conn = conn
        self.settings: Settings = service.settings
        self.user: User | None = None
        self.room_id = GENERAL_ROOM_ID  # the current room: where plain text goes
        self.room_name = GENERAL_ROOM
        self.leave_reason = "left"  # what the others are told when this session ends
        self._rate = TokenBucket(self.settings.rate_per_second, self.settings.rate_burst)
        self._strikes = 0  # lines refused in a row for coming too fast
        self.in_flight = InFlight()  # its messages not yet stored and delivered

    @property
    def name(self) -> str:
        return self.user.username if self.user is not None else "?"

    @property
    def user_id(self) -> int:
        assert self.user is not None
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    async def run(self, handle_line: Callable[[Session, str], Awaitable[None]]) -> None:
        """Serve the client from its first line to its last; once logged in, each line
        goes to `handle_line` (the commands)."""
        online = False
        try:
            self.user = await self._log_in()  # the server closes it if it takes too long
            if self.user is None or self.conn.gone:  # failed, or gone during the check
                return
            self.conn.logged_in()
            # Live messages wait behind the welcome and what was missed meanwhile.
            self.conn.hold_output()
            online = True
            replays = await self.service.enter(self, self.user)
            welcome = replies.welcome(self.name, self.service.hub.online_count())
            self.conn.release_output([welcome, *replay_lines(replays)])
            await self._chat(handle_line)
        except (ClientGone, EndSession):
            # Its last messages are answered before the connection closes.
            await self.in_flight.settled()
        except ERRORS as exc:  # logging in or being let in, with the database away
            log.error("%s: %s: %s", self.conn.peer, self.name, exc)
            self.conn.drop_held_output()
            self.conn.send(replies.LOGIN_UNAVAILABLE)
        finally:
            if online:
                if self.conn.close_reason:
                    self.leave_reason = f"was disconnected ({self.conn.close_reason})"
                self.service.leave(self, self.leave_reason)
            self.conn.close()

    async def _log_in(self) -> User | None:
        attempts = self.settings.login_attempts
        self.conn.send_lines([replies.GREETING, replies.ASK_USERNAME])
        for attempt in range(1, attempts + 1):
            username = (await self.read_line()).strip()
            password = await self.ask(replies.ASK_PASSWORD, raw=True)
            try:
                # Waiting for its turn at bcrypt is not the client being slow.
                with self.conn.checking_login():
                    user = await self.service.authenticate(
                        username, password, self.conn.address, self.conn.peer
                    )
            except LoginRefusedError:
                self.conn.send(replies.LOGIN_REFUSED)
                return None
            if user is not None:
                return user
            if attempt < attempts:
                self.conn.send_lines([replies.LOGIN_FAILED, replies.ASK_USERNAME])
        self.conn.send(replies.LOGIN_FAILED_LAST)
        return None

    async def _chat(self, handle_line: Callable[[Session, str], Awaitable[None]]) -> None:
        while True:
            line = await self.read_line()
            if line.strip() and await self._within_rate():
                try:
                    await handle_line(self, line)
                except ERRORS as exc:  # a command needed the database, which is away
                    log.error("%s: %s: %s", self.conn.peer, self.name, exc)
                    await self.in_flight.settled()  # after the earlier lines' answers
                    self.conn.send(replies.UNAVAILABLE)

    async def _within_rate(self) -> bool:
        """Take a line if the client is within its rate; refuse it, or end a flood, if not."""
        if self._rate.take():
            self._strikes = 0
            return True
        await self.in_flight.settled()  # the refusal comes after the earlier lines' answers
        self._strikes += 1
        if self._strikes >= self.settings.rate_strikes:
            self.conn.send(replies.error("too many lines too fast; disconnecting."))
            self.leave_reason = "was disconnected for flooding"
            log.warning("%s: %s disconnected for flooding", self.conn.peer, self.name)
            raise EndSession
        self.conn.send(
            replies.error(
                f"slow down: at most {self.settings.rate_per_second:g} lines a second"
                " (that line was not sent)."
            )
        )
        return False

    def switch_to(self, room_id: int, room_name: str) -> None:
        """Make a room the current one: plain text goes there."""
        self.room_id = room_id
        self.room_name = room_name
        self.conn.send(replies.now_talking_in(room_name))

    async def read_line(self, *, raw: bool = False) -> str:
        """The next line from the client, sanitised unless `raw` (passwords are kept exact)."""
        while True:
            frame = await self.conn.next_frame()
            if frame is None:
                raise ClientGone
            if isinstance(frame, FrameError):
                await self.in_flight.settled()
                self.conn.send(replies.error(self._describe(frame)))
                continue
            return frame if raw else sanitise(frame)

    async def ask(self, prompt: str, *, raw: bool = False) -> str:
        self.conn.send(prompt)
        return await self.read_line(raw=raw)

    def _describe(self, frame: FrameError) -> str:
        if frame is LINE_TOO_LONG:
            limit = self.settings.max_line_bytes
            return f"line too long (at most {limit} bytes); it was ignored."
        return "that line was not valid UTF-8; it was ignored."


def replay_lines(replays: list[Replay]) -> list[str]:
    """Messages shown at once, each block under a `*** ` line that counts them."""
    lines = []
    for replay in replays:
        header = replies.replay_header(
            replay.room, replay.total, len(replay.lines), first_time=replay.first_time
        )
        lines += [header, *replay.lines]
    return lines
