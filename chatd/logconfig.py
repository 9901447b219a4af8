"""The server's log: written to stderr by its own thread, so logging never blocks the chat.

If stderr stalls (a full pipe, a slow terminal) while an attacker makes the
server log a line per attempt, a plain StreamHandler would block the event
loop on write(). Records go through a bounded queue instead; when it is full
they are dropped and counted, and the count is reported at the end.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_QUEUE_LIMIT = 10_000  # records waiting for stderr before new ones are dropped
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


@contextmanager
def log_to_stderr(level: str) -> Iterator[None]:
    """Send every log record to stderr from a background thread while the block runs."""
    records: queue.Queue[logging.LogRecord] = queue.Queue(_QUEUE_LIMIT)
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter(FORMAT))
    handler = _DroppingQueueHandler(records)
    listener = logging.handlers.QueueListener(records, writer)
    root = logging.getLogger()
    root.setLevel(level.upper())
    root.addHandler(handler)
    listener.start()
    try:
        yield
    finally:
        root.removeHandler(handler)
        listener.stop()
        if handler.dropped:
            writer.handle(
                logging.makeLogRecord(
                    {
                        "msg": f"{handler.dropped} log lines were dropped: stderr was too slow",
                        "levelname": "WARNING",
                        "name": "chatd",
                    }
                )
            )
