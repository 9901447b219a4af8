"""Fixtures: a real chatd server on a free port with a temporary database, and line clients.

Every test runs in its own temporary directory (so nothing touches real
data) with a low bcrypt cost. Its database is a SQLite file there; tests
marked `both_engines` run once on SQLite and once on PostgreSQL, in a
database of the test run's own (a random name, emptied before each test,
dropped at the end), on the server at CHATD_TEST_POSTGRES (default: the
local one). Without a PostgreSQL server those runs are skipped with
the reason, except under CI=true, where they fail.

Tests that restart PostgreSQL or log in with a password use a cluster of the
run's own instead (`private_postgres`, tests/pg_cluster.py): the shared server
is never restarted.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from chatd.server import ChatServer, event_loop_factory
from chatd.settings import Settings
from tests import pg_cluster
from tests.pg_cluster import PrivateCluster

TIMEOUT = 10.0  # seconds any single expectation may take before the test fails

SAMPLE_USERS = "alice:pass123\nbob:qwerty\nadmin:admin123\ncarol:carol-pw\n"

ENGINES = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get(
    "CHATD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked both_engines run on each engine; the others on SQLite only."""
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_engines"):
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine of this test: "sqlite", or "postgresql" (see both_engines)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL database to create test databases from, or a skip."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except Exception as exc:
        why = f"no PostgreSQL at {POSTGRES_URL}: {' '.join(str(exc).split())}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (under CI the PostgreSQL tests must run)")
        pytest.skip(why)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test run's own (tests/pg_cluster.py), for the tests
    that restart the database or need password logins: started once, on first use,
    and removed at the end. Skipped, with the reason, where PostgreSQL's binaries or
    its system user are missing, except under CI=true, where it fails."""
    why = pg_cluster.unavailable()
    if why is None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            why = "psycopg is not installed: pip install -e '.[test]'"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (under CI the PostgreSQL tests must run)")
        pytest.skip(why)
    cluster = PrivateCluster(free_port())
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_database(private_postgres: PrivateCluster) -> Iterator[str]:
    """A new database on the private cluster, owned by the role `chat` and migrated;
    its URL logs in as `chat` with the role's password. Dropped at the end."""
    import psycopg

    from chatd.storage import open_database

    name = f"chatd_test_{secrets.token_hex(6)}"
    superuser = private_postgres.url(user=pg_cluster.SUPERUSER)
    with psycopg.connect(superuser, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER {pg_cluster.ROLE}")
    url = private_postgres.url(name)
    try:
        open_database(url).close()
        yield url
    finally:
        with psycopg.connect(superuser, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def _new_postgres_database(server: str) -> Iterator[str]:
    """A database of its own (a random name), dropped at the end."""
    import psycopg

    name = f"chatd_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# Empties a migrated database as if it were new: creating a database per test
# costs PostgreSQL 0.2-1 s of disk work, emptying one a few milliseconds.
_EMPTY_AGAIN = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();
TRUNCATE users, rooms, memberships, messages, nodes, kicks RESTART IDENTITY CASCADE;
INSERT INTO rooms (id, name, created_at) VALUES (1, '#general', 0);
SELECT setval(pg_get_serial_sequence('rooms', 'id'), 1);
"""


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[tuple[str, Any]]:
    """This test run's own PostgreSQL database, migrated, with a connection to empty it."""
    import psycopg

    from chatd.storage import open_database

    with _new_postgres_database(postgres_server) as url:
        open_database(url).close()
        with psycopg.connect(url, autocommit=True) as keeper:
            yield url, keeper


@pytest.fixture
def chat_db(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The --db of this test: a SQLite file in its directory (created on first use), or
    the run's PostgreSQL database, emptied for it (current schema, no rows, ids from 1)."""
    if engine == "sqlite":
        return str(tmp_path / "chat.db")
    url, keeper = request.getfixturevalue("postgres_database")
    keeper.execute(_EMPTY_AGAIN)
    return str(url)


@pytest.fixture
def blank_db(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema yet: a SQLite file, or a new PostgreSQL database."""
    if engine == "sqlite":
        yield str(tmp_path / "chat.db")
        return
    with _new_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


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

        with asyncio.Runner(
            loop_factory=event_loop_factory(self.settings)
        ) as runner:  # as `chatd serve`
            runner.run(main())

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
def make_server(chat_db: str, users_file: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start servers on free ports (all stopped at the end of the test)."""
    started: list[RunningServer] = []

    def start(**overrides: Any) -> RunningServer:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "db": chat_db,
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
