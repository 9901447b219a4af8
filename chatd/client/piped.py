"""The client in a script: stdin's lines go to the server, the server's lines to stdout.

    printf 'Hello\\n/users\\n' | CHATD_PASSWORD=pass123 chatd connect --user alice

When the input ends the client sends /quit itself: the server answers the
lines in the order they were sent, so by the time it says goodbye it has
answered everything. That goodbye is not printed (the script did not ask
for it), and the exit status is 0.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from chatd.client.link import LoginFailedError, ServerLink, log_in
from chatd.client.session import ClientOptions, Exit, Pacer
from chatd.line import replies
from chatd.wire import sanitise


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """stdin's lines, read on a daemon thread (a pipe or a file alike); None at its end."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


async def run_piped(link: ServerLink, options: ClientOptions) -> Exit:
    assert options.user is not None and options.password is not None
    tried = False

    async def credentials() -> tuple[str, str]:
        nonlocal tried
        if tried:
            raise LoginFailedError("Login failed.")
        tried = True
        return options.user or "", options.password or ""

    try:
        await log_in(link, credentials, show=lambda line: None)
    except LoginFailedError as exc:
        print(f"Error: {sanitise(str(exc))}", file=sys.stderr)
        return Exit.LOGIN_FAILED

    said_goodbye = asyncio.Event()
    user_quit = False

    async def print_server_lines() -> None:
        while (line := await link.read_line()) is not None:
            if line == replies.DISCONNECTED:
                said_goodbye.set()
                if not user_quit:
                    continue
            print(sanitise(line), flush=True)

    reader = asyncio.create_task(print_server_lines())
    pacer = Pacer(options.pace)
    lines = _stdin_lines(asyncio.get_running_loop())
    while True:
        next_line = asyncio.ensure_future(lines.get())
        await asyncio.wait({next_line, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not next_line.done():  # the server closed the connection first
            next_line.cancel()
            break
        line = next_line.result()
        if line is None:
            break
        if not line.strip():
            continue
        await pacer.wait()
        await link.send(line)
        if line.strip().lower() == "/quit":
            user_quit = True
            break
    if not user_quit and not reader.done():
        await pacer.wait()
        await link.send("/quit")
    await reader
    if not said_goodbye.is_set():
        print("Error: connection closed by the server.", file=sys.stderr)
        return Exit.CONNECTION_LOST
    return Exit.OK
