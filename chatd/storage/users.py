"""Accounts in the database. Names are matched regardless of case (SQLite: COLLATE NOCASE,
PostgreSQL: citext)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatd.clock import now_us
from chatd.storage.engines import INTEGRITY_ERRORS, Connection

ROLES = ("user", "admin")


class DuplicateUserError(ValueError):
    """An account with that name (in any case) exists already."""


class UnknownUserError(LookupError):
    """No account has that name."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    role: str
    disabled: bool
    created_at: int
    last_login_at: int | None
    seen_upto: int | None = None  # see set_seen_upto; None: never logged in since rooms

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class UserSummary:
    """One row of `chatd-admin list-users`."""

    username: str
    role: str
    disabled: bool
    created_at: int
    last_login_at: int | None
    messages: int


@dataclass(frozen=True, slots=True)
class Census:
    """How many accounts there are, of which admins and disabled."""

    users: int
    admins: int
    disabled: int


_USER_COLUMNS = "id, username, password_hash, role, disabled, created_at, last_login_at, seen_upto"


def _user(row: tuple[int, str, str, str, int, int, int | None, int | None]) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def find(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)
    ).fetchone()
    return None if row is None else _user(row)


def get(conn: Connection, username: str) -> User:
    user = find(conn, username)
    if user is None:
        raise UnknownUserError(f"no user named {username!r}")
    return user


def every_user(conn: Connection) -> list[User]:
    """Every account, by name."""
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
    return [_user(row) for row in rows]


def existing_names(conn: Connection, usernames: Iterable[str]) -> set[str]:
    """Which of these names (case-folded) already have an account."""
    found: set[str] = set()
    names = list(usernames)
    for start in range(0, len(names), 500):  # stay under SQLite's variable limit
        chunk = names[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(f"SELECT username FROM users WHERE username IN ({marks})", chunk)
        found.update(name.lower() for (name,) in rows)
    return found


def add(conn: Connection, username: str, password_hash: str, role: str = "user") -> User:
    try:
        conn.execute(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            (username, password_hash, role, now_us()),
        )
    except INTEGRITY_ERRORS:
        raise DuplicateUserError(f"user {username!r} already exists") from None
    return get(conn, username)


def add_many(conn: Connection, accounts: Iterable[tuple[str, str]]) -> int:
    """Add (username, hash) pairs, skipping names that exist; return how many were added."""
    created = now_us()
    cursor = conn.executemany(
        "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (username) DO NOTHING",
        [(name, hashed, created) for name, hashed in accounts],
    )
    return cursor.rowcount  # both engines add up the rows of every execution


def _update(conn: Connection, username: str, assignment: str, value: object) -> None:
    cursor = conn.execute(
        f"UPDATE users SET {assignment} = ? WHERE username = ?", (value, username)
    )
    if cursor.rowcount == 0:
        raise UnknownUserError(f"no user named {username!r}")


def set_password(conn: Connection, username: str, password_hash: str) -> None:
    _update(conn, username, "password_hash", password_hash)


def set_disabled(conn: Connection, username: str, disabled: bool) -> None:
    _update(conn, username, "disabled", int(disabled))


def set_role(conn: Connection, username: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    _update(conn, username, "role", role)


def record_login(conn: Connection, user_id: int, at: int, new_hash: str | None = None) -> None:
    """Note a successful login, upgrading the stored hash when one is given."""
    if new_hash is None:
        conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (at, user_id))
    else:
        conn.execute(
            "UPDATE users SET last_login_at = ?, password_hash = ? WHERE id = ?",
            (at, new_hash, user_id),
        )


def set_seen_upto(conn: Connection, user_id: int, message_id: int) -> None:
    """Remember the last message an account's sessions were sent before it went offline:
    its next login catches up on what came after."""
    conn.execute("UPDATE users SET seen_upto = ? WHERE id = ?", (message_id, user_id))


def remove(conn: Connection, username: str) -> None:
    """Delete an account; its messages stay, with the name kept and the id cleared."""
    cursor = conn.execute("DELETE FROM users WHERE username = ?", (username,))
    if cursor.rowcount == 0:
        raise UnknownUserError(f"no user named {username!r}")


def summaries(conn: Connection) -> list[UserSummary]:
    """Every account with its message count, by name."""
    rows = conn.execute(
        "SELECT u.username, u.role, u.disabled, u.created_at, u.last_login_at,"
        " (SELECT count(*) FROM messages m WHERE m.sender_id = u.id"
        "  AND m.kind IN ('public', 'private', 'announce'))"
        " FROM users u ORDER BY u.username"
    )
    return [UserSummary(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]


def census(conn: Connection) -> Census:
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE role = 'admin'),"
        " count(*) FILTER (WHERE disabled = 1) FROM users"
    ).fetchone()
    return Census(int(row[0]), int(row[1]), int(row[2]))
