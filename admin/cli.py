"""The `chatd-admin` command: accounts, log queries, rooms, exports, deletion and the schema.

Every command takes `--db` (or CHATD_DB) and brings the database's schema up
to date before it works. Commands that add accounts create a missing
database; the others refuse one that does not exist.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from admin import output
from admin.exports import export_all_histories as write_all_histories
from admin.exports import export_history as write_history
from admin.exports import export_logs as write_logs
from admin.progress import progress
from chatd import accounts
from chatd.accounts import AccountError, PasswordHasher, UsersFileError
from chatd.cliapp import fail, run_app
from chatd.clock import BadTimeError, StampFormatter, day_bounds, iso_time, now_us, parse_when
from chatd.rooms import RoomNameError, room_name
from chatd.settings import Settings
from chatd.storage import (
    ERRORS,
    ConnectError,
    Connection,
    DatabaseMissingError,
    MigrationError,
    connect,
    describe,
    is_url,
    messages,
    migrations,
    open_database,
    retention,
    rooms,
    transaction,
    transfer,
    users,
)
from chatd.storage.messages import LogQuery, SearchSyntaxError
from chatd.storage.users import DuplicateUserError, UnknownUserError

app = typer.Typer(
    help="Manage chatd accounts and rooms; query, export and delete the chat logs.",
    no_args_is_help=True,
    add_completion=False,
)

_DEFAULTS = Settings()

DbOption = Annotated[
    str,
    typer.Option(
        "--db", envvar="CHATD_DB", help="The chatd database: a file, or a postgresql:// URL."
    ),
]
RoundsOption = Annotated[
    int,
    typer.Option(
        "--bcrypt-rounds", envvar="CHATD_BCRYPT_ROUNDS", min=4, max=31, help="bcrypt cost."
    ),
]
UserArgument = Annotated[str, typer.Argument(help="The account's username.", show_default=False)]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin, no prompt."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UtcOption = Annotated[bool, typer.Option("--utc", help="Show and read times in UTC, not local.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
RoomOption = Annotated[
    str | None, typer.Option(help="Only this room: #dev (the # may be left out).")
]


_OPEN_ERRORS: tuple[type[Exception], ...] = (*ERRORS, OSError)


@contextmanager
def database(target: str, *, create: bool = False) -> Iterator[Connection]:
    """An up-to-date connection, or one clear error line."""
    conn = _open(target, lambda: open_database(target, create=create))
    try:
        yield conn
    except UnknownUserError as exc:
        fail(str(exc))
    except ERRORS as exc:
        fail(f"database error: {exc}")
    finally:
        conn.close()


def _open(target: str, opening: Callable[[], Connection]) -> Connection:
    """`opening()`'s connection, or one clear error line naming the database (never
    its password)."""
    try:
        return opening()
    except DatabaseMissingError:
        fail(f"database {target} does not exist (start `chatd serve` or run `chatd-admin migrate`)")
    except (MigrationError, ConnectError) as exc:
        fail(str(exc))
    except _OPEN_ERRORS as exc:
        fail(f"cannot open database {describe(target)}: {exc}")


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("no password on stdin")
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        accounts.check_password(password)
    except AccountError as exc:
        fail(str(exc))
    return password


def _time(text: str, *, utc: bool, end_of_day: bool = False) -> int:
    try:
        return parse_when(text, utc=utc, end_of_day=end_of_day)
    except BadTimeError as exc:
        fail(str(exc), code=2)


def _when(text: str | None, *, utc: bool, end_of_day: bool = False) -> int | None:
    return None if text is None else _time(text, utc=utc, end_of_day=end_of_day)


def _room_name(text: str | None) -> str | None:
    """The canonical room name of a --room option, or one error line."""
    if text is None:
        return None
    try:
        return room_name(text)
    except RoomNameError as exc:
        fail(str(exc), code=2)


def _room_id(conn: Connection, name: str | None) -> int | None:
    """The id of an existing room, or one error line."""
    if name is None:
        return None
    room = rooms.find(conn, name)
    if room is None:
        fail(f"no room named {name!r}")
    return room.id


# --- accounts -------------------------------------------------------------------


@app.command("add-user")
def add_user(
    username: UserArgument,
    admin: Annotated[
        bool, typer.Option("--admin", help="Give the account the admin role.")
    ] = False,
    password_stdin: PasswordStdin = False,
    db: DbOption = _DEFAULTS.db,
    bcrypt_rounds: RoundsOption = _DEFAULTS.bcrypt_rounds,
) -> None:
    """Create an account (the password is asked twice, hidden)."""
    try:
        accounts.check_username(username)
    except AccountError as exc:
        fail(str(exc))
    with database(db, create=True) as conn:
        if users.find(conn, username) is not None:
            fail(f"user {username!r} already exists")
        hashed = PasswordHasher(bcrypt_rounds).hash(_read_new_password(password_stdin))
        try:
            with transaction(conn):
                users.add(conn, username, hashed, "admin" if admin else "user")
        except DuplicateUserError as exc:
            fail(str(exc))
    typer.echo(f"Added {'admin' if admin else 'user'} {username}.")


@app.command("remove-user")
def remove_user(
    username: UserArgument, yes: YesOption = False, db: DbOption = _DEFAULTS.db
) -> None:
    """Delete an account; the messages it wrote stay in the logs (forget-user deletes them)."""
    with database(db) as conn:
        users.get(conn, username)
        if not yes:
            typer.confirm(
                f"Remove {username}? Their messages stay in the logs.", abort=True, err=True
            )
        with transaction(conn):
            users.remove(conn, username)
    typer.echo(f"Removed {username}.")


@app.command()
def passwd(
    username: UserArgument,
    password_stdin: PasswordStdin = False,
    db: DbOption = _DEFAULTS.db,
    bcrypt_rounds: RoundsOption = _DEFAULTS.bcrypt_rounds,
) -> None:
    """Set an account's password (asked twice, hidden)."""
    with database(db) as conn:
        users.get(conn, username)
        hashed = PasswordHasher(bcrypt_rounds).hash(_read_new_password(password_stdin))
        with transaction(conn):
            users.set_password(conn, username, hashed)
    typer.echo(f"Password of {username} changed.")


