"""chatd-admin and rooms: listing them, logs and exports per room; deleting messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import Result

from chatd.clock import iso_time
from chatd.storage import messages, open_database, retention, rooms, transaction, users
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.users import UnknownUserError
from tests.admin_helpers import local, run, seed


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The seeded chat in #general, plus #dev (alice, bob) and #ops (carol)."""
    path = tmp_path / "chat.db"
    seed(path)
    conn = open_database(path)
    alice, bob, carol = (users.get(conn, name) for name in ("alice", "bob", "carol"))
    with transaction(conn):
        dev, ops = rooms.find_or_create(conn, "#dev"), rooms.find_or_create(conn, "#ops")
        rooms.add_member(conn, dev.id, alice.id)
        rooms.add_member(conn, dev.id, bob.id)
        rooms.add_member(conn, ops.id, carol.id)
        rooms.set_topic(conn, dev.id, "releases on friday")
        rows = [
            ("2026-11-20 10:00:00", Kind.PUBLIC, alice, "ship the rooms branch", dev),
            ("2026-11-20 10:01:00", Kind.TOPIC, alice, "releases on friday", dev),
            ("2026-11-22 11:00:00", Kind.PUBLIC, bob, "zebra pizza in dev", dev),
            ("2026-11-22 12:00:00", Kind.JOIN, carol, "", ops),
        ]
        messages.insert_many(
            conn,
            (
                NewMessage(
                    local(when), kind, who.id, who.username, body, room_id=room.id, room=room.name
                )
                for when, kind, who, body, room in rows
            ),
        )
        messages.insert(
            conn,
            NewMessage(
                local("2026-11-22 11:05:00"),
                Kind.PRIVATE,
                bob.id,
                "bob",
                "dev secret",
                alice.id,
                "alice",
            ),
        )
    conn.close()
    return path


def _json(db: Path, *args: str) -> list[dict[str, object]]:
    result = run(*args, "--json", "--db", str(db))
    assert result.exit_code == 0, result.output
    data: list[dict[str, object]] = json.loads(result.output)
    return data


def _bodies(db: Path, *args: str) -> list[object]:
    return [m["body"] for m in _json(db, "logs", "--limit", "0", *args)]


