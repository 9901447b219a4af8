"""Exports to text files: written atomically, streamed from the database.

A file is written under a temporary name in its target directory and renamed
into place only when complete, so a reader (or a crashed export) never sees
half a file, and an earlier export stays intact until the new one is whole.
Rows are streamed from SQLite and written as they come: memory stays flat
however many millions of lines there are.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from admin.progress import Advance
from chatd.clock import StampFormatter
from chatd.formatting import log_line
from chatd.storage import messages
from chatd.storage.messages import StoredMessage
from chatd.wire import make_visible

_PROGRESS_EVERY = 10_000  # lines between two updates of the progress bar

Key = TypeVar("Key", bound=Hashable)


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
        # No fsync: the rename alone is what keeps readers from seeing half a
        # file, and an export is easily run again; syncing each of 10,000
        # history files cost more than writing them.
        self.file.close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        self.file.close()
        self._temporary.unlink(missing_ok=True)


def _line(entry: StoredMessage, stamp: StampFormatter) -> str:
    """One exported line, control characters shown as escapes."""
    text = log_line(entry, stamp)
    return (text if text.isprintable() else make_visible(text)) + "\n"


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
            target.file.write(line)
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


def _empty(path: Path) -> Exported:
    AtomicFile(path).commit()
    return Exported(path, 0)


def export_history(
    conn: sqlite3.Connection,
    user_id: int,
    path: Path,
    *,
    stamp: StampFormatter,
    advance: Advance,
) -> Exported:
    """Write one user's whole personal history (what they said, private messages to them)."""
    entries = messages.iter_personal_history(conn, user_id)
    files = _write_files(((0, _line(e, stamp)) for e in entries), lambda _: path, advance)
    return files[0] if files else _empty(path)


def export_all_histories(
    conn: sqlite3.Connection,
    names: dict[int, str],
    directory: Path,
    *,
    stamp: StampFormatter,
    advance: Advance,
) -> list[Exported]:
    """Every account's history as `DIRECTORY/USER.txt`, in one pass over the database.

    `names` maps account ids to usernames; an account without history gets an
    empty file.
    """
    keyed = ((owner, _line(e, stamp)) for owner, e in messages.iter_all_histories(conn))
    files = _write_files(keyed, lambda owner: directory / f"{names[owner]}.txt", advance)
    written = {f.path for f in files}
    for name in names.values():
        if directory / f"{name}.txt" not in written:
            files.append(_empty(directory / f"{name}.txt"))
    return files


def export_logs(
    conn: sqlite3.Connection,
    since: int,
    until: int,
    directory: Path,
    *,
    stamp: StampFormatter,
    advance: Advance,
) -> list[Exported]:
    """The public log of [since, until) as one file per day, `DIRECTORY/YYYY-MM-DD.log`."""
    lines = (_line(e, stamp) for e in messages.iter_public_log(conn, since, until))
    by_day = ((line[:10], line) for line in lines)  # each line starts with its date
    return _write_files(by_day, lambda day: directory / f"{day}.log", advance)