def _set_disabled(username: str, db: str, disabled: bool) -> None:
    with database(db) as conn, transaction(conn):
        users.set_disabled(conn, username, disabled)
    typer.echo(f"{username} {'disabled: they can no longer log in' if disabled else 'enabled'}.")


@app.command("disable-user")
def disable_user(username: UserArgument, db: DbOption = _DEFAULTS.db) -> None:
    """Stop an account from logging in (its history is kept)."""
    _set_disabled(username, db, True)


@app.command("enable-user")
def enable_user(username: UserArgument, db: DbOption = _DEFAULTS.db) -> None:
    """Let a disabled account log in again."""
    _set_disabled(username, db, False)


@app.command("set-role")
def set_role(
    username: UserArgument,
    role: Annotated[str, typer.Argument(help="user or admin.", show_default=False)],
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Make an account an admin (may /announce and /kick) or a plain user."""
    if role not in users.ROLES:
        fail(f"role must be one of: {', '.join(users.ROLES)}", code=2)
    with database(db) as conn, transaction(conn):
        users.set_role(conn, username, role)
    typer.echo(f"{username} is now {'an admin' if role == 'admin' else 'a user'}.")


@app.command("list-users")
def list_users(
    json: JsonOption = False, utc: UtcOption = False, db: DbOption = _DEFAULTS.db
) -> None:
    """List the accounts: role, state, when created, last login, messages written."""
    with database(db) as conn:
        summaries = users.summaries(conn)
    if json:
        output.print_json_array(output.user_json(summaries, utc=utc))
    elif not output.print_table(output.USER_HEADERS, output.user_rows(summaries, utc=utc)):
        typer.echo("No accounts yet.")


@app.command("import-users")
def import_users(
    file: Annotated[
        Path, typer.Argument(help="The users file: one username:password per line.")
    ] = Path("users.txt"),
    db: DbOption = _DEFAULTS.db,
    bcrypt_rounds: RoundsOption = _DEFAULTS.bcrypt_rounds,
) -> None:
    """Add the accounts of a users file; existing accounts keep their password."""
    try:
        entries = accounts.read_users_file(file)
    except UsersFileError as exc:
        fail(str(exc))
    with database(db, create=True) as conn:
        hasher = PasswordHasher(bcrypt_rounds)
        with progress("Hashing passwords", total=len(entries)) as advance:
            result = accounts.import_users(conn, entries, hasher, on_hashed=lambda: advance(1))
    typer.echo(f"{result.added} accounts added, {result.existing} already existed.")


# --- logs -------------------------------------------------------------------------


@app.command()
def logs(
    user: Annotated[str | None, typer.Option(help="Only messages sent by this user.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this date or time: 2026-11-23 or '2026-11-23 14:00'.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this date (inclusive) or time (exclusive).")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            help="Full-text search: messages with every word (a trailing * for prefixes)."
        ),
    ] = None,
    room: RoomOption = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Show the latest N matches (0 for all of them).")
    ] = 100,
    json: JsonOption = False,
    utc: UtcOption = False,
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Query the messages: by sender, time, room and words, as a table or JSON."""
    since_us, until_us = _when(since, utc=utc), _when(until, utc=utc, end_of_day=True)
    name = _room_name(room)
    with database(db) as conn:
        request = LogQuery(
            sender=user,
            since=since_us,
            until=until_us,
            text=query,
            limit=limit or None,
            room_id=_room_id(conn, name),
        )
        try:
            found = messages.query(conn, request)
            if json:
                output.print_json_array(output.message_json(found, utc=utc))
            elif not output.print_table(
                output.MESSAGE_HEADERS, output.message_rows(found, utc=utc)
            ):
                typer.echo("No messages match.")
        except SearchSyntaxError as exc:
            fail(str(exc), code=2)


@app.command()
def stats(
    days: Annotated[int, typer.Option(min=1, help="Days of messages-per-day to show.")] = 14,
    top: Annotated[int, typer.Option(min=1, help="How many of the most active users.")] = 10,
    json: JsonOption = False,
    utc: UtcOption = False,
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Summarise: users, messages, messages per day, most active users."""
    with database(db) as conn:
        census = users.census(conn)
        kinds = messages.counts_by_kind(conn)
        span = messages.time_span(conn)
        since = now_us() - days * 86_400_000_000
        per_day = messages.counts_by_day(conn, since, utc=utc)
        active = messages.most_active(conn, top)
    said = sum(kinds.get(k, 0) for k in messages.SAID)
    summary = {
        "users": census.users,
        "admins": census.admins,
        "disabled": census.disabled,
        "messages": said,
        "by_kind": {kind.value: number for kind, number in kinds.items()},
        "first": None if span is None else iso_time(span[0], utc=utc),
        "last": None if span is None else iso_time(span[1], utc=utc),
        "per_day": dict(per_day),
        "most_active": dict(active),
    }
    if json:
        output.print_json(summary)
        return
    stamp = StampFormatter(utc=utc)
    by_kind = ", ".join(f"{kind.value} {number:,}" for kind, number in sorted(kinds.items()))
    admins, disabled = summary["admins"], summary["disabled"]
    lines = [
        f"Users:     {census.users:,} ({admins} admin, {disabled} disabled)",
        f"Messages:  {said:,}" + (f" (rows by kind: {by_kind})" if by_kind else ""),
        f"First:     {'-' if span is None else stamp(span[0])}",
        f"Last:      {'-' if span is None else stamp(span[1])}",
        "",
        f"Messages per day, last {days} days:",
        *(f"  {day}  {number:>9,}" for day, number in per_day),
        *(["  (none)"] if not per_day else []),
        "",
        f"Most active users (top {top}):",
        *(f"  {name:<32}  {number:>9,}" for name, number in active),
        *(["  (none)"] if not active else []),
    ]
    typer.echo("\n".join(lines))


# --- exports ------------------------------------------------------------------------


@app.command("export-history")
def export_history(
    username: Annotated[
        str | None, typer.Argument(help="Whose history (or --all).", show_default=False)
    ] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user, one file each.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="The file to write (with --all: the directory). [default: history/]"),
    ] = None,
    utc: UtcOption = False,
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Write a user's history (what they said, private messages to them) to history/USER.txt."""
    if all_users == (username is not None):
        fail("give a USERNAME or --all", code=2)
    with database(db) as conn:
        if username is not None:
            user = users.get(conn, username)
            path = out or Path("history") / f"{user.username}.txt"
            total = messages.count_personal_history(conn, user.id)
            with progress(f"Exporting {user.username}", total=total) as advance:
                done = write_history(conn, user.id, path, utc=utc, advance=advance)
            typer.echo(f"Wrote {done.path} ({done.lines:,} lines).")
            return
        directory = out or Path("history")
        names = {user.id: user.username for user in users.every_user(conn)}
        total = messages.count_all_histories(conn)
        with progress("Exporting histories", total=total) as advance:
            files = write_all_histories(conn, names, directory, utc=utc, advance=advance)
    lines = sum(f.lines for f in files)
    typer.echo(f"Wrote {len(files)} files to {directory}/ ({lines:,} lines).")


@app.command("export-logs")
def export_logs(
    date: Annotated[str | None, typer.Option(help="One day: 2026-11-23.")] = None,
    since: Annotated[str | None, typer.Option(help="The first day to export.")] = None,
    until: Annotated[str | None, typer.Option(help="The last day to export.")] = None,
    room: RoomOption = None,
    out: Annotated[Path, typer.Option(help="The directory to write the files to.")] = Path("logs"),
    utc: UtcOption = False,
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Write the public log (messages, joins, leaves, topics) to logs/YYYY-MM-DD.log."""
    if date is not None and (since is not None or until is not None):
        fail("give --date or --since/--until, not both", code=2)
    try:
        # Whole days always: each file holds its entire day, never a part of it.
        if date is not None:
            start, end = day_bounds(date[:10], utc=utc)
        else:
            start = parse_when(since[:10], utc=utc) if since else 0
            end = parse_when(until[:10], utc=utc, end_of_day=True) if until else now_us() + 1
    except BadTimeError as exc:
        fail(str(exc), code=2)
    name = _room_name(room)
    with database(db) as conn:
        room_id = _room_id(conn, name)
        total = messages.count_public_log(conn, start, end, room_id=room_id)
        with progress("Exporting logs", total=total) as advance:
            files = write_logs(conn, start, end, out, utc=utc, advance=advance, room_id=room_id)
    lines = sum(f.lines for f in files)
    typer.echo(f"Wrote {len(files)} files to {out}/ ({lines:,} lines).")


# --- rooms -----------------------------------------------------------------------------


@app.command("rooms")
def list_rooms(
    json: JsonOption = False, utc: UtcOption = False, db: DbOption = _DEFAULTS.db
) -> None:
    """List the rooms: members, messages said, last activity, topic."""
    with database(db) as conn:
        summaries = rooms.summaries(conn)
    if json:
        output.print_json_array(output.room_json(summaries, utc=utc))
    else:
        output.print_table(output.ROOM_HEADERS, output.room_rows(summaries, utc=utc))


# --- deletion ----------------------------------------------------------------------------


def _delete_in_chunks(
    conn: Connection, description: str, total: int, chunk: Callable[[], int]
) -> int:
    """Run `chunk` a transaction at a time until it deletes less than a whole chunk,
    so that a running server's writer waits for one chunk at most; return how many went."""
    deleted = 0
    with progress(description, total=total) as advance:
        while True:
            with transaction(conn):
                done = chunk()
            deleted += done
            advance(done)
            if done < retention.CHUNK:
                return deleted


@app.command()
def purge(
    before: Annotated[
        str,
        typer.Option(
            help="Delete what was sent before this: 2026-11-23 (that day is kept)"
            " or '2026-11-23 14:00'.",
            show_default=False,
        ),
    ],
    room: RoomOption = None,
    yes: YesOption = False,
    utc: UtcOption = False,
    db: DbOption = _DEFAULTS.db,
) -> None:
    """Delete every message (of every kind) sent before a date, in every room or one."""
    cutoff = _time(before, utc=utc)
    if cutoff > now_us():
        fail(f"--before {before} is in the future: purge only deletes what is past", code=2)
    name = _room_name(room)
    where = "" if name is None else f" in {name}"
    when = StampFormatter(utc=utc)(cutoff)
    with database(db) as conn:
        room_id = _room_id(conn, name)
        total = retention.count_before(conn, cutoff, room_id)
        if total == 0:
            typer.echo(f"No messages{where} before {when}: nothing to delete.")
            return
        if not yes:
            typer.confirm(
                f"Delete the {total:,} messages{where} sent before {when}, for good?",
                abort=True,
                err=True,
            )
        deleted = _delete_in_chunks(
            conn, "Purging", total, lambda: retention.purge_chunk(conn, cutoff, room_id)
        )
    typer.echo(f"Deleted {deleted:,} messages{where} sent before {when}.")


@app.command("forget-user")
def forget_user(
    username: UserArgument, yes: YesOption = False, db: DbOption = _DEFAULTS.db
) -> None:
    """Delete an account and every message it wrote or was sent privately, for good."""
    with database(db) as conn:
        user = users.get(conn, username)
        total = retention.count_of_user(conn, user.id)
        if not yes:
            typer.confirm(
                f"Forget {user.username}? This deletes the account and {total:,} messages"
                " (all they wrote and the private messages sent to them), for good.",
                abort=True,
                err=True,
            )
        deleted = _delete_in_chunks(
            conn,
            f"Forgetting {user.username}",
            total,
            lambda: retention.forget_chunk(conn, user.id),
        )
        with transaction(conn):  # whatever came in meanwhile, and the account, at once
            deleted += retention.forget_user(conn, user.username)
    typer.echo(f"Forgot {user.username}: deleted the account and {deleted:,} messages.")


# --- copying ------------------------------------------------------------------------


@app.command("copy-db")
def copy_db(
    source: Annotated[str, typer.Argument(help="The chat to copy: a file or a postgresql:// URL.")],
    target: Annotated[
        str,
        typer.Argument(help="The database to copy it into (a missing file is created)."),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the chat the target holds, then copy.")
    ] = False,
) -> None:
    """Copy a whole chat (accounts and their hashes, rooms, memberships, messages and their
    times) into another database, e.g. from chat.db into PostgreSQL."""
    if source == target or (
        not is_url(source)
        and not is_url(target)
        and Path(source).resolve() == Path(target).resolve()
    ):
        fail("SOURCE and TARGET are the same database", code=2)
    with database(source) as src, database(target, create=True) as dst:
        copied = transfer.census(src)
        there = transfer.census(dst)
        if not there.is_empty and not replace:
            fail(
                f"{describe(target)} already holds a chat ({there.users:,} accounts,"
                f" {there.messages:,} messages): --replace deletes it and copies over it"
            )
        last_id = messages.last_id(src)
        with transaction(dst), progress("Copying", total=copied.total) as advance:
            if replace:
                transfer.empty(dst)
            for table in transfer.TABLES:
                for chunk in transfer.read_chunks(src, table):
                    transfer.write_chunk(dst, table, chunk)
                    advance(len(chunk))
            transfer.finish(dst, last_id)
    typer.echo(
        f"Copied {copied.users:,} accounts, {copied.rooms + 1:,} rooms,"
        f" {copied.memberships:,} memberships and {copied.messages:,} messages"
        f" to {describe(target)}."
    )


# --- schema ---------------------------------------------------------------------------


@app.command()
def migrate(db: DbOption = _DEFAULTS.db) -> None:
    """Create the database or apply its pending migrations, then print the schema version."""
    conn = _open(db, lambda: connect(db))
    try:
        applied = migrations.migrate(conn)
        version = migrations.current_version(conn)
    except MigrationError as exc:
        fail(str(exc))
    except ERRORS as exc:
        fail(f"cannot migrate database {describe(db)}: {exc}")
    finally:
        conn.close()
    for migration in applied:
        typer.echo(f"Applied {migration.path.name}.")
    typer.echo(f"Schema version {version}.")


def import_users_main() -> None:
    """Entry point of the repository's import_users.py: the import-users command alone."""
    single = typer.Typer(add_completion=False)
    single.command(help=import_users.__doc__)(import_users)
    run_app(single, "import_users.py")


def main() -> None:
    run_app(app, "chatd-admin")