def _error(result: Result, code: int) -> str:
    """The one error line of a failed command (never a traceback)."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# --- rooms, logs --room, export-logs --room ------------------------------------------


def test_rooms_lists_members_messages_last_activity_and_topic(db: Path) -> None:
    result = run("rooms", "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(h in lines[0] for h in ("room", "members", "messages", "last activity", "topic"))
    assert lines[2].split()[:3] == ["#general", "│", "3"]
    dev = next(line for line in lines if line.startswith("#dev"))
    assert "2026-11-22 11:00:00" in dev and "releases on friday" in dev
    ops = next(line for line in lines if line.startswith("#ops"))
    assert "never" in ops  # a join is not a message said
    assert _json(db, "rooms", "--utc") == [
        {
            "room": "#general",
            "members": 3,
            "messages": 4,
            "last_activity": iso_time(local("2026-11-21 14:31:00"), utc=True),
            "topic": "",
        },
        {
            "room": "#dev",
            "members": 2,
            "messages": 2,
            "last_activity": iso_time(local("2026-11-22 11:00:00"), utc=True),
            "topic": "releases on friday",
        },
        {"room": "#ops", "members": 1, "messages": 0, "last_activity": None, "topic": ""},
    ]


def test_logs_room_shows_only_that_rooms_messages(db: Path) -> None:
    dev = ["ship the rooms branch", "releases on friday", "zebra pizza in dev"]
    assert _bodies(db, "--room", "#dev") == dev
    assert _bodies(db, "--room", "DEV") == dev  # any case, the # left out
    assert [m["room"] for m in _json(db, "logs", "--room", "dev")] == ["#dev"] * 3
    assert _bodies(db, "--room", "ops") == [""]
    general = _bodies(db, "--room", "general")
    assert "good morning everyone" in general and "secret pizza plan" not in general
    assert "ship the rooms branch" not in general


def test_logs_room_combines_with_the_other_filters_and_search(db: Path) -> None:
    assert _bodies(db, "--room", "dev", "--user", "bob") == ["zebra pizza in dev"]
    assert _bodies(db, "--room", "dev", "--since", "2026-11-21") == ["zebra pizza in dev"]
    assert _bodies(db, "--room", "dev", "--until", "2026-11-20") == [
        "ship the rooms branch",
        "releases on friday",
    ]
    assert _bodies(db, "--room", "dev", "--query", "pizza") == ["zebra pizza in dev"]
    assert _bodies(db, "--query", "pizza") == [
        "morning! pizza for lunch?",
        "secret pizza plan",
        "zebra pizza in dev",
    ]
    assert _bodies(db, "--room", "general", "--query", "zebra") == []
    limited = _json(db, "logs", "--room", "dev", "--limit", "1")
    assert [m["body"] for m in limited] == ["zebra pizza in dev"]


def test_logs_table_names_the_room_of_each_message(db: Path) -> None:
    result = run("logs", "--db", str(db))
    assert result.exit_code == 0
    assert "room" in result.output.splitlines()[0]
    row = next(line for line in result.output.splitlines() if "zebra" in line)
    assert "#dev" in row


@pytest.mark.parametrize("command", ["logs", "export-logs"])
def test_a_bad_or_unknown_room_is_one_error_line(db: Path, command: str) -> None:
    bad = _error(run(command, "--room", "#no spaces", "--db", str(db)), 2)
    assert "is not a room name" in bad
    assert "not a room name" in _error(run(command, "--room", "#", "--db", str(db)), 2)
    unknown = _error(run(command, "--room", "nowhere", "--db", str(db)), 1)
    assert unknown == "Error: no room named '#nowhere'"


def test_export_logs_has_every_rooms_public_lines_with_topics(db: Path, tmp_path: Path) -> None:
    result = run("export-logs", "--db", str(db))
    assert result.exit_code == 0, result.output
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "2026-11-20.log",
        "2026-11-21.log",
        "2026-11-22.log",
    ]
    assert (logs / "2026-11-20.log").read_text().splitlines() == [
        "2026-11-20 09:00:00 *** alice joined",
        "2026-11-20 09:00:05 alice: good morning everyone",
        "2026-11-20 09:01:00 bob: morning! pizza for lunch?",
        "2026-11-20 10:00:00 [#dev] alice: ship the rooms branch",
        "2026-11-20 10:01:00 [#dev] *** alice set the topic: releases on friday",
    ]
    assert (logs / "2026-11-22.log").read_text().splitlines() == [
        "2026-11-22 11:00:00 [#dev] bob: zebra pizza in dev",
        "2026-11-22 12:00:00 [#ops] *** carol joined",
    ]  # the private message of that day is not in the public log


def test_export_logs_room_writes_the_same_files_with_only_that_room(
    db: Path, tmp_path: Path
) -> None:
    result = run("export-logs", "--room", "Dev", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "Wrote 2 files to logs/ (3 lines)." in result.output
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["2026-11-20.log", "2026-11-22.log"]
    assert (logs / "2026-11-22.log").read_text() == (
        "2026-11-22 11:00:00 [#dev] bob: zebra pizza in dev\n"
    )
    general = tmp_path / "general"
    assert (
        run("export-logs", "--room", "general", "--out", str(general), "--db", str(db)).exit_code
        == 0
    )
    text = "".join(p.read_text() for p in sorted(general.iterdir()))
    assert "[#" not in text and "good morning everyone" in text and "secret" not in text
    one_day = tmp_path / "one-day"
    args = ("export-logs", "--room", "dev", "--date", "2026-11-21", "--out", str(one_day))
    assert "Wrote 0 files" in run(*args, "--db", str(db)).output


# --- chatd.storage.retention, as the server uses it -----------------------------------


def test_purge_chunk_deletes_the_oldest_first_up_to_the_limit(db: Path) -> None:
    conn = open_database(db)
    cutoff = local("2026-11-23")
    assert retention.count_before(conn, cutoff) == 12
    dev = rooms.find(conn, "#dev")
    assert dev is not None
    assert retention.count_before(conn, cutoff, dev.id) == 3
    with transaction(conn):
        assert retention.purge_chunk(conn, cutoff, dev.id, limit=2) == 2
    assert [e.body for e in messages.query(conn, messages.LogQuery(room_id=dev.id))] == [
        "zebra pizza in dev"
    ]
    with transaction(conn):
        assert retention.purge_chunk(conn, cutoff, limit=4) == 4
    oldest = next(messages.query(conn, messages.LogQuery()))
    assert oldest.body == "the café is closed"
    with transaction(conn):
        assert retention.purge_chunk(conn, cutoff) == 6
        assert retention.purge_chunk(conn, cutoff) == 0
    assert retention.count_before(conn, cutoff) == 0
    conn.close()


def test_forget_in_chunks_then_forget_user(db: Path) -> None:
    conn = open_database(db)
    alice = users.get(conn, "alice")
    assert retention.count_of_user(conn, alice.id) == 8
    with transaction(conn):
        assert retention.forget_chunk(conn, alice.id, limit=3) == 3
    assert users.find(conn, "alice") is not None  # a chunk leaves the account
    assert retention.count_of_user(conn, alice.id) == 5
    with transaction(conn):
        assert retention.forget_user(conn, "Alice") == 5
    assert users.find(conn, "alice") is None
    with pytest.raises(UnknownUserError), transaction(conn):
        retention.forget_user(conn, "alice")
    conn.close()


# --- as a real subprocess ------------------------------------------------------------


def _admin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "chatd-admin"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_room_commands_run_as_subprocesses(db: Path, tmp_path: Path) -> None:
    listed = _admin("rooms", "--json", "--db", str(db), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [r["room"] for r in json.loads(listed.stdout)] == ["#general", "#dev", "#ops"]
    unknown = _admin("logs", "--room", "nowhere", "--db", str(db), cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr == "Error: no room named '#nowhere'\n"
