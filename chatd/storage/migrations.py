"""Applies the numbered SQL files of `migrations/` in order, each once, each in a transaction."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from chatd.clock import StampFormatter, now_us
from chatd.storage.db import transaction
from chatd.storage.engines import ERRORS, Connection, engine_of

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The schema could not be brought up to date."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's SQL, one complete statement at a time (triggers included).

        SQLite's parser finds where statements end in PostgreSQL's files too, as
        long as they quote no `;` inside $$ bodies (they use SQL-standard bodies).
        """
        statements, pending = [], ""
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                statements.append(pending.strip())
                pending = ""
        if pending.strip() and not pending.strip().startswith("--"):
            raise MigrationError(f"{self.path.name}: unterminated statement at the end")
        return statements


def migrations_dir(engine_folder: str = "") -> Path:
    """Where an engine's SQL files are (SQLite's at the top, PostgreSQL's in
    postgresql/): inside an installed package, or at the top of a checkout."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "migrations", package_dir.parent / "migrations"):
        if candidate.is_dir():
            return candidate / engine_folder
    raise MigrationError(f"no migrations directory next to {package_dir}")


def available(directory: Path | None = None) -> list[Migration]:
    """Every migration file, in order."""
    found = []
    for path in sorted((directory or migrations_dir()).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


def _ensure_bookkeeping(conn: Connection) -> None:
    conn.execute(engine_of(conn).bookkeeping_table())


def applied_versions(conn: Connection) -> set[int]:
    _ensure_bookkeeping(conn)
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def current_version(conn: Connection) -> int:
    """The highest migration applied (0 for a blank database)."""
    return max(applied_versions(conn), default=0)


def pending(conn: Connection, directory: Path | None = None) -> list[Migration]:
    done = applied_versions(conn)
    known = available(directory or migrations_dir(engine_of(conn).migrations_folder))
    newest_known = max((m.version for m in known), default=0)
    if done and max(done) > newest_known:
        raise MigrationError(
            f"the database is at schema version {max(done)}, newer than this chatd "
            f"(which knows up to {newest_known}): upgrade chatd"
        )
    return [m for m in known if m.version not in done]


def migrate(conn: Connection, directory: Path | None = None) -> list[Migration]:
    """Apply every pending migration; return those applied (none when up to date)."""
    applied = []
    for migration in pending(conn, directory):
        with transaction(conn):
            if engine_of(conn).migration_lock:  # one migrating process at a time
                conn.execute(engine_of(conn).migration_lock)
            # Another process may have applied it while we waited for the lock.
            if migration.version in applied_versions(conn):
                continue
            for statement in migration.statements():
                try:
                    conn.execute(statement)
                except ERRORS as exc:
                    raise MigrationError(f"{migration.path.name}: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_us()),
            )
        applied.append(migration)
    return applied


def history(conn: Connection) -> list[tuple[int, str, str]]:
    """(version, name, applied at in local time) for every applied migration."""
    _ensure_bookkeeping(conn)
    stamp = StampFormatter()
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    return [(version, name, stamp(applied_at)) for version, name, applied_at in rows]
