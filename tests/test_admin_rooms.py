"""chatd-admin and rooms: listing them, logs and exports per room, purge and forget-user."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import Result

from chatd.clock import iso_time
from chatd.storage import connect, messages, open_database, retention, rooms, transaction, users
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.users import UnknownUserError
from tests.admin_helpers import local, run, seed

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


@pytest.fixture
def db(chat_db: str) -> str:
    """The seeded chat in #general, plus #dev (alice, bob) and #ops (carol)."""
    path = chat_db
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


def _count(db: Path) -> int:
    conn = connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        conn.close()


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


# --- purge ---------------------------------------------------------------------------


def test_purge_asks_first_and_keeps_everything_when_told_no(db: Path) -> None:
    before = _count(db)
    result = run("purge", "--before", "2026-11-21", "--db", str(db), input="n\n")
    assert result.exit_code == 1
    assert "Delete the 6 messages sent before 2026-11-21 00:00:00, for good?" in result.output
    assert _count(db) == before


def test_purge_deletes_every_kind_before_the_date_and_says_how_many(db: Path) -> None:
    result = run("purge", "--before", "2026-11-21", "--db", str(db), input="y\n")
    assert result.exit_code == 0, result.output
    assert "Deleted 6 messages sent before 2026-11-21 00:00:00." in result.output
    remaining = _json(db, "logs", "--limit", "0")
    assert min(str(m["time"]) for m in remaining) >= "2026-11-21"
    assert {m["kind"] for m in remaining} == {"public", "leave", "private", "join"}
    again = run("purge", "--before", "2026-11-21", "--db", str(db))  # nothing left to ask about
    assert again.exit_code == 0
    assert again.output == "No messages before 2026-11-21 00:00:00: nothing to delete.\n"


def test_purge_in_one_room_keeps_the_others(db: Path) -> None:
    result = run("purge", "--before", "2026-11-23", "--room", "#dev", "--yes", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "Deleted 3 messages in #dev sent before 2026-11-23 00:00:00." in result.output
    assert _bodies(db, "--room", "dev") == []
    assert len(_bodies(db)) == 7 + 1 + 1  # the seed, the #ops join, the private message
    dev = next(r for r in _json(db, "rooms") if r["room"] == "#dev")
    assert dev["messages"] == 0 and dev["last_activity"] is None and dev["members"] == 2


def test_purge_with_a_time_keeps_what_came_at_or_after_it(db: Path) -> None:
    args = ("purge", "--before", "2026-11-20 09:01", "--yes", "--db", str(db))
    assert "Deleted 2 messages" in run(*args).output
    assert _bodies(db, "--until", "2026-11-20")[0] == "morning! pizza for lunch?"


def test_purged_messages_are_gone_from_search_logs_stats_and_exports(
    db: Path, tmp_path: Path, engine: str
) -> None:
    assert _bodies(db, "--query", "pizza") != []
    assert run("purge", "--before", "2026-11-21", "--yes", "--db", str(db)).exit_code == 0
    assert _bodies(db, "--query", "pizza") == ["zebra pizza in dev"]
    assert _bodies(db, "--query", "morning") == []
    assert _bodies(db, "--query", "secret") == ["dev secret"]  # "secret pizza plan" went
    if engine == "sqlite":  # FTS5's index itself no longer holds the purged rows
        conn = connect(db)
        purged_words = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'morning OR plan OR ship'"
        ).fetchone()[0]
        conn.close()
        assert purged_words == 0
    assert all(str(m["time"]) >= "2026-11-21" for m in _json(db, "logs", "--limit", "0"))
    stats = json.loads(run("stats", "--json", "--days", "100000", "--db", str(db)).output)
    assert "2026-11-20" not in stats["per_day"]
    assert stats["most_active"] == {"bob": 3, "alice": 1}
    assert run("export-logs", "--out", str(tmp_path / "after"), "--db", str(db)).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "after").iterdir()) == [
        "2026-11-21.log",
        "2026-11-22.log",
    ]
    assert run("export-history", "bob", "--db", str(db)).exit_code == 0
    history = (tmp_path / "history" / "bob.txt").read_text()
    assert "pizza for lunch" not in history and "secret pizza plan" not in history
    assert "the café is closed" in history


