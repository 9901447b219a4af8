"""Shared by the benchmark and attack scripts: servers in subprocesses, clients, statistics.

Nothing here imports chatd: the scripts drive the installed `chatd serve` from
outside, as a user or an attacker would.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TIMEOUT = 30.0

# The PostgreSQL server on which chatd-pg and nodes.py make their databases.
POSTGRES_URL = os.environ.get(
    "CHATD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def chatd_command() -> list[str]:
    """The installed `chatd` console script next to this Python, else `python -m chatd`."""
    script = Path(sys.executable).parent / "chatd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "chatd"]


def write_users(path: Path, count: int, prefix: str = "user", password: str = "pw") -> None:
    """A users file with `count` accounts: user0:pw0, user1:pw1, ..."""
    path.write_text("".join(f"{prefix}{i}:{password}{i}\n" for i in range(count)))


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """Prefix a command with `taskset -c CPU`, or with every CPU for None: a child
    would otherwise inherit the load generator's own pinning."""
    cpus = os.cpu_count() or 1
    if shutil.which("taskset") is None or (cpu is not None and cpu >= cpus):
        return command
    return ["taskset", "-c", f"0-{cpus - 1}" if cpu is None else str(cpu), *command]


class ChatdServer:
    """`chatd serve` in a subprocess on a free port, with its own temporary database."""

    def __init__(
        self,
        users: int = 10,
        *,
        flags: Sequence[str] = (),
        cpu: int | None = None,
        bcrypt_rounds: int = 4,
        directory: Path | None = None,
        db: Path | str | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """`users` accounts are imported at start, unless a `db` is given (a file or a
        postgresql:// URL: then a users.txt in `directory`, if any, is imported);
        `command` runs another build's `chatd` (bench/builds.py) instead of this one."""
        self.directory = directory or Path(tempfile.mkdtemp(prefix="chatd-bench-"))
        self.db = db or self.directory / "chat.db"
        users_file = self.directory / "users.txt"
        if db is None:
            write_users(users_file, users)
        command = [
            *(command or chatd_command()), "serve", "--host", "127.0.0.1", "--port", "0",
            "--db", str(self.db), "--users-file", str(users_file), "--log-level", "WARNING",
            *flags,
        ]  # fmt: skip
        env = {**os.environ, "CHATD_BCRYPT_ROUNDS": str(bcrypt_rounds)}
        self.log = self.directory / "server.log"  # a file: an unread pipe would fill up
        self.started_at = time.monotonic()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                pinned(command, cpu), stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.ready_after_s = time.monotonic() - self.started_at
        if not line.startswith("[+] Server started on port "):
            self.process.kill()
            raise RuntimeError(f"chatd did not start: {line!r} {self.log.read_text()}")
        self.port = int(line.rsplit(" ", 1)[1])
        self.pid = self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def __enter__(self) -> ChatdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_option(parser: argparse.ArgumentParser) -> None:
    """The --postgres option of the scripts that make databases of their own."""
    parser.add_argument(
        "--postgres", default=POSTGRES_URL, help="server URL (default: $CHATD_BENCH_POSTGRES)"
    )


def create_postgres_database(server: str) -> tuple[str, str]:
    """A new, empty database on the PostgreSQL server at URL `server`: its name and URL.
    The name carries this process's id (chatd_bench_PID_...), so leftovers of a run
    that was killed can be told apart."""
    import psycopg

    name = f"chatd_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return name, urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def drop_postgres_database(server: str, name: str) -> None:
    """Drop a database made by create_postgres_database, whoever is still connected."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def chat_nodes(
    server: str, count: int, users: int, *, setup_sql: str = ""
) -> Iterator[tuple[list[ChatdServer], str]]:
    """`count` chatd nodes on a new PostgreSQL database on `server` (0: one node on
    SQLite, a baseline), each with `users` accounts and no rate or per-address limit;
    yields them and the database's URL ("" for SQLite), stops them and drops the
    database after. `setup_sql` runs on the database once the first node has made
    its schema."""
    name, url = create_postgres_database(server) if count else ("", "")
    started: list[ChatdServer] = []
    try:
        for _ in range(max(count, 1)):
            directory = Path(tempfile.mkdtemp(prefix="chatd-nodes-"))
            write_users(directory / "users.txt", users)
            flags = ["--rate-per-second", "0", "--max-per-address", str(users + 10)]
            db = url or directory / "chat.db"
            started.append(ChatdServer(users, db=db, directory=directory, flags=flags))
            if setup_sql and url and len(started) == 1:
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(setup_sql)  # type: ignore[call-overload]
        yield started, url
    finally:
        for node in started:
            node.stop()
            node.__exit__()
        if name:
            drop_postgres_database(server, name)


def postgres_backends(server: str, name: str) -> list[int]:
    """The process ids of the PostgreSQL backends connected to database `name`."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def postgres_problem(server: str) -> str | None:
    """Why no database can be made on the PostgreSQL server at `server`, or None."""
    try:
        import psycopg

        with psycopg.connect(server, connect_timeout=3):
            return None
    except Exception as exc:  # not installed, refused, no such role...
        return f"no PostgreSQL at {server}: {' '.join(str(exc).split())}"


class LineClient:
    """A blocking line client for load and attacks."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        timeout: float = TIMEOUT,
        *,
        source: str | None = None,  # a source address, e.g. 127.0.0.2 (all of 127/8 is loopback)
    ) -> None:
        bind = None if source is None else (source, 0)
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=bind)
        self._buffer = b""

    def send_line(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def read_line(self) -> str | None:
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionError, TimeoutError):
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def expect(self, prefix: str) -> str:
        while True:
            line = self.read_line()
            if line is None:
                raise ConnectionError(f"closed while waiting for {prefix!r}")
            if line.startswith(prefix):
                return line

    def login(self, username: str, password: str) -> str:
        """Log in; returns the server's answer (a welcome, or why not)."""
        self.sock.sendall(f"{username}\n{password}\n".encode())
        while True:
            line = self.read_line()
            if line is None:
                return "(closed)"
            if line.startswith(("Welcome, ", "Login failed", "Error")):
                return line

    def close(self) -> None:
        self.sock.close()


# What chatd answers a message it could not store (chatd/line/replies.py).
NOT_SAVED = "Error: your message could not be saved; please send it again."


class Sender(threading.Thread):
    """A user saying numbered messages (NAME-0, NAME-1, ...) in a room of their own,
    `burst` at a time, until stopped or cut off: the answers come in the order of the
    lines, so each is matched to its message, acknowledged or refused (NOT_SAVED)."""

    def __init__(self, port: int, number: int, room: str = "#load", burst: int = 8) -> None:
        super().__init__(daemon=True)
        self.name = f"user{number}"
        self.client = LineClient(port)
        answer = self.client.login(self.name, f"pw{number}")
        if not answer.startswith("Welcome, "):
            raise RuntimeError(f"{self.name}: {answer}")
        # Unread, the load in #general would fill the buffers of users who only
        # watch (the server would disconnect them as slow readers).
        self.client.send_line(f"/join {room}")
        self.client.expect(f"Now talking in {room}")
        self.burst = burst
        self.stop = threading.Event()
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self.cut_off = False  # its connection ended before it was stopped
        self.wrong = ""  # an answer that was not its message's: what, if any

    def run(self) -> None:
        count = 0
        while not self.stop.is_set():
            lines = [f"{self.name}-{count + k}" for k in range(self.burst)]
            count += self.burst
            try:
                self.client.sock.sendall("".join(f"{text}\n" for text in lines).encode())
                for text in lines:
                    answer = self._answer()
                    if answer == NOT_SAVED:
                        self.refused.append(text)
                    elif answer == f"You said: {text}":
                        self.acknowledged.append(text)
                    else:
                        self.wrong = f"{answer!r} answered {text!r}"
                        return
            except (OSError, ConnectionError):
                self.cut_off = not self.stop.is_set()
                return

    def _answer(self) -> str:
        while True:
            line = self.client.read_line()
            if line is None:
                raise ConnectionError(f"{self.name}: closed")
            if line.startswith("You said: ") or line == NOT_SAVED:
                return line


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        if not ms:
            return cls(0, float("nan"), float("nan"), float("nan"))
        return cls(len(ms), statistics.median(ms), percentile(ms, 0.99), max(ms))

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms"


class Observer:
    """A few logged-in users saying timestamped lines (each within the default rate
    limit) and one more measuring how long they take to arrive: the chat's health
    while something else happens."""

    def __init__(
        self,
        port: int,
        speakers: Sequence[tuple[str, str]],
        listener: tuple[str, str],
        interval: float = 0.25,
    ) -> None:
        self._speakers = [LineClient(port) for _ in speakers]
        for client, (name, password) in zip(self._speakers, speakers, strict=True):
            client.login(name, password)
        self._listener = LineClient(port)
        self._listener.login(*listener)
        self._interval = interval
        self._stop = threading.Event()
        self._samples: list[float] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._speak, args=(client, n), daemon=True)
            for n, client in enumerate(self._speakers)
        ] + [threading.Thread(target=self._listen, daemon=True)]

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for client in [*self._speakers, self._listener]:
            client.close()

    def _speak(self, client: LineClient, number: int) -> None:
        self._stop.wait(self._interval * number / len(self._speakers))  # spread them out
        while not self._stop.is_set():
            try:
                client.send_line(f"probe {time.monotonic():.6f}")
                client.expect("You said: probe")
                self._drain(client, time.monotonic() + self._interval)
            except OSError:
                return

    def _drain(self, client: LineClient, until: float) -> None:
        """Keep reading (a speaker that stopped reading would be cut off) until `until`."""
        try:
            while not self._stop.is_set() and (left := until - time.monotonic()) > 0:
                client.sock.settimeout(left)
                if client.read_line() is None and until - time.monotonic() > 0.001:
                    return  # closed rather than timed out
        finally:
            client.sock.settimeout(TIMEOUT)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                line = self._listener.read_line()
            except OSError:
                return
            if line is None:
                return
            _, found, stamp = line.partition(": probe ")
            if found:
                with self._lock:
                    self._samples.append(time.monotonic() - float(stamp))

    def take(self) -> Latency:
        """The latency of the probes since the last take()."""
        with self._lock:
            samples, self._samples = self._samples, []
        return Latency.of(samples)


@contextmanager
def threads(*targets: threading.Thread) -> Iterator[None]:
    for thread in targets:
        thread.start()
    try:
        yield
    finally:
        for thread in targets:
            thread.join(TIMEOUT)
