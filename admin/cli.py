"""The `chatd-admin` command: accounts, log queries, exports and the schema."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from admin.progress import progress
from chatd import accounts
from chatd.accounts import AccountError, PasswordHasher, UsersFileError
from chatd.cliapp import fail, run_app
from chatd.settings import Settings
from chatd.storage import DatabaseMissingError, MigrationError, connect, migrations, open_database

app = typer.Typer(
    help="Manage chatd accounts, query and export the chat logs.",
    no_args_is_help=True,
    add_completion=False,
)

DbOption = Annotated[Path, typer.Option("--db", envvar="CHATD_DB", help="The chatd database file.")]
RoundsOption = Annotated[
    int,
    typer.Option(
        "--bcrypt-rounds", envvar="CHATD_BCRYPT_ROUNDS", min=4, max=31, help="bcrypt cost."
    ),
]
_DEFAULT_DB = Settings().db
_DEFAULT_ROUNDS = Settings().bcrypt_rounds


@contextmanager
def database(path: Path, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """An up-to-date connection, or one clear error line (a missing file is not created)."""
    try:
        conn = open_database(path, create=create)
    except DatabaseMissingError:
        fail(f"database {path} does not exist (start `chatd serve` or run `chatd-admin migrate`)")
    except MigrationError as exc:
        fail(str(exc))
    except (sqlite3.Error, OSError) as exc:
        fail(f"cannot open database {path}: {exc}")
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        fail(f"database error: {exc}")
    finally:
        conn.close()


@app.command("import-users")
def import_users(
    file: Annotated[
        Path, typer.Argument(help="The users file: one username:password per line.")
    ] = Path("users.txt"),
    db: DbOption = _DEFAULT_DB,
    bcrypt_rounds: RoundsOption = _DEFAULT_ROUNDS,
) -> None:
    """Add the accounts of a users file; existing accounts keep their password."""
    try:
        entries = accounts.read_users_file(file)
    except UsersFileError as exc:
        fail(str(exc))
    with database(db, create=True) as conn:
        hasher = PasswordHasher(bcrypt_rounds)
        with progress("Hashing passwords", total=len(entries)) as advance:
            try:
                result = accounts.import_users(conn, entries, hasher, on_hashed=lambda: advance(1))
            except AccountError as exc:
                fail(str(exc))
    typer.echo(f"{result.added} accounts added, {result.existing} already existed.")


@app.command()
def migrate(db: DbOption = _DEFAULT_DB) -> None:
    """Create the database or apply its pending migrations, then print the schema version."""
    try:
        conn = connect(db)
        try:
            applied = migrations.migrate(conn)
            version = migrations.current_version(conn)
        finally:
            conn.close()
    except MigrationError as exc:
        fail(str(exc))
    except (sqlite3.Error, OSError) as exc:
        fail(f"cannot open database {db}: {exc}")
    for migration in applied:
        typer.echo(f"applied {migration.path.name}")
    typer.echo(f"schema version {version}")


def import_users_main() -> None:
    """Entry point of the repository's import_users.py: the import-users command alone."""
    single = typer.Typer(add_completion=False)
    single.command(help=import_users.__doc__)(import_users)
    run_app(single, os.path.basename("import_users.py"))


def main() -> None:
    run_app(app, "chatd-admin")
