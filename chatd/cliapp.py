"""Running a typer app the way chatd's commands behave: one-line errors, no tracebacks."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from typer.exceptions import TyperException


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop a command with one clear line on stderr."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def run_app(app: typer.Typer, prog: str) -> NoReturn:
    """Run `app`, turning typer's usage errors into one line that points to --help."""
    try:
        result = app(prog_name=prog, standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message()
        if message:  # an empty message: typer has already printed the help
            typer.echo(f"Error: {message} (see '{prog} --help')", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
