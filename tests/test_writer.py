"""The group-commit writer: batches, and one bad job never sinks the others."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chatd.storage import Connection, open_database, transaction, users
from chatd.storage.messages import Kind, NewMessage
from chatd.writer import ActionJob, GroupCommitWriter, MessageJob, WriteJob
from tests.conftest import RunningServer


def _fail(conn: Connection) -> None:
    raise ValueError("this action fails")


@pytest.mark.both_engines
def test_a_failing_job_fails_alone_in_its_batch(engine: str, chat_db: str) -> None:
    db = chat_db
    conn = open_database(db)
    with transaction(conn):
        alice = users.add(conn, "alice", "x")
    batches: list[list[WriteJob]] = []
    done = threading.Event()

    def committed(batch: list[WriteJob]) -> None:
        batches.append(batch)
        done.set()

    writer = GroupCommitWriter(db, committed)
    jobs: list[WriteJob] = [
        MessageJob(NewMessage(1, Kind.PUBLIC, alice.id, "alice", "first")),
        MessageJob(NewMessage(2, Kind.PUBLIC, 999, "ghost", "from nobody")),  # foreign key
        ActionJob(_fail),
        ActionJob(lambda c: c.execute("SELECT count(*) FROM users").fetchone()[0]),
        MessageJob(NewMessage(3, Kind.PUBLIC, alice.id, "alice", "last")),
    ]
    for job in jobs:  # queued before the thread starts: one batch
        writer.submit(job)
    writer.start()
    assert done.wait(10)
    writer.stop()
    assert len(batches) == 1 and batches[0] == jobs
    assert [job.error is None for job in jobs] == [True, False, False, True, True]
    assert isinstance(jobs[2].error, ValueError)
    assert jobs[3].result == 1  # type: ignore[attr-defined]
    bodies = [row[0] for row in conn.execute("SELECT body FROM messages ORDER BY id")]
    assert bodies == ["first", "last"]
    if engine == "sqlite":
        found = conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'last'")
        assert found.fetchall()  # indexed in the same transaction
    conn.close()


@pytest.mark.parametrize("count", [1, 300])
def test_every_submitted_job_is_committed_and_reported_in_order(tmp_path: Path, count: int) -> None:
    db = tmp_path / "chat.db"
    open_database(db).close()
    reported: list[WriteJob] = []
    all_done = threading.Event()

    def committed(batch: list[WriteJob]) -> None:
        reported.extend(batch)
        if len(reported) == count:
            all_done.set()

    writer = GroupCommitWriter(db, committed, batch_max=64)
    writer.start()
    jobs = [MessageJob(NewMessage(i, Kind.PUBLIC, None, "zoe", f"m{i}")) for i in range(count)]
    for job in jobs:
        writer.submit(job)
    assert all_done.wait(10)
    writer.stop()
    assert reported == jobs
    assert writer.batches <= count


def test_a_user_removed_while_online_is_told_the_message_was_not_saved(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    conn = open_database(tmp_path / "chat.db")
    with transaction(conn):
        users.remove(conn, "alice")
    alice.send("am I still here?")
    alice.expect("^Error: your message could not be saved")
    bob.send("yes, I am")
    bob.expect("^You said: yes, I am$")
