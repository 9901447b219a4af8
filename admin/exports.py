"""Exports to text files: written atomically, streamed from the database.

A file is written under a temporary name in its target directory and renamed
into place only when complete, so a reader (or a crashed export) never sees
half a file, and an earlier export stays intact until the new one is whole.
Lines are streamed from SQLite (which also renders them, see
`messages._line`) and written as they come: memory stays bounded however
many millions of lines there are. Exported files are readable by their
owner only, like the database they come from.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar, cast

from admin.progress import Advance
from chatd.storage import Connection, messages
from chatd.wire import make_visible

_PROGRESS_EVERY = 10_000  # lines between two updates of the progress bar
_HELD_LINES = 200_000  # lines export-history --all holds (~25 MB) before writing them out

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Exported:
    path: Path
    lines: int


def _open_private(path: Path, mode: str) -> TextIO:
    """Open for writing ("w": a new file, "a": appending), readable by the owner only."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_EXCL)
    return cast(
        TextIO, os.fdopen(os.open(path, flags, 0o600), mode, encoding="utf-8", newline="\n")
    )


class AtomicFile:
    """A text file that appears at `path` only when `commit()` is called."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        self.file = _open_private(self._temporary, "w")

    def commit(self) -> None:
        # No fsync: the rename alone is what keeps readers from seeing half a
        # file, and an export is easily run again; syncing each of 10,000
        # history files cost more than writing them.
        self.file.close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        self.file.close()
        self._temporary.unlink(missing_ok=True)


def _visible(line: str) -> str:
    """A line as exported: control characters shown as escapes, and a newline."""
    return (line if line.isprintable() else make_visible(line)) + "\n"


def _write_files(
    keyed_lines: Iterable[tuple[Key, str]], path_for: Callable[[Key], Path], advance: Advance
) -> list[Exported]:
    """Write lines that come grouped by key, one file per key, each atomically."""
    exported: list[Exported] = []
    target: AtomicFile | None = None
    current: Key | None = None
    lines = written = 0
    try:
        for key, line in keyed_lines:
            if target is None or key != current:
                if target is not None:
                    target.commit()
                    exported.append(Exported(target.path, lines))
                current, lines = key, 0
                target = AtomicFile(path_for(key))
            target.file.write(_visible(line))
            lines += 1
            written += 1
            if written % _PROGRESS_EVERY == 0:
                advance(_PROGRESS_EVERY)
    except BaseException:
        if target is not None:
            target.discard()
        raise
    if target is not None:
        target.commit()
        exported.append(Exported(target.path, lines))
    advance(written % _PROGRESS_EVERY)
    return exported


def export_history(
    conn: Connection, user_id: int, path: Path, *, utc: bool, advance: Advance
) -> Exported:
    """Write one user's whole personal history (what they said, private messages to them)."""
    lines = messages.iter_history_lines(conn, user_id, utc=utc)
    files = _write_files(((0, line) for line in lines), lambda _: path, advance)
    if files:
        return files[0]
    AtomicFile(path).commit()  # no history: an empty file
    return Exported(path, 0)


def export_logs(
    conn: Connection,
    since: int,
    until: int,
    directory: Path,
    *,
    utc: bool,
    advance: Advance,
    room_id: int | None = None,
) -> list[Exported]:
    """The public log of [since, until) as one file per day, `DIRECTORY/YYYY-MM-DD.log`:
    of every room, or only of the room `room_id`."""
    lines = messages.iter_public_log_lines(conn, since, until, utc=utc, room_id=room_id)
    by_day = ((line[:10], line) for line in lines)  # each line starts with its date
    return _write_files(by_day, lambda day: directory / f"{day}.log", advance)


def export_all_histories(
    conn: Connection,
    names: dict[int, str],
    directory: Path,
    *,
    utc: bool,
    advance: Advance,
) -> list[Exported]:
    """Every account's history as `DIRECTORY/USER.txt` (empty without history).

    One sequential pass over the table: each line is added to its sender's
    history and, for a private message, to its recipient's. Lines are held
    per user; every _HELD_LINES they are spilled, user after user, to one
    temporary spill file, remembering where each user's piece lies. At the
    end each user's file is written once from their pieces and renamed into
    place. Memory stays bounded, and each of the 10,000 files is opened once
    (reopening them for every round cost 70 us an open).
    `names` maps account ids to usernames.
    """
    directory.mkdir(parents=True, exist_ok=True)
    held: dict[int, list[str]] = {}
    pieces: dict[int, list[tuple[int, int]]] = {}  # user -> (offset, length) in the spill
    counts = dict.fromkeys(names, 0)
    holding = 0
    with tempfile.TemporaryFile(dir=directory) as spill:

        def spill_held() -> None:
            for user, lines in held.items():
                data = "".join(lines).encode("utf-8")
                pieces.setdefault(user, []).append((spill.tell(), len(data)))
                spill.write(data)
                counts[user] += len(lines)
            held.clear()

        for sender, recipient, line in messages.iter_history_lines_of_everyone(conn, utc=utc):
            text = _visible(line)
            for user in (sender, recipient):
                if user is not None and user in counts:
                    held.setdefault(user, []).append(text)
                    holding += 1
            if holding >= _HELD_LINES:
                advance(holding)
                spill_held()
                holding = 0
        advance(holding)
        spill_held()
        spill.flush()
        exported = []
        for user, name in names.items():
            target = AtomicFile(directory / f"{name}.txt")
            try:
                for offset, length in pieces.get(user, []):
                    target.file.buffer.write(os.pread(spill.fileno(), length, offset))
            except BaseException:
                target.discard()
                raise
            target.commit()
            exported.append(Exported(target.path, counts[user]))
    return exported
