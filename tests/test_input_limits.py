"""Bad input: over-long lines, invalid UTF-8, escape injection, empty lines."""

from __future__ import annotations

from pathlib import Path

from chatd.storage import open_database
from tests.conftest import RunningServer


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_100_mib_line_without_newline_costs_only_the_bound(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    chunk = b"x" * (1 << 20)
    before = _rss_kib()
    for _ in range(100):  # 100 MiB, no newline
        alice.sock.sendall(chunk)
    grown_kib = _rss_kib() - before
    alice.expect("^Error: line too long .*ignored")
    alice.send("\nafter the flood")  # the over-long line ends; the session goes on
    alice.expect("^You said: after the flood$")
    bob.expect("^alice: after the flood$")
    assert grown_kib < 16 * 1024, f"the server grew by {grown_kib} KiB"


def test_lines_at_and_over_the_limit(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_line_bytes=100)
    alice = server.login("alice", "pass123")
    alice.send("a" * 100)
    alice.expect("^You said: a{100}$")
    alice.send("b" * 101)
    alice.expect(r"^Error: line too long \(at most 100 bytes\)")
    alice.send("still here")
    alice.expect("^You said: still here$")


def test_invalid_utf8_gets_a_clear_error_and_the_session_goes_on(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send(b"caf\xe9 latin-1\n\xff\xfe\x00\n")
    alice.expect("^Error: that line was not valid UTF-8")
    alice.expect("^Error: that line was not valid UTF-8")
    alice.send("café in UTF-8")
    alice.expect("^You said: café in UTF-8$")


def test_invalid_utf8_at_the_login_prompt(server: RunningServer) -> None:
    client = server.connect()
    client.expect("^Username:")
    client.send(b"\xff\xff\n")
    client.expect("^Error: that line was not valid UTF-8")
    client.send("alice")
    client.expect("^Password:")
    client.send("pass123")
    client.expect("^Welcome, alice!")


def test_escape_sequences_are_never_stored_or_forwarded(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    attack = (
        "\x1b[2J\x1b[H\x1b]0;owned\x07"  # clear the screen, set the window title
        "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\"  # a disguised hyperlink
        " me\x07\x9b6n\x00!"  # bell, a C1 cursor report request, NUL
    )
    alice.send(attack)
    alice.expect("^You said: click me!$")
    assert bob.expect("^alice: ").string == "alice: click me!"
    alice.send("/msg bob \x1b[31mred\x1b[0m alert")
    bob.expect(r"^\[private\] alice: red alert$")
    conn = open_database(tmp_path / "chat.db")
    bodies = [row[0] for row in conn.execute("SELECT body FROM messages")]
    assert "click me!" in bodies and "red alert" in bodies
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" for body in bodies for ch in body)


def test_a_line_of_only_escapes_is_ignored_like_an_empty_one(server: RunningServer) -> None:
    alice = server.login("alice", "pass123")
    alice.send(b"\n\r\n   \n\x1b[2J\n\x07\n")
    alice.send("real")
    assert alice.lines_until("^You said: real$") == ["You said: real"]
