"""Exports to text files: written atomically, streamed from the database.

A file is written under a temporary name in its target directory and renamed
into place only when complete, so a reader (or a crash) never sees half a
file, and an earlier export stays intact until the new one is whole. Rows
are streamed from SQLite and written as they come: memory stays flat however
many millions of lines there are.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from admin.progress import Advance
from chatd.clock import StampFormatter
from chatd.formatting import log_line
from chatd.storage import messages
from chatd.storage.messages import StoredMessage
from chatd.wire import make_visible

_PROGRESS_EVERY = 10_000  # lines between two updates of the progress bar


@dataclass(frozen=True)
class Exported:
    path: Path
    lines: int


class AtomicFile:
    """A text file that appears at `path` only when `commit()` is called."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._temporary = Path(temporary)
        self.file: TextIO = os.fdopen(fd, "w", encoding="utf-8", newline="\n", buffering=1 << 20)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        self.file.close()
        self._temporary.unlink(missing_ok=True)


def _write_lines(
    target: AtomicFile, entries: Iterable[StoredMessage], stamp: StampFormatter, advance: Advance
) -> int:
    written = 0
    write = target.file.write
    for entry in entries:
        write(make_visible(log_line(entry, stamp)) + "\n")
        written += 1
        if written % _PROGRESS_EVERY == 0:
            advance(_PROGRESS_EVERY)
    advance(written % _PROGRESS_EVERY)
    return written


def export_history(
    conn: sqlite3.Connection,
    user_id: int,
    path: Path,
    *,
    stamp: StampFormatter,
    advance: Advance,
) -> Exported:
    """Write one user's whole personal history (what they said, private messages to them)."""
    target = AtomicFile(path)
    try:
        lines = _write_lines(target, messages.iter_personal_history(conn, user_id), stamp, advance)
    except BaseException:
        target.discard()
        raise
    target.commit()
    return Exported(path, lines)


def export_logs(
    conn: sqlite3.Connection,
    since: int,
    until: int,
    directory: Path,
    *,
    stamp: StampFormatter,
    advance: Advance,
) -> list[Exported]:
    """Write the public log of [since, until) as one file per day, `DIRECTORY/YYYY-MM-DD.log`."""
    exported: list[Exported] = []
    target: AtomicFile | None = None
    day, lines, written = "", 0, 0
    try:
        for entry in messages.iter_public_log(conn, since, until):
            text = log_line(entry, stamp)
            if target is None or not text.startswith(day):
                if target is not None:
                    target.commit()
                    exported.append(Exported(target.path, lines))
                day, lines = text[:10], 0
                target = AtomicFile(directory / f"{day}.log")
            target.file.write(make_visible(text) + "\n")
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