def test_purge_goes_chunk_by_chunk_through_a_long_history(chat_db: str) -> None:
    path = chat_db
    conn = open_database(path)
    old = local("2026-01-01 00:00:00")
    total = 2 * retention.CHUNK + 1
    with transaction(conn):
        messages.insert_many(
            conn,
            (NewMessage(old + n, Kind.PUBLIC, None, "zoe", f"line {n}") for n in range(total)),
        )
        messages.insert(conn, NewMessage(local("2026-02-01"), Kind.PUBLIC, None, "zoe", "kept"))
    conn.close()
    result = run("purge", "--before", "2026-01-31", "--yes", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert f"Deleted {total:,} messages" in result.output
    assert _bodies(path) == ["kept"]


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--before", "last week"], 2, "cannot read 'last week' as a date"),
        (["--before", "2026-02-30"], 2, "cannot read"),
        (["--before", "2999-01-01"], 2, "is in the future"),
        (["--before", "2026-11-21", "--room", "dev ops"], 2, "is not a room name"),
        (["--before", "2026-11-21", "--room", "#nowhere"], 1, "no room named '#nowhere'"),
    ],
)
def test_purge_bad_input_is_one_line(db: Path, args: list[str], code: int, error: str) -> None:
    before = _count(db)
    assert error in _error(run("purge", *args, "--yes", "--db", str(db)), code)
    assert _count(db) == before


def test_purge_in_the_future_of_an_empty_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    assert run("migrate", "--db", str(path)).exit_code == 0
    assert "in the future" in _error(run("purge", "--before", "2999-12-31", "--db", str(path)), 2)
    assert "Missing option '--before'" in run("purge", "--db", str(path)).output


# --- forget-user ---------------------------------------------------------------------


def test_forget_user_asks_first(db: Path) -> None:
    result = run("forget-user", "bob", "--db", str(db), input="n\n")
    assert result.exit_code == 1
    assert "Forget bob? This deletes the account and 5 messages" in result.output
    assert users.find(open_database(db), "bob") is not None


def test_forget_user_deletes_the_account_what_it_wrote_and_private_messages_to_it(
    db: Path, tmp_path: Path
) -> None:
    result = run("forget-user", "ALICE", "--db", str(db), input="y\n")
    assert result.exit_code == 0, result.output
    assert "Forgot alice: deleted the account and 8 messages." in result.output
    conn = open_database(db)
    assert users.find(conn, "alice") is None
    memberships = conn.execute("SELECT count(*) FROM memberships").fetchone()[0]
    assert memberships == 2  # bob in #dev, carol in #ops: alice's went with her account
    conn.close()
    everything = _json(db, "logs", "--limit", "0")
    assert all("alice" not in (m["sender"], m["recipient"]) for m in everything)
    assert _bodies(db) == [
        "morning! pizza for lunch?",
        "the café is closed",
        "zebra pizza in dev",
        "",  # carol joined #ops
    ]
    assert _bodies(db, "--query", "secret") == []  # sent by her, and sent to her
    assert _bodies(db, "--user", "alice") == []
    stats = json.loads(run("stats", "--json", "--days", "100000", "--db", str(db)).output)
    assert stats["users"] == 2 and stats["most_active"] == {"bob": 3}
    rooms_now = {r["room"]: r for r in _json(db, "rooms")}
    assert rooms_now["#dev"]["members"] == 1 and rooms_now["#general"]["members"] == 2
    assert run("export-history", "--all", "--db", str(db)).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == ["bob.txt", "carol.txt"]
    assert "alice" not in (tmp_path / "history" / "bob.txt").read_text()
    assert run("export-logs", "--db", str(db)).exit_code == 0
    exported = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "alice" not in exported and "bob: zebra pizza in dev" in exported
    assert "no user named 'alice'" in _error(run("export-history", "alice", "--db", str(db)), 1)


def test_remove_user_keeps_the_messages_forget_user_deletes(db: Path) -> None:
    assert run("remove-user", "bob", "--yes", "--db", str(db)).exit_code == 0
    assert "zebra pizza in dev" in _bodies(db, "--user", "bob")
    assert "no user named 'bob'" in _error(run("forget-user", "bob", "--yes", "--db", str(db)), 1)


def test_forget_an_unknown_user_is_one_line(db: Path) -> None:
    before = _count(db)
    assert (
        _error(run("forget-user", "nobody", "--db", str(db)), 1) == "Error: no user named 'nobody'"
    )
    assert _count(db) == before


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
    future = _admin("purge", "--before", "2999-01-01", "--db", str(db), cwd=tmp_path)
    assert future.returncode == 2 and future.stderr.count("\n") == 1
    assert "Traceback" not in future.stderr
    refused = _admin("purge", "--before", "2026-11-21", "--db", str(db), cwd=tmp_path)
    assert refused.returncode != 0 and "Aborted" in refused.stderr  # no answer on stdin
    purged = _admin("purge", "--before", "2026-11-21", "--yes", "--db", str(db), cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == "Deleted 6 messages sent before 2026-11-21 00:00:00.\n"
    forgot = _admin("forget-user", "bob", "--yes", "--db", str(db), cwd=tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout == "Forgot bob: deleted the account and 3 messages.\n"
    searched = _admin("logs", "--query", "pizza", "--json", "--db", str(db), cwd=tmp_path)
    assert json.loads(searched.stdout) == []
    gone = _admin("forget-user", "bob", "--yes", "--db", str(db), cwd=tmp_path)
    assert gone.returncode == 1 and gone.stderr == "Error: no user named 'bob'\n"
