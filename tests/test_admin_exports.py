"""chatd-admin export-history and export-logs: exact paths, whole days, atomic files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.admin_helpers import run, seed

# Run on SQLite and on PostgreSQL (see tests/conftest.py).
pytestmark = pytest.mark.both_engines


@pytest.fixture
def db(chat_db: str) -> str:
    seed(chat_db)
    return chat_db


def test_export_history_writes_history_user_txt(db: Path, tmp_path: Path) -> None:
    result = run("export-history", "alice", "--db", str(db))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "history" / "alice.txt").read_text()
    assert text.splitlines() == [
        "2026-11-20 09:00:05 alice: good morning everyone",
        "2026-11-20 09:02:00 alice -> bob (private): secret pizza plan",
        "2026-11-21 14:31:00 alice: evil \\x1b[2J escape",
    ]
    bob = run("export-history", "BOB", "--db", str(db))
    assert bob.exit_code == 0
    assert "secret pizza plan" in (tmp_path / "history" / "bob.txt").read_text()


def test_export_history_to_a_chosen_file_and_for_everyone(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "a.txt"
    assert run("export-history", "alice", "--out", str(out), "--db", str(db)).exit_code == 0
    assert out.read_text().count("\n") == 3
    result = run("export-history", "--all", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == [
        "alice.txt",
        "bob.txt",
        "carol.txt",
    ]


def test_export_history_errors(db: Path) -> None:
    assert "no user named" in run("export-history", "nobody", "--db", str(db)).output
    assert run("export-history", "--db", str(db)).exit_code == 2
    assert run("export-history", "alice", "--all", "--db", str(db)).exit_code == 2


def test_export_logs_writes_one_file_per_day_with_public_lines(db: Path, tmp_path: Path) -> None:
    result = run("export-logs", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "Wrote 2 files" in result.output
    first = (tmp_path / "logs" / "2026-11-20.log").read_text().splitlines()
    assert first == [
        "2026-11-20 09:00:00 *** alice joined",
        "2026-11-20 09:00:05 alice: good morning everyone",
        "2026-11-20 09:01:00 bob: morning! pizza for lunch?",
    ]
    second = (tmp_path / "logs" / "2026-11-21.log").read_text()
    assert "secret" not in second  # private messages are not in the public log
    assert "*** alice left" in second


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York"])
def test_export_logs_shows_local_times_or_utc(
    zone: str, chat_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        seed(chat_db)  # its times are local: 09:00 on 2026-11-20 in `zone`
        assert run("export-logs", "--db", chat_db).exit_code == 0
        local = (tmp_path / "logs" / "2026-11-20.log").read_text().splitlines()
        assert local[0] == "2026-11-20 09:00:00 *** alice joined"
        assert run("export-logs", "--utc", "--out", "utc", "--db", chat_db).exit_code == 0
        utc = (tmp_path / "utc" / "2026-11-20.log").read_text().splitlines()
        expected = "03:30:00" if zone == "Asia/Kolkata" else "14:00:00"
        assert utc[0] == f"2026-11-20 {expected} *** alice joined"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_export_logs_for_one_date_or_a_range(db: Path, tmp_path: Path) -> None:
    assert run("export-logs", "--date", "2026-11-21", "--db", str(db)).exit_code == 0
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["2026-11-21.log"]
    out = tmp_path / "range"
    result = run(
        "export-logs",
        "--since",
        "2026-11-19",
        "--until",
        "2026-11-20",
        "--out",
        str(out),
        "--db",
        str(db),
    )
    assert result.exit_code == 0
    assert [p.name for p in out.iterdir()] == ["2026-11-20.log"]


def test_export_logs_errors(db: Path) -> None:
    assert run("export-logs", "--date", "someday", "--db", str(db)).exit_code == 2
    both = run("export-logs", "--date", "2026-11-21", "--since", "2026-11-20", "--db", str(db))
    assert both.exit_code == 2


def test_exports_replace_files_atomically_and_leave_no_temporary_files(
    db: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    stale = logs / "2026-11-20.log"
    stale.write_text("old contents\n")
    inode = stale.stat().st_ino
    assert run("export-logs", "--db", str(db)).exit_code == 0
    assert stale.stat().st_ino != inode  # a new file renamed over the old one
    assert "old contents" not in stale.read_text()
    assert sorted(os.listdir(logs)) == ["2026-11-20.log", "2026-11-21.log"]
