"""The servers a benchmark compares: chatd, ngIRCd and the floor, each in a subprocess.

`chatd@REV` is chatd as it was at revision REV (bench/builds.py), run the
same way as the current one, so a change can be measured against what came
before it in the same run. `chatd-pg` (and `chatd-pg@REV`) is the same
server on PostgreSQL instead of SQLite: a new database of its own on the
server at $CHATD_BENCH_POSTGRES (run.py --postgres) for each start, dropped
when it stops.

Each is started on 127.0.0.1 (optionally pinned to a CPU with taskset) and
exposes the same small interface: `port`, `pid`, `dialect`, `rss_kib()`,
`stop()`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

import builds
import loadgen
from common import (
    POSTGRES_URL,
    ChatdServer,
    chatd_command,
    create_postgres_database,
    drop_postgres_database,
    pinned,
    postgres_backends,
    postgres_problem,
    rss_kib,
    write_users,
)

BENCH = Path(__file__).resolve().parent


class Peer(Protocol):
    name: str
    port: int
    pid: int
    dialect: loadgen.Dialect
    connect_wave: int  # connections it can take in flight at once

    def rss_kib(self) -> int: ...
    def close(self) -> None: ...


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


class Chatd:
    """chatd with every limit opened up for load (rate limiting off: SPEC §4)."""

    name = "chatd"
    build: builds.Build | None = None  # None: the chatd installed beside this script
    dialect = loadgen.CHAT
    connect_wave = 500  # its listen backlog is 1024

    def __init__(self, users: int, cpu: int | None, *, bcrypt_rounds: int = 4) -> None:
        self.server = ChatdServer(
            users,
            flags=self.flags(),
            cpu=cpu,
            bcrypt_rounds=bcrypt_rounds,
            command=self.command(),
        )
        self.port, self.pid = self.server.port, self.server.pid

    @classmethod
    def command(cls) -> list[str]:
        return chatd_command() if cls.build is None else cls.build.chatd

    @classmethod
    def flags(cls) -> list[str]:
        # Each build gets the options it has: older ones bound logins in progress
        # (--max-pending-logins), newer ones close silent connections instead.
        return builds.understood(cls.command(), [
            "--rate-per-second", "0", "--max-connections", "20000",
            "--max-per-address", "20000", "--silent-deadline-s", "300",
            "--max-pending-logins", "20000", "--login-deadline-s", "300",
        ])  # fmt: skip

    def rss_kib(self) -> int:
        return self.server.rss_kib()

    def close(self) -> None:
        self.server.stop()
        self.server.__exit__()


class ChatdPg(Chatd):
    """chatd on PostgreSQL: the same server and options, on a database of its own made
    for this start (`users` accounts imported by chatd itself) and dropped at close.
    As on SQLite, a message reaches the hub only once its transaction has
    committed (chatd/core/delivery.py)."""

    name = "chatd-pg"
    postgres = POSTGRES_URL  # the server the database is made on

    def __init__(self, users: int, cpu: int | None, *, bcrypt_rounds: int = 4) -> None:
        self.database, url = create_postgres_database(self.postgres)
        directory = Path(tempfile.mkdtemp(prefix="chatd-bench-pg-"))
        try:
            write_users(directory / "users.txt", users)
            self.server = ChatdServer(
                flags=self.flags(),
                cpu=cpu,
                bcrypt_rounds=bcrypt_rounds,
                command=self.command(),
                directory=directory,
                db=url,
            )
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            drop_postgres_database(self.postgres, self.database)
            raise
        self.port, self.pid = self.server.port, self.server.pid

    def database_pids(self) -> list[int]:
        """The PostgreSQL backends serving this chatd (its writer, readers and feed)."""
        return postgres_backends(self.postgres, self.database)

    def close(self) -> None:
        try:
            super().close()
        finally:
            drop_postgres_database(self.postgres, self.database)


NGIRCD_CONF = """\
[Global]
    Name = bench.chatd.test
    Info = chatd benchmark peer
    Listen = 127.0.0.1
    Ports = {port}
    PidFile = {directory}/ngircd.pid
    MotdPhrase = benchmark
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    MaxPenaltyTime = 0
    PingTimeout = 3600
    PongTimeout = 3600
[Options]
    DNS = no
    Ident = no
    PAM = no
    SyslogFacility = local7
"""


class Ngircd:
    """ngIRCd from Debian's packages, flood penalties off (MaxPenaltyTime = 0)."""

    name = "ngircd"
    dialect = loadgen.IRC
    # Its listen backlog is small: past about 10 connections in flight, SYNs are
    # dropped and retried seconds later (100 logins took 8 s in waves of 50).
    connect_wave = 8

    def __init__(self, users: int, cpu: int | None) -> None:
        binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
        if not Path(binary).exists():
            raise FileNotFoundError("ngircd is not installed (apt-get install ngircd)")
        self.directory = Path(tempfile.mkdtemp(prefix="ngircd-bench-"))
        self.port = _free_port()
        conf = self.directory / "ngircd.conf"
        conf.write_text(NGIRCD_CONF.format(port=self.port, directory=self.directory))
        self.process = subprocess.Popen(
            pinned([binary, "--nodaemon", "--config", str(conf)], cpu),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "ngircd")
        self.pid = self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


class Floor:
    """bench/floor.py: a thread per client, no accounts, no storage."""

    name = "floor"
    dialect = loadgen.CHAT
    connect_wave = 500

    def __init__(self, users: int, cpu: int | None) -> None:
        self.process = subprocess.Popen(
            pinned([sys.executable, str(BENCH / "floor.py"), "0"], cpu),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        self.port = int(line.rsplit(" ", 1)[1])
        self.pid = self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


PEERS: dict[str, type[Chatd | Ngircd | Floor]] = {
    "chatd": Chatd, "chatd-pg": ChatdPg, "ngircd": Ngircd, "floor": Floor,
}  # fmt: skip
NAMES = "chatd, chatd@REVISION, chatd-pg, chatd-pg@REVISION, ngircd or floor"


def peer_class(name: str, postgres: str = POSTGRES_URL) -> type[Chatd | Ngircd | Floor]:
    """The class that starts the peer called `name`; `chatd@REV` and `chatd-pg@REV` are
    checked out and installed first, if they are not yet. chatd-pg makes its
    databases on the PostgreSQL server at `postgres`."""
    base, at, revision = name.partition("@")
    if base not in PEERS or (at and (not revision or base not in ("chatd", "chatd-pg"))):
        raise ValueError(f"unknown peer {name!r}: {NAMES}")
    if not revision and base != "chatd-pg":
        return PEERS[base]
    build = builds.checkout(revision) if revision else None
    if base == "chatd-pg" and build is not None:
        if not builds.speaks_postgresql(build.chatd):
            raise ValueError(f"{name}: chatd at {revision} has no PostgreSQL engine")
        builds.with_postgresql(build)
    parent = PEERS[base]
    attributes = {"name": name, "build": build}
    if base == "chatd-pg":
        attributes["postgres"] = postgres
    return type(f"{parent.__name__}{at}{revision}", (parent,), attributes)


def unavailable(name: str, postgres: str = POSTGRES_URL) -> str | None:
    """Why the peer `name` cannot run here (not installed, no such revision), or None."""
    base, _, revision = name.partition("@")
    if revision and not builds.exists(revision):
        return f"no revision {revision!r} in this repository"
    if base == "chatd-pg":
        return postgres_problem(postgres)
    if name == "ngircd" and not (shutil.which("ngircd") or Path("/usr/sbin/ngircd").exists()):
        return "not installed (apt-get install ngircd)"
    return None
