"""The servers a benchmark compares: chatd, ngIRCd and the floor, each in a subprocess.

`chatd@REV` is chatd as it was at revision REV (bench/builds.py), run the
same way as the current one, so a change can be measured against what came
before it in the same run.

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
from common import ChatdServer, chatd_command, pinned, rss_kib

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
        command = chatd_command() if self.build is None else self.build.chatd
        # Each build gets the options it has: older ones bound logins in progress
        # (--max-pending-logins), newer ones close silent connections instead.
        flags = builds.understood(command, [
            "--rate-per-second", "0", "--max-connections", "20000",
            "--max-per-address", "20000", "--silent-deadline-s", "300",
            "--max-pending-logins", "20000", "--login-deadline-s", "300",
        ])  # fmt: skip
        self.server = ChatdServer(
            users, flags=flags, cpu=cpu, bcrypt_rounds=bcrypt_rounds, command=command
        )
        self.port, self.pid = self.server.port, self.server.pid

    def rss_kib(self) -> int:
        return self.server.rss_kib()

    def close(self) -> None:
        self.server.stop()
        self.server.__exit__()


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
    "chatd": Chatd, "ngircd": Ngircd, "floor": Floor,
}  # fmt: skip


def peer_class(name: str) -> type[Chatd | Ngircd | Floor]:
    """The class that starts the peer called `name`; `chatd@REV` is checked out and
    installed first, if it is not yet."""
    if name in PEERS:
        return PEERS[name]
    base, _, revision = name.partition("@")
    if base != "chatd" or not revision:
        raise ValueError(f"unknown peer {name!r}: chatd, chatd@REVISION, ngircd or floor")
    build = builds.checkout(revision)
    return type(f"Chatd@{revision}", (Chatd,), {"name": name, "build": build})


def available(name: str) -> bool:
    if name.startswith("chatd@"):
        return builds.exists(name.partition("@")[2])
    return name != "ngircd" or bool(shutil.which("ngircd") or Path("/usr/sbin/ngircd").exists())
