"""One client's conversation, as one coroutine: the login dialogue, then chat.

    connect ─► Username:/Password: ─┬─► chat: lines and /commands ─► /quit or gone
                ▲     failed login  │
                └───────────────────┘ (closed after `login_attempts`)

A session handles one line at a time, in order: a message is answered with
`You said: ...` once it is committed, before the next line is read, so
every answer comes back in the order its line was sent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatd import commands, replies
from chatd.clock import now_us
from chatd.commands import EndSession
from chatd.limits import LoginRefusedError, TokenBucket
from chatd.storage.messages import Kind, NewMessage
from chatd.wire import LINE_TOO_LONG, FrameError, sanitise

if TYPE_CHECKING:
    from chatd.connection import Connection
    from chatd.server import ChatServer
    from chatd.storage.users import User

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client sent its last line or went away."""


class Session:
    """The state of one connected client."""

    def __init__(self, server: ChatServer, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.user: User | None = None
        self.leave_reason = "left"  # what the others are told when this session ends
        settings = server.settings
        self._rate = TokenBucket(settings.rate_per_second, settings.rate_burst)
        self._strikes = 0  # lines refused in a row for coming too fast

    @property
    def name(self) -> str:
        return self.user.username if self.user is not None else "?"

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    async def run(self) -> None:
        """Serve the client from its first line to its last."""
        try:
            self.user = await self._log_in()  # the server closes it if it takes too long
            if self.user is None or self.conn.gone:  # failed, or gone during the check
                return
            online = self.server.enter(self)
            self.conn.send(replies.welcome(self.name, online))
            await self._chat()
        except (ClientGone, EndSession):
            pass
        finally:
            if self.user is not None:
                if self.conn.close_reason:
                    self.leave_reason = f"was disconnected ({self.conn.close_reason})"
                self.server.leave(self)
            self.conn.close()

    async def _log_in(self) -> User | None:
        attempts = self.server.settings.login_attempts
        self.conn.send_lines([replies.GREETING, replies.ASK_USERNAME])
        for attempt in range(1, attempts + 1):
            username = (await self.read_line()).strip()
            password = await self.ask(replies.ASK_PASSWORD, raw=True)
            try:
                user = await self.server.authenticate(username, password, self.conn)
            except LoginRefusedError:
                self.conn.send(replies.LOGIN_REFUSED)
                return None
            if user is not None:
                return user
            if attempt < attempts:
                self.conn.send_lines([replies.LOGIN_FAILED, replies.ASK_USERNAME])
        self.conn.send(replies.LOGIN_FAILED_LAST)
        return None

    async def _chat(self) -> None:
        while True:
            line = await self.read_line()
            if not line.strip() or not self._within_rate():
                continue
            if line.startswith("/") and not line.startswith("//"):
                await commands.dispatch(self, line)
            else:
                # "//text" sends "/text": the way to say something starting with a slash
                await self.say(line.removeprefix("/") if line.startswith("//") else line)

    def _within_rate(self) -> bool:
        """Take a line if the client is within its rate; refuse it, or end a flood, if not."""
        if self._rate.take():
            self._strikes = 0
            return True
        settings = self.server.settings
        self._strikes += 1
        if self._strikes >= settings.rate_strikes:
            self.conn.send(replies.error("too many lines too fast; disconnecting."))
            self.leave_reason = "was disconnected for flooding"
            log.warning("%s: %s disconnected for flooding", self.conn.peer, self.name)
            raise EndSession
        self.conn.send(
            replies.error(
                f"slow down: at most {settings.rate_per_second:g} lines a second"
                " (that line was not sent)."
            )
        )
        return False

    async def say(self, text: str) -> None:
        """Send a message to everyone; returns once it is stored and delivered."""
        assert self.user is not None
        message = NewMessage(now_us(), Kind.PUBLIC, self.user.id, self.user.username, text)
        await self.server.post(message, origin=self)

    async def read_line(self, *, raw: bool = False) -> str:
        """The next line from the client, sanitised unless `raw` (passwords are kept exact)."""
        while True:
            frame = await self.conn.next_frame()
            if frame is None:
                raise ClientGone
            if isinstance(frame, FrameError):
                self.conn.send(replies.error(self._describe(frame)))
                continue
            return frame if raw else sanitise(frame)

    async def ask(self, prompt: str, *, raw: bool = False) -> str:
        self.conn.send(prompt)
        return await self.read_line(raw=raw)

    def _describe(self, frame: FrameError) -> str:
        if frame is LINE_TOO_LONG:
            limit = self.server.settings.max_line_bytes
            return f"line too long (at most {limit} bytes); it was ignored."
        return "that line was not valid UTF-8; it was ignored."
