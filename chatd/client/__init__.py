"""`chatd connect`: a terminal client for people (interactive) and for scripts (piped).

link.py         the connection and the login dialogue
display.py      telling the server's lines apart
names.py        what the server's lines teach: the current room, rooms, commands
completion.py   Tab completion of commands and rooms (interactive only)
interactive.py  prompt_toolkit: a prompt that survives incoming messages
piped.py        stdin to the server, the server to stdout
"""

from __future__ import annotations

import asyncio
import sys

from chatd.client.link import ConnectError, ServerLink, tls_context
from chatd.client.session import ClientOptions, Exit

__all__ = ["ClientOptions", "Exit", "run_client"]


def run_client(options: ClientOptions) -> int:
    """Connect, chat until the end, and return the exit status."""
    interactive = sys.stdin.isatty()
    if not interactive and (options.user is None or options.password is None):
        print(
            "Error: with stdin not a terminal, give --user and the password in CHATD_PASSWORD"
            " or with --password-stdin",
            file=sys.stderr,
        )
        return Exit.CANNOT_CONNECT
    return asyncio.run(_run(options, interactive))


async def _run(options: ClientOptions, interactive: bool) -> Exit:
    tls = tls_context(options.cafile, insecure=options.insecure) if options.tls else None
    try:
        link = await ServerLink.open(options.host, options.port, tls)
    except ConnectError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return Exit.CANNOT_CONNECT
    try:
        if interactive:
            from chatd.client.interactive import run_interactive  # prompt_toolkit: only here

            return await run_interactive(link, options)
        from chatd.client.piped import run_piped

        return await run_piped(link, options)
    finally:
        await link.close()
