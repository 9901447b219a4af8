"""Graceful shutdown: tell the clients, keep every acknowledged message, stop in time."""

from __future__ import annotations

from pathlib import Path

from chatd.storage import open_database
from tests.conftest import RunningServer


def test_stop_tells_clients_and_keeps_every_acknowledged_message(
    make_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    server: RunningServer = make_server(rate_per_second=0)
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.send(b"".join(f"burst {i}\n".encode() for i in range(300)))
    alice.expect("^You said: burst 0$")
    server.stop()
    tail = alice.wait_closed()
    acknowledged = [line for line in alice.received if line.startswith("You said: burst")]
    assert any("shutting down" in line for line in tail)
    assert any("shutting down" in line for line in bob.wait_closed())
    with open_database(tmp_path / "chat.db") as conn:
        stored = {row[0] for row in conn.execute("SELECT body FROM messages WHERE kind = 'public'")}
    assert {line.removeprefix("You said: ") for line in acknowledged} <= stored


def test_sessions_leave_with_a_stored_leave_event(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server()
    server.login("alice", "pass123")
    server.stop()
    with open_database(tmp_path / "chat.db") as conn:
        kinds = [row[0] for row in conn.execute("SELECT kind FROM messages ORDER BY id")]
    assert kinds == ["join", "leave"]
