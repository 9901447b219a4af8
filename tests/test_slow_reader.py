"""A client that stops reading is cut off (SendQ exceeded) and nobody else notices."""

from __future__ import annotations

import socket

from tests.conftest import LineClient, RunningServer


def test_slow_reader_is_disconnected_without_stalling_others(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(rate_per_second=0, sendq_bytes=16384)
    sleeper = LineClient.__new__(LineClient)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    sock.connect(("127.0.0.1", server.port))
    sleeper.sock, sleeper.buffer, sleeper.received, sleeper.name = sock, b"", [], "bob"
    sleeper.login("bob", "qwerty")

    alice = server.login("alice", "pass123")
    carol = server.login("carol", "carol-pw")
    padding = "x" * 900
    for batch in range(10):  # about 450 KB for each reader
        alice.send(b"".join(f"{batch}-{i} {padding}\n".encode() for i in range(50)))
        alice.expect(f"^You said: {batch}-49 ")
        carol.expect(f"^alice: {batch}-49 ")  # carol keeps up all along
    carol.send("/users")
    carol.expect("^Active users: alice, carol$")
    assert "*** bob was disconnected (SendQ exceeded)" in carol.received
    sock.close()
