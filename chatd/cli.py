"""The `chatd` command: `chatd serve`, `chatd connect`, `chatd --version`."""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any

import typer

from chatd import __version__
from chatd.cliapp import fail, run_app
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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        run(settings, on_ready=lambda line: print(line, flush=True))
    except StartupError as exc:
        fail(str(exc))


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


def main() -> None:
    run_app(app, "chatd")
