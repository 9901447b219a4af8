"""The installed `chatd serve` console script, run as a real subprocess."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT, LineClient


def chatd_command() -> list[str]:
    script = shutil.which("chatd", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "chatd"]


def start_serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [*chatd_command(), "serve", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHATD_BCRYPT_ROUNDS": "4"},
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()  # blocks until the server prints (or dies)
    if not first_line.startswith("[+] Server started on port "):
        process.kill()
        pytest.fail(f"unexpected first line {first_line!r}; stderr: {process.communicate()[1]}")
    return process, int(first_line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_chatd_serve_runs_and_stops_cleanly_on_sigterm(
    tmp_path: Path, users_file: Path, event_loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On uvloop's event loop (the default where it is installed) and on asyncio's."""
    if event_loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed here")
    else:
        monkeypatch.setenv("CHATD_EVENT_LOOP", "asyncio")
    process, port = start_serve(tmp_path, "--log-level", "DEBUG")
    try:
        alice = LineClient(port)
        alice.login("alice", "pass123")
        alice.send("Hello")
        alice.expect("^You said: Hello$")
        process.send_signal(signal.SIGTERM)
        tail = alice.wait_closed()
        assert any("shutting down" in line for line in tail)
        assert process.wait(TIMEOUT) == 0
    finally:
        process.kill()
    stdout, stderr = process.communicate()
    assert "Server started" not in stdout  # printed exactly once, already read
    assert f"event loop: {event_loop}" in stderr
    assert (tmp_path / "chat.db").exists()


def test_chatd_serve_stops_on_sigint(tmp_path: Path, users_file: Path) -> None:
    process, port = start_serve(tmp_path)
    LineClient(port).expect("^Username:")
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT) == 0


def test_chatd_serve_reports_a_busy_port_in_one_line(tmp_path: Path, users_file: Path) -> None:
    first, port = start_serve(tmp_path)
    try:
        second = subprocess.run(
            [*chatd_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert second.returncode != 0
        assert second.stderr.strip().splitlines()[-1].startswith("Error: cannot listen")
        assert "Traceback" not in second.stderr
    finally:
        first.terminate()
        first.wait(TIMEOUT)


def test_chatd_serve_refuses_a_bad_users_file_with_its_line_number(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text("alice:pass123\nno colon here\n")
    result = subprocess.run(
        [*chatd_command(), "serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: users.txt:2: expected username:password"
    )


def test_chatd_version_and_python_dash_m(tmp_path: Path) -> None:
    from chatd import __version__

    for command in (chatd_command(), [sys.executable, "-m", "chatd"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == f"chatd {__version__}"


def test_settings_come_from_flags_and_environment(tmp_path: Path, users_file: Path) -> None:
    result = subprocess.run(
        [*chatd_command(), "serve", "--max-line-bytes", "10"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "--max-line-bytes must be at least 64" in result.stderr
    result = subprocess.run(
        [*chatd_command(), "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "CHATD_PORT": "70000"},
    )
    assert result.returncode == 2
    assert "--port must be at most 65535" in result.stderr


def test_a_stalled_stderr_never_blocks_the_server(tmp_path: Path, users_file: Path) -> None:
    # stderr is a pipe nobody reads: after 64 KiB a plain log handler would block
    process, port = start_serve(tmp_path, "--max-per-address", "1")
    try:
        alice = LineClient(port)
        alice.expect("^Username:")
        for _ in range(1500):  # each refusal logs a warning of about 100 bytes
            refused = LineClient(port)
            refused.wait_closed()
            refused.close()
        alice.send("alice")
        alice.send("pass123")
        alice.expect("^Welcome, alice!")
        alice.send("still answering")
        alice.expect("^You said: still answering$")
    finally:
        process.kill()
        process.wait(TIMEOUT)


def test_ready_line_arrives_whole_when_stdout_and_stderr_share_a_pipe(
    tmp_path: Path, users_file: Path
) -> None:
    # `chatd serve 2>&1 | tee serve.log` with PYTHONUNBUFFERED=1: the log thread
    # writes to the same pipe while the ready line is printed.
    processes = [
        subprocess.Popen(
            [*chatd_command(), "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "CHATD_BCRYPT_ROUNDS": "4",
                "CHATD_LOG_LEVEL": "DEBUG",
                "CHATD_DB": f"chat{n}.db",
                "PYTHONUNBUFFERED": "1",
            },
        )
        for n in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            for line in process.stdout:
                if "Server started" in line:
                    assert re.fullmatch(r"\[\+\] Server started on port \d+\n", line), line
                    break
            else:
                pytest.fail("no ready line")
    finally:
        for process in processes:
            process.terminate()
            process.wait(TIMEOUT)
