"""The client on a terminal: a prompt that stays put while messages arrive above it.

prompt_toolkit draws the input line; each line from the server is printed
above it with the local time and a colour for its kind, and the prompt is
redrawn intact. The prompt names the current room (`#general> `), Tab
completes commands and rooms, and arrow keys walk the input history. When
the server asks for a password (at login or for /passwd) the next input is
hidden.

Known limit: prompt_toolkit prints above the prompt with the terminal in
cooked mode for that instant, so a Ctrl-D pressed at that very moment is
taken by the terminal and has to be pressed again. Drawing the messages
inside a full-screen layout would avoid it, at the cost of the terminal's
own scrollback.
"""

from __future__ import annotations

import asyncio
import time

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.completion import ConditionalCompleter
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from chatd.client.completion import ChatCompleter
from chatd.client.display import LineKind, asks_for_secret, classify, split_room_tag
from chatd.client.link import LoginFailedError, ServerLink, log_in
from chatd.client.names import KnownNames
from chatd.client.session import ClientOptions, Exit, Pacer
from chatd.wire import sanitise

STYLE = Style.from_dict(
    {
        "time": "#888888",
        "own": "#5faf5f",
        "sender": "bold #00afd7",
        "room": "#5f87d7",
        "message": "",
        "private": "#d75fd7",
        "notice": "#d7af00",
        "error": "bold #ff5f5f",
        "info": "",
        "prompt": "bold",
    }
)


class ServerGoneError(Exception):
    """The connection ended while the user was typing."""


class TerminalChat:
    """One interactive session on a terminal."""

    def __init__(self, link: ServerLink, options: ClientOptions) -> None:
        self.link = link
        self.options = options
        self.pacer = Pacer(options.pace)
        self.hide_next_input = False
        self.quitting = False
        self._given_credentials_used = False
        self.names = KnownNames()
        hidden = Condition(lambda: self.hide_next_input)
        self.prompt = PromptSession[str](
            history=InMemoryHistory(),
            is_password=hidden,
            style=STYLE,
            completer=ConditionalCompleter(ChatCompleter(self.names), ~hidden),  # not in passwords
            complete_while_typing=False,  # only on Tab: no menu popping up over the chat
        )

    async def run(self) -> Exit:
        try:
            welcome = await log_in(self.link, self._ask_credentials, self.show)
        except LoginFailedError as exc:
            self.say_error(str(exc))
            return Exit.LOGIN_FAILED
        self.show(welcome)
        with patch_stdout():
            reader = asyncio.create_task(self._read_from_server())
            try:
                return await self._read_from_user(reader)
            finally:
                reader.cancel()

    async def _ask_credentials(self) -> tuple[str, str]:
        if self.options.user is not None and self.options.password is not None:
            if self._given_credentials_used:  # refused already: asking again changes nothing
                raise LoginFailedError("Login failed.")
            self._given_credentials_used = True
            return self.options.user, self.options.password
        username = self.options.user or await self.prompt.prompt_async("Username: ")
        self.hide_next_input = True
        try:
            password = await self.prompt.prompt_async("Password: ")
        finally:
            self.hide_next_input = False
        return username.strip(), password

    async def _read_from_user(self, reader: asyncio.Task[None]) -> Exit:
        while True:
            try:
                text = await self.prompt.prompt_async(self._chat_prompt)
            except EOFError:  # Ctrl-D
                return await self._quit(reader)
            except KeyboardInterrupt:  # Ctrl-C
                await self._quit(reader, wait=False)
                self.say_error("Interrupted.")
                return Exit.INTERRUPTED
            except ServerGoneError:
                self.say_error("Connection closed by the server.")
                return Exit.CONNECTION_LOST
            self.hide_next_input = False
            for line in text.splitlines() or [""]:
                if not line.strip():
                    continue
                await self.pacer.wait()
                await self.link.send(line)
                if line.strip().lower() == "/quit":
                    self.quitting = True
                    await reader
                    return Exit.OK

    async def _quit(self, reader: asyncio.Task[None], *, wait: bool = True) -> Exit:
        self.quitting = True
        await self.link.send("/quit")
        if wait:
            await reader
        return Exit.OK

    async def _read_from_server(self) -> None:
        while True:
            line = await self.link.read_line()
            if line is None:
                break
            line = sanitise(line)
            self.hide_next_input = asks_for_secret(line)
            moved = self.names.learn(line)
            self.show(line)
            if moved and (app := get_app_or_none()) is not None:
                app.invalidate()  # the prompt names the new room
        app = get_app_or_none()
        if not self.quitting and app is not None and app.is_running:
            app.exit(exception=ServerGoneError())

    def _chat_prompt(self) -> StyleAndTextTuples:
        """`#general> `: asked again at every redraw, so it follows the current room."""
        return [("class:prompt", f"{self.names.current_room}> ")]

    def show(self, line: str) -> None:
        """Print one (sanitised) server line above the prompt."""
        kind = classify(line)
        tag, rest = split_room_tag(line)
        parts: StyleAndTextTuples = [("class:time", time.strftime("%H:%M "))]
        if tag:
            parts.append(("class:room", tag))
        if kind is LineKind.MESSAGE:
            sender, _, text = rest.partition(": ")
            parts += [("class:sender", sender), ("class:message", ": " + text)]
        else:
            parts.append((f"class:{kind.value}", rest))
        print_formatted_text(FormattedText(parts), style=STYLE)
        if asks_for_secret(line):
            app = get_app_or_none()
            if app is not None:
                app.invalidate()  # redraw the prompt with its input hidden

    def say_error(self, text: str) -> None:
        print_formatted_text(FormattedText([("class:error", text)]), style=STYLE)


async def run_interactive(link: ServerLink, options: ClientOptions) -> Exit:
    return await TerminalChat(link, options).run()
