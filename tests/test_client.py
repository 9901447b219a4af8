"""`chatd connect`: in a real pseudo-terminal (pexpect) and piped, against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import TIMEOUT, LineClient, RunningServer, free_port

CHATD = str(Path(sys.executable).parent / "chatd")


def spawn(port: int, *args: str, **env: str) -> pexpect.spawn:
    """The client in a real terminal of 100x30."""
    child = pexpect.spawn(
        CHATD,
        ["connect", "127.0.0.1", "--port", str(port), *args],
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(30, 100),
        # pexpect's terminal does not answer cursor-position requests
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", **env},
    )
    return child


def converse(child: pexpect.spawn, *exchanges: tuple[str, str]) -> None:
    """For each (pattern, answer): wait for the pattern, then type the answer and Enter."""
    for pattern, answer in exchanges:
        child.expect(pattern)
        child.sendline(answer)


def log_in(child: pexpect.spawn, user: str = "alice", password: str = "pass123") -> None:
    converse(child, ("Username:", user), ("Password:", password))
    child.expect(f"Welcome, {user}!")
    child.expect(">")  # the prompt is up: keys typed from now on reach it


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the client to end; its exit status and everything it printed."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before or ""


def piped(
    port: int, stdin: str, *args: str, password: str | None = "pass123"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CHATD_PASSWORD"}
    if password is not None:
        env["CHATD_PASSWORD"] = password
    return subprocess.run(
        [CHATD, "connect", "127.0.0.1", "--port", str(port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        env=env,
    )


# --- interactive --------------------------------------------------------------------


def test_interactive_chat_while_messages_arrive(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    bob = server.login("bob", "qwerty")
    child.send("typing slo")  # half a line typed...
    bob.send("hi alice")  # ...when a message arrives
    child.expect(r"\d\d:\d\d .*bob.*: hi alice")
    child.send("wly\r")  # the line was not garbled: it goes out whole
    child.expect("You said: typing slowly")
    bob.expect("^alice: typing slowly$")
    child.sendline("/quit")
    child.expect("Disconnected from server.")
    status, _ = finish(child)
    assert status == 0


def test_passwords_are_never_echoed(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    assert "pass123" not in (child.before or "")
    child.send("chat is visible")  # only the password was hidden
    child.expect("chat is visible")
    child.send("\r")
    child.sendline("/passwd")
    converse(
        child,
        ("Current password:", "pass123"),
        ("New password:", "n3w-pw-9"),
        ("Repeat the new password:", "n3w-pw-9"),
    )
    child.expect("Password changed")
    child.sendline("/quit")
    status, rest = finish(child)
    assert status == 0
    assert "n3w-pw-9" not in rest


def test_user_and_password_from_the_environment(server: RunningServer) -> None:
    child = spawn(server.port, "--user", "alice", CHATD_PASSWORD="pass123")
    child.expect("Welcome, alice!")
    child.expect(">")
    child.sendline("/users")
    child.expect("Active users: alice")
    child.expect(">")  # printed, and the prompt is back (see test_ctrl_d_quits_cleanly)
    child.sendcontrol("d")
    status, _ = finish(child)
    assert status == 0


def test_arrow_up_recalls_the_previous_input(server: RunningServer) -> None:
    child = spawn(server.port, "--user", "alice", CHATD_PASSWORD="pass123")
    child.expect("Welcome, alice!")
    child.expect(">")
    child.sendline("first line")
    child.expect("You said: first line")
    child.expect(">")
    child.send("\x1b[A\r")  # up arrow, Enter: the same line again
    child.expect("You said: first line")
    child.sendline("/quit")
    assert finish(child)[0] == 0


def test_ctrl_d_quits_cleanly(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    bob = server.login("bob", "qwerty")
    # Printing a line above the prompt puts the terminal in cooked mode for a
    # moment (prompt_toolkit's run_in_terminal), where the tty itself would
    # take a Ctrl-D: wait until bob's arrival has been shown.
    child.expect("bob joined")
    child.expect(">")
    child.sendcontrol("d")
    status, _ = finish(child)
    assert status == 0
    bob.expect(r"^\*\*\* alice left$")


def test_ctrl_c_ends_with_a_message(server: RunningServer) -> None:
    child = spawn(server.port)
    log_in(child)
    child.sendcontrol("c")
    child.expect("Interrupted.")
    status, rest = finish(child)
    assert status == 130
    assert "Traceback" not in rest


def test_server_shutdown_ends_the_client(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server()
    child = spawn(server.port)
    log_in(child)
    child.send("half a line")
    server.stop()
    child.expect("shutting down")
    child.expect("Connection closed by the server.")
    status, rest = finish(child)
    assert status == 1
    assert "Traceback" not in rest


def test_interactive_failed_login_ends_after_the_servers_last_refusal(
    server: RunningServer,
) -> None:
    child = spawn(server.port)
    for _ in range(server.settings.login_attempts):
        converse(child, ("Username:", "alice"), ("Password:", "wrong"))
        child.expect("Login failed")
    status, rest = finish(child)
    assert status == 3
    assert "Traceback" not in rest


def test_wrong_password_from_the_environment_fails_at_once(server: RunningServer) -> None:
    child = spawn(server.port, "--user", "alice", CHATD_PASSWORD="nope")
    child.expect("Login failed")
    assert finish(child)[0] == 3


def test_refused_connection_is_one_line(server: RunningServer) -> None:
    child = spawn(free_port())
    status, text = finish(child)
    assert status == 2
    assert (
        text.strip()
        == f"Error: cannot connect to 127.0.0.1:{child.args[-1].decode()}: Connection refused"
    )


# --- piped ------------------------------------------------------------------------------


def test_piped_mode_prints_the_answers_and_exits_zero(server: RunningServer) -> None:
    result = piped(server.port, "Hello\n/users\n", "--user", "alice")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["You said: Hello", "Active users: alice"]
    assert result.stderr == ""


def test_piped_mode_sees_other_users(server: RunningServer) -> None:
    bob = server.login("bob", "qwerty")
    result = piped(server.port, "hi bob\n/msg bob psst\n/quit\n", "--user", "alice")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "You said: hi bob",
        "[private] You said to bob: psst",
        "Disconnected from server.",  # the script asked for /quit, so it sees the answer
    ]
    bob.expect(r"^\[private\] alice: psst$")


def test_piped_password_from_stdin(server: RunningServer) -> None:
    result = piped(
        server.port, "pass123\n/users\n", "--user", "alice", "--password-stdin", password=None
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Active users: alice"]


def test_piped_mode_paces_a_long_script_under_the_rate_limit(server: RunningServer) -> None:
    lines = "".join(f"line {i}\n" for i in range(24))
    result = piped(server.port, lines, "--user", "alice")  # default pace: 20 at once, 4/s
    assert result.returncode == 0
    assert [line for line in result.stdout.splitlines() if line.startswith("You said")] == [
        f"You said: line {i}" for i in range(24)
    ]


@pytest.mark.parametrize(
    ("args", "password", "status", "error"),
    [
        (["--user", "alice"], "wrong", 3, "Login failed"),
        ([], "pass123", 2, "give --user"),
        (["--user", "alice"], None, 2, "CHATD_PASSWORD"),
    ],
)
def test_piped_mode_errors(
    server: RunningServer, args: list[str], password: str | None, status: int, error: str
) -> None:
    result = piped(server.port, "Hello\n", *args, password=password)
    assert result.returncode == status
    assert error in result.stderr
    assert result.stderr.count("\n") == 1


def piped_and_logged_in(port: int) -> subprocess.Popen[str]:
    """A piped client whose stdin stays open, once it has said one message."""
    process = subprocess.Popen(
        [CHATD, "connect", "127.0.0.1", "--port", str(port), "--user", "alice"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHATD_PASSWORD": "pass123"},
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("ready\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "You said: ready"
    return process


def test_piped_mode_when_the_server_goes_away(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server()
    process = piped_and_logged_in(server.port)
    server.stop()  # stdin stays open: the client must notice by itself
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 1
    assert "shutting down" in out
    assert err.strip() == "Error: connection closed by the server."


def test_refused_connection_in_piped_mode(tmp_path: Path) -> None:
    result = piped(free_port(), "Hello\n", "--user", "alice")
    assert result.returncode == 2
    assert "Connection refused" in result.stderr


def test_sigint_in_piped_mode_ends_without_traceback(server: RunningServer) -> None:
    process = piped_and_logged_in(server.port)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130
    assert "Traceback" not in err and "Interrupted" in err


# --- safety and TLS -------------------------------------------------------------------------


@pytest.fixture
def hostile_server() -> Iterator[int]:
    """A fake server that logs anyone in and then sends terminal escape sequences."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"Username:\r\n")
            conn.recv(100)
            conn.sendall(b"Password:\r\n")
            conn.recv(100)
            conn.sendall(
                b"Welcome, alice!\r\n"
                b"\x1b]0;pwned title\x07mallory: \x1b[2J\x1b[31mred\x1b[0m"
                b" and \x07bell\xc2\x9b6n\r\n"
            )
            conn.recv(100)  # the client's /quit
            conn.sendall(b"Disconnected from server.\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    listener.close()
    thread.join(TIMEOUT)


def test_escape_sequences_from_the_server_never_reach_the_output(hostile_server: int) -> None:
    result = piped(hostile_server, "", "--user", "alice")
    assert result.stdout == "mallory: red and bell\n"


def test_escape_sequences_never_reach_the_terminal(hostile_server: int) -> None:
    child = spawn(hostile_server, "--user", "alice", CHATD_PASSWORD="x")
    child.expect("red and bell")
    shown = child.before + child.after
    assert "pwned" not in shown and "\x07" not in shown and "\x1b[2J" not in shown
    child.sendline("/quit")
    assert finish(child)[0] == 0


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    import trustme

    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return ca_file, cert_file, key_file


def test_tls_with_a_trusted_certificate(make_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ca_file, cert_file, key_file = tls_files
    server: RunningServer = make_server(tls_cert=cert_file, tls_key=key_file)
    result = piped(server.port, "over tls\n", "--user", "alice", "--tls", "--cafile", str(ca_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["You said: over tls"]
    unverified = piped(server.port, "x\n", "--user", "alice", "--tls")
    assert unverified.returncode == 2
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.stderr
    insecure = piped(server.port, "y\n", "--user", "alice", "--tls", "--insecure")
    assert insecure.returncode == 0
    plain = LineClient(server.port)  # a plain-text client gets nowhere
    plain.send("alice")
    assert plain.wait_closed() == []
