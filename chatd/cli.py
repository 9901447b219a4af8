"""The `chatd` command: `chatd serve`, `chatd connect`, `chatd --version`."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from chatd import __version__
from chatd.cliapp import fail, run_app
from chatd.logconfig import log_to_stderr
from chatd.settings import ConfigError, Settings, describe_settings

app = typer.Typer(
    help="chatd: a multi-user chat server with SQLite storage.",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"chatd {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """chatd: a multi-user chat server with SQLite storage."""


def serve(**options: Any) -> None:
    """Run the chat server in the foreground (Ctrl-C or SIGTERM stops it gracefully)."""
    from chatd.server import StartupError, run  # imported here: --help stays fast

    try:
        settings = Settings(**options).checked()
    except ConfigError as exc:
        fail(str(exc), code=2)
    try:
        with log_to_stderr(settings.log_level):
            run(settings, on_ready=announce_ready)
    except StartupError as exc:
        fail(str(exc))


def announce_ready(line: str) -> None:
    """Print the ready line whole, even when stdout and stderr share one pipe.

    `print()` writes the text and its newline separately, and with
    PYTHONUNBUFFERED=1 each write reaches the pipe at once: the log thread's
    first line could land in between. One `os.write` of the whole line (well
    under PIPE_BUF) cannot be split.
    """
    sys.stdout.flush()
    data = (line + "\n").encode()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test harness
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        return
    os.write(fd, data)


# `serve` takes one flag per setting, each also read from its CHATD_* variable:
# its signature is built from the Settings dataclass, the single list of them.
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            info.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=info.default,
            annotation=Annotated[
                info.type, typer.Option(info.flag, envvar=info.env, help=info.help)
            ],
        )
        for info in describe_settings()
    ]
)
app.command()(serve)


@app.command()
def connect(
    host: Annotated[str, typer.Argument(help="The server's name or address.")] = "localhost",
    port: Annotated[
        int, typer.Option(envvar="CHATD_PORT", min=1, max=65535, help="The server's port.")
    ] = 1024,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", envvar="CHATD_USER", help="Log in as USER (else you are asked)."
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from stdin's first line (else CHATD_PASSWORD, or a prompt).",
        ),
    ] = False,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False,
    cafile: Annotated[
        Path | None, typer.Option(help="With --tls: trust the certificates in this PEM file.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="With --tls: do not verify the server at all.")
    ] = False,
    pace: Annotated[
        float,
        typer.Option(
            min=0, help="Send at most this many lines a second after a burst of 20 (0: no limit)."
        ),
    ] = 4.0,
) -> None:
    """Chat from this terminal, or from a script when stdin is not a terminal."""
    from chatd.client import ClientOptions, run_client

    if (cafile or insecure) and not tls:
        fail("--cafile and --insecure go with --tls", code=2)
    password = os.environ.get("CHATD_PASSWORD")
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    options = ClientOptions(host, port, user, password, tls, cafile, insecure, pace)
    try:
        status = run_client(options)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        status = 130
    raise typer.Exit(status)


def main() -> None:
    run_app(app, "chatd")
