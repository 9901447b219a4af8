"""chatd-admin while a live server is busy: no "database is locked", nothing lost."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from chatd.storage import open_database
from tests.admin_helpers import run
from tests.conftest import LineClient, RunningServer


def test_admin_commands_work_while_clients_chat(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(rate_per_second=0)
    db = str(tmp_path / "chat.db")
    talkers = [server.login(n, p) for n, p in (("alice", "pass123"), ("bob", "qwerty"))]
    stop = threading.Event()
    acknowledged: list[str] = []

    def chat(client: LineClient) -> None:
        number = 0
        while not stop.is_set():
            text = f"{client.name} busy {number}"
            client.send(text)
            client.expect(f"^You said: {text}$")
            acknowledged.append(text)
            number += 1

    threads = [threading.Thread(target=chat, args=(c,), daemon=True) for c in talkers]
    for thread in threads:
        thread.start()
    try:
        (tmp_path / "more.txt").write_text("dave:d-pw\nerin:e-pw\n")
        commands = [
            ("add-user", "frank", "--password-stdin"),
            ("passwd", "carol", "--password-stdin"),
            ("disable-user", "frank"),
            ("enable-user", "frank"),
            ("set-role", "carol", "admin"),
            ("import-users", str(tmp_path / "more.txt")),
            ("list-users",),
            ("logs", "--query", "busy", "--limit", "5"),
            ("logs", "--user", "alice", "--json"),
            ("stats",),
            ("export-logs", "--out", str(tmp_path / "logs")),
            ("export-history", "--all", "--out", str(tmp_path / "history")),
            ("remove-user", "frank", "--yes"),
            ("migrate",),
        ]
        for _ in range(2):
            for command in commands:
                result = run(*command, "--db", db, input="pw-1\n")
                assert result.exit_code == 0, (command, result.output)
                assert "locked" not in result.output
        subprocess_result = subprocess.run(
            [str(Path(sys.executable).parent / "chatd-admin"), "stats", "--db", db],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert subprocess_result.returncode == 0, subprocess_result.stderr
        assert len(acknowledged) > 10  # the chat went on meanwhile
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    conn = open_database(db)
    stored = {row[0] for row in conn.execute("SELECT body FROM messages WHERE kind = 'public'")}
    assert set(acknowledged) <= stored
