"""The feed of committed messages on PostgreSQL (FeedDelivery, chatd/core/delivery.py),
driven as the writer drives it, for what a running server cannot be made to do on cue:
a commit whose answer is lost, whether or not it happened."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatd.core.delivery import FeedDelivery
from chatd.core.hub import Hub, Member
from chatd.storage import connect, messages, open_database, users
from chatd.storage.engines import DatabaseError
from chatd.storage.messages import Kind, NewMessage
from chatd.writer import MessageJob
from tests.conftest import wait_for

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


class Origin:
    """A session (and its front end) that is not online: the hub acknowledges its
    messages to it directly; the feed tells it when one was not saved."""

    name = "alice"

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.told: list[str] = []

    @property
    def frontend(self) -> Origin:
        return self

    def acknowledge(self, message: NewMessage, origin: Member, delivered: bool) -> None:
        self.told.append(f"You said: {message.body}")

    def not_saved(self, member: Member) -> None:
        self.told.append("not saved")


class Feed:
    """A FeedDelivery on an event loop of its own, and this test as its writer."""

    def __init__(self, db: str, origin: Origin) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.feed = FeedDelivery(self.loop, Hub(50), origin.not_saved, db)  # type: ignore[arg-type]
        self.on_loop(self.feed.start)
        self.conn = connect(db)

    def on_loop(self, call: Any) -> Any:
        async def run() -> Any:
            return call()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def write(self, message: NewMessage, context: Any, *, commit: bool = True) -> MessageJob:
        """What the writer does: insert, report the ids (`prepared`), commit or not."""
        job = MessageJob(message, context)
        self.conn.execute("BEGIN")
        (job.message_id,) = messages.insert_many(self.conn, [message])
        self.feed.prepared([job])
        self.conn.execute("COMMIT" if commit else "ROLLBACK")
        return job

    def new_future(self) -> asyncio.Future[bool]:
        return self.on_loop(self.loop.create_future)  # type: ignore[no-any-return]

    def delivered_up_to(self, message_id: int) -> None:
        wait_for(lambda: self.feed.last_read >= message_id, what=f"message {message_id} read")
        self.on_loop(lambda: None)  # and whatever the loop was doing with it is done

    def read_once_more(self) -> None:
        """Return once the feed has read again from the start: another message is
        written and read, twice (a read already under way may take the first)."""
        for _ in range(2):
            later = self.write(NewMessage(1, Kind.PUBLIC, None, "zoe", "later"), (None, None))
            self.delivered_up_to(later.message_id)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.feed.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.conn.close()


@pytest.fixture
def alice(chat_db: str) -> Origin:
    conn = open_database(chat_db)
    try:
        return Origin(users.add(conn, "alice", "x").id)
    finally:
        conn.close()


@pytest.fixture
def feed(chat_db: str, alice: Origin) -> Iterator[Feed]:
    running = Feed(chat_db, alice)
    yield running
    running.close()


def _said(origin: Origin, body: str) -> NewMessage:
    return NewMessage(1, Kind.PUBLIC, origin.user_id, origin.name, body)


def test_a_commit_whose_answer_was_lost_after_the_feed_read_it_is_said_once(
    feed: Feed, alice: Origin
) -> None:
    done = feed.new_future()
    job = feed.write(_said(alice, "hello"), (alice, done))
    feed.delivered_up_to(job.message_id)  # the notice woke the reader: it has read it
    job.error = DatabaseError("server closed the connection unexpectedly")
    feed.feed.committed([job])  # the writer saw its COMMIT fail
    feed.read_once_more()
    assert alice.told == ["You said: hello"]
    assert done.result() is True


def test_a_commit_whose_answer_was_lost_and_that_did_not_happen_is_not_saved(
    feed: Feed, alice: Origin
) -> None:
    done = feed.new_future()
    job = feed.write(_said(alice, "lost"), (alice, done), commit=False)
    job.error = DatabaseError("server closed the connection unexpectedly")
    feed.feed.committed([job])
    feed.read_once_more()
    assert alice.told == ["not saved"]
    assert done.result() is False
