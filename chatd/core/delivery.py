"""From "committed" to "delivered": the one step between the database and the sessions.

The writer commits a batch on its thread and reports it here; a delivery
step brings each committed message to the hub in commit order and wakes
whoever waited for the write. On one box that is a hop from the writer
thread to the event loop (`LocalDelivery`); with several nodes on one
database, a node would instead learn of commits from the database itself,
and only this step would change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from chatd.core.hub import Hub, Member
from chatd.writer import ActionJob, MessageJob, WriteJob

log = logging.getLogger(__name__)


class Delivery(Protocol):
    def committed(self, batch: list[WriteJob]) -> None:
        """A batch is committed (or failed); called on the writer's thread."""


class LocalDelivery:
    """Hands committed batches from the writer thread to the hub on the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hub: Hub,
        not_saved: Callable[[Member], None],
    ) -> None:
        self._loop = loop
        self._hub = hub
        self._not_saved = not_saved  # tells an origin its message was lost

    def committed(self, batch: list[WriteJob]) -> None:
        self._loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: list[WriteJob]) -> None:
        """Deliver the messages of a committed batch in order, then wake each waiter."""
        self._hub.deliver_batch(
            [
                (job.message, job.message_id, job.context[0])
                for job in batch
                if isinstance(job, MessageJob) and job.error is None
            ]
        )
        for job in batch:
            if isinstance(job, MessageJob):
                origin, done = job.context
                if job.error is not None and origin is not None:
                    log.error("message from %s not saved: %s", origin.name, job.error)
                    self._not_saved(origin)
                if done is not None and not done.done():
                    done.set_result(job.error is None)
            elif isinstance(job, ActionJob) and job.context is not None:
                done = job.context
                if done.done():
                    continue
                if job.error is None:
                    done.set_result(job.result)
                else:
                    done.set_exception(job.error)
            elif job.error is not None:
                log.error("a database write failed: %s", job.error)
