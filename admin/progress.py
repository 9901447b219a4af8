"""Progress bars for long work, shown on a terminal only (never in pipes or logs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]


def no_progress(steps: int = 1) -> None:
    """An `advance` that shows nothing."""


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Advance]:
    """Yield `advance(steps=1)`: a bar on stderr when it is a terminal, a no-op otherwise."""
    if not sys.stderr.isatty():
        yield no_progress
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(
        *columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            bar.advance(task, steps)

        yield advance
