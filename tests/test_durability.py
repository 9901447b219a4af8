"""Kill the server under load: every acknowledged message must be in the database."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

from tests.conftest import LineClient, wait_for
from tests.test_serve_command import start_serve

SENDERS = [("alice", "pass123"), ("bob", "qwerty"), ("carol", "carol-pw")]


class Chatter(threading.Thread):
    """Sends numbered messages in bursts of 8 until the server goes away; records each ack."""

    def __init__(self, port: int, username: str, password: str) -> None:
        super().__init__(daemon=True)
        self.client = LineClient(port)
        self.client.login(username, password)
        self.sent: list[str] = []
        self.acknowledged: list[str] = []

    def run(self) -> None:
        number = 0
        try:
            while True:
                burst = [f"{self.client.name}-{number + i}" for i in range(8)]
                number += 8
                self.client.send("".join(f"{text}\n" for text in burst).encode())
                self.sent += burst
                for _ in burst:
                    line = self.client.read_line()
                    if line is None:
                        return
                    while not line.startswith("You said: "):
                        line = self.client.read_line()
                        if line is None:
                            return
                    self.acknowledged.append(line.removeprefix("You said: "))
        except OSError:
            return


def _stored(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT body FROM messages WHERE kind='public'")}
    finally:
        conn.close()


def _chat_until(port: int, acknowledged: int) -> list[Chatter]:
    chatters = [Chatter(port, name, password) for name, password in SENDERS]
    for chatter in chatters:
        chatter.start()
    wait_for(lambda: sum(len(c.acknowledged) for c in chatters) >= acknowledged, what="acks")
    return chatters


def test_sigkill_under_load_loses_no_acknowledged_message(tmp_path: Path, users_file: Path) -> None:
    process, port = start_serve(tmp_path, "--rate-per-second", "0")
    chatters = _chat_until(port, 600)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    for chatter in chatters:
        chatter.join(10)
    acknowledged = {text for c in chatters for text in c.acknowledged}
    # The database opens (WAL recovery) and holds every acknowledged message.
    restarted, port = start_serve(tmp_path)
    try:
        stored = _stored(tmp_path / "chat.db")
        assert acknowledged <= stored
        assert stored <= {text for c in chatters for text in c.sent}
        alice = LineClient(port)
        alice.login("alice", "pass123")
        alice.send("/history 1")
        alice.expect(r"alice: alice-\d+$")
    finally:
        restarted.terminate()
        restarted.wait(10)


def test_sigterm_under_load_commits_what_was_received_and_exits_zero(
    tmp_path: Path, users_file: Path
) -> None:
    process, port = start_serve(tmp_path, "--rate-per-second", "0")
    chatters = _chat_until(port, 600)
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    took = time.monotonic() - stopping
    for chatter in chatters:
        chatter.join(10)
    acknowledged = {text for c in chatters for text in c.acknowledged}
    stored = _stored(tmp_path / "chat.db")
    assert acknowledged == stored  # every stored message was acknowledged, and vice versa
    assert took < 5, f"shutdown took {took:.1f} s"
    _, stderr = process.communicate()
    assert "Traceback" not in stderr


def test_sigterm_with_an_idle_crowd_is_quick(tmp_path: Path, users_file: Path) -> None:
    process, port = start_serve(tmp_path)
    clients = [LineClient(port) for _ in range(30)]
    for client in clients:
        client.expect("^Username:")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    for client in clients:
        assert any("shutting down" in line for line in client.wait_closed())
