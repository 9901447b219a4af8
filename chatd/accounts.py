"""Account rules, password hashing and users.txt, shared by the server, chatd-admin and
import_users.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from chatd.settings import available_cpus
from chatd.storage import Connection, transaction, users
from chatd.storage.users import User

USERNAME_RULE = "1-32 letters, digits, '_', '-' or '.', not starting with '.' or '-'"
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything longer, so we refuse it

_USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_BCRYPT_COST = re.compile(r"^\$2[aby]?\$(\d\d)\$")


class AccountError(ValueError):
    """A username or password breaks the account rules."""


def is_valid_username(name: str) -> bool:
    return _USERNAME.fullmatch(name) is not None


def check_username(name: str) -> str:
    if not is_valid_username(name):
        raise AccountError(f"invalid username {name!r}: use {USERNAME_RULE}")
    return name


def check_password(password: str) -> bytes:
    """The password as bcrypt takes it, or AccountError if it cannot be one."""
    try:
        encoded = password.encode("utf-8")
    except UnicodeEncodeError:
        raise AccountError("the password is not valid text") from None
    if not encoded:
        raise AccountError("the password is empty")
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise AccountError(
            f"the password is {len(encoded)} bytes long; bcrypt takes at most {MAX_PASSWORD_BYTES}"
        )
    return encoded


class PasswordHasher:
    """bcrypt at a chosen cost. Thread-safe: bcrypt releases the GIL while it works."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self._decoy: bytes | None = None

    def hash(self, password: str) -> str:
        return bcrypt.hashpw(check_password(password), bcrypt.gensalt(self.rounds)).decode("ascii")

    def verify(self, password: str, hashed: str) -> bool:
        try:
            encoded = check_password(password)
        except AccountError:
            self.waste_one_check()  # a bad password takes as long as a wrong one
            return False
        try:
            return bcrypt.checkpw(encoded, hashed.encode("ascii"))
        except ValueError:  # a malformed stored hash never matches
            return False

    def needs_rehash(self, hashed: str) -> bool:
        """Whether a stored hash was made at another cost than ours."""
        match = _BCRYPT_COST.match(hashed)
        return match is None or int(match[1]) != self.rounds

    def waste_one_check(self) -> None:
        """Spend what one password check costs, so unknown users answer no faster."""
        bcrypt.checkpw(b"not the password", self.decoy_hash)

    @property
    def decoy_hash(self) -> bytes:
        if self._decoy is None:
            self._decoy = bcrypt.hashpw(b"decoy", bcrypt.gensalt(self.rounds))
        return self._decoy


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    upgraded_hash: str | None  # a new hash when the stored one used another cost


def authenticate(
    conn: Connection, hasher: PasswordHasher, username: str, password: str
) -> LoginResult | None:
    """Check a login. Every kind of failure costs one bcrypt check and returns None."""
    user = users.find(conn, username) if is_valid_username(username) else None
    if user is None:
        hasher.waste_one_check()
        return None
    if not hasher.verify(password, user.password_hash) or user.disabled:
        return None
    upgraded = hasher.hash(password) if hasher.needs_rehash(user.password_hash) else None
    return LoginResult(user, upgraded)


# --- users.txt ---------------------------------------------------------------


class UsersFileError(ValueError):
    """users.txt could not be read or has a bad line; nothing was imported."""


def parse_users(text: str, source: str = "users.txt") -> list[tuple[str, str]]:
    """(username, password) pairs from users.txt text; UsersFileError names the bad line.

    One `username:password` per line, split at the first colon (a password
    may contain colons). Blank lines and lines starting with '#' are skipped.
    """
    entries: list[tuple[str, str]] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, password = line.partition(":")
        name = name.strip()
        try:
            if not colon:
                raise AccountError("expected username:password")
            check_username(name)
            check_password(password)
        except AccountError as exc:
            raise UsersFileError(f"{source}:{number}: {exc}") from None
        key = name.lower()
        if key in first_seen:
            raise UsersFileError(
                f"{source}:{number}: user {name!r} is already on line {first_seen[key]}"
            )
        first_seen[key] = number
        entries.append((name, password))
    return entries


def read_users_file(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsersFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsersFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_users(text, str(path))


@dataclass(frozen=True)
class ImportResult:
    added: int
    existing: int


def import_users(
    conn: Connection,
    entries: list[tuple[str, str]],
    hasher: PasswordHasher,
    *,
    on_hashed: Callable[[], None] | None = None,
) -> ImportResult:
    """Add the accounts that do not exist yet; existing ones keep their password.

    Hashing runs on every CPU at once (bcrypt releases the GIL); the new
    accounts are then written in one transaction, so an import is all or nothing.
    """
    existing = users.existing_names(conn, (name for name, _ in entries))
    new = [(name, password) for name, password in entries if name.lower() not in existing]
    hashes = []
    with ThreadPoolExecutor(max_workers=available_cpus()) as pool:
        for hashed in pool.map(hasher.hash, (password for _, password in new)):
            hashes.append(hashed)
            if on_hashed is not None:
                on_hashed()
    with transaction(conn):
        added = users.add_many(conn, zip((name for name, _ in new), hashes, strict=True))
    return ImportResult(added=added, existing=len(entries) - added)
