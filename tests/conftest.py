"""Fixtures: a real chatd server on a free port with a temporary database, and line clients.

Every test runs in its own temporary directory (so nothing touches real
data) with a low bcrypt cost.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatd.server import ChatServer
from chatd.settings import Settings

TIMEOUT = 10.0  # seconds any single expectation may take before the test fails

SAMPLE_USERS = "alice:pass123\nbob:qwerty\nadmin:admin123\ncarol:carol-pw\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATD_BCRYPT_ROUNDS", "4")
    for name in list(os.environ):
        if name.startswith("CHATD_") and name != "CHATD_BCRYPT_ROUNDS":
            monkeypatch.delenv(name)


def wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.005)


class RunningServer:
    """A ChatServer running on its own event loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = ChatServer(settings)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError("server did not start")
        if self._error is not None:
            raise self._error

    @property
    def port(self) -> int:
        return self.server.port

    def _run(self) -> None:
        async def main() -> None:
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.server.serve()

        asyncio.run(main())

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.request_stop()
            self._thread.join(TIMEOUT * 2)
            assert not self._thread.is_alive(), "server did not stop"

    def connect(self) -> LineClient:
        return LineClient(self.port)

    def login(self, username: str, password: str) -> LineClient:
        client = self.connect()
        client.login(username, password)
        return client


class LineClient:
    """A test client over a real socket: send lines, expect lines matching a pattern."""

    def __init__(self, port: int, host: str = "127.0.0.1", source: str | None = None) -> None:
        """Connect to `host`, from the local address `source` (another 127.x) if given."""
        self.sock = socket.create_connection(
            (host, port), timeout=TIMEOUT, source_address=(source, 0) if source else None
        )
        self.buffer = b""
        self.received: list[str] = []  # every line read so far
        self.name = ""

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else (line + "\n").encode()
        self.sock.sendall(data)

    def read_line(self, timeout: float = TIMEOUT) -> str | None:
        """The next line, or None when the server has closed the connection."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete line within {timeout}s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode("utf-8").removesuffix("\r")
        self.received.append(line)
        return line

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Read lines until one matches `pattern` (re.search); fail on timeout or close."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.read_line(max(remaining, 0.001))
            except TimeoutError:
                pytest.fail(
                    f"{self.name or 'client'}: no line matching {pattern!r}; {self._tail()}"
                )
            if line is None:
                pytest.fail(
                    f"{self.name or 'client'}: closed while expecting {pattern!r}; {self._tail()}"
                )
            match = regex.search(line)
            if match:
                return match

    def _tail(self) -> str:
        shown = [line if len(line) <= 100 else line[:100] + "..." for line in self.received[-8:]]
        return f"last lines: {shown}"

    def lines_until(self, pattern: str, timeout: float = TIMEOUT) -> list[str]:
        """Every line up to and including the one matching `pattern`."""
        start = len(self.received)
        self.expect(pattern, timeout)
        return self.received[start:]

    def login(self, username: str, password: str) -> None:
        self.name = username
        self.expect("^Username:")
        self.send(username)
        self.expect("^Password:")
        self.send(password)
        self.expect(f"^Welcome, {re.escape(username)}!")

    def wait_closed(self, timeout: float = TIMEOUT) -> list[str]:
        """Read until the server closes the connection; return the lines read meanwhile."""
        start = len(self.received)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{self.name or 'client'}: connection still open")
            try:
                if self.read_line(remaining) is None:
                    return self.received[start:]
            except TimeoutError:
                continue

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.txt"
    path.write_text(SAMPLE_USERS)
    return path


@pytest.fixture
def make_server(tmp_path: Path, users_file: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start servers on free ports (all stopped at the end of the test)."""
    started: list[RunningServer] = []

    def start(**overrides: Any) -> RunningServer:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "db": tmp_path / "chat.db",
            "users_file": users_file,
            "bcrypt_rounds": 4,
        }
        options.update(overrides)
        running = RunningServer(Settings(**options).checked())
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
