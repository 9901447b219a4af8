"""The IRC scenarios' peers: chatd over its IRC listener, and ngIRCd, in one dialect.

Both get exactly the same bytes from the load generator: `PASS`, `NICK`,
`USER` and `JOIN #bench`, then PRIVMSGs each followed by a PING whose PONG
acknowledges it (loadgen.IRC's scheme). chatd checks the PASS against each
account (user0 ... userN, every one with the password `bench`); ngIRCd has
one server password, `bench` too (without one it refuses any PASS). A
client is ready once the names of #bench have come (chatd first sends those
of #general, where every account is).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import loadgen
from common import ChatdServer, pinned
from peers import NGIRCD_CONF, Chatd, Ngircd, _free_port, _wait_for_port

PASSWORD = "bench"  # noqa: S105  (a benchmark account password)

IRC_PASS = loadgen.Dialect(
    name="irc-pass",
    login=lambda n: (
        f"PASS {PASSWORD}\r\nNICK user{n}\r\nUSER user{n} 0 * :bench\r\nJOIN #bench\r\n".encode()
    ),
    ready=b" #bench :End of ",  # 366, end of the channel's NAMES: joined
    say=loadgen.IRC.say,
    ack=loadgen.IRC.ack,
    echo=b"",  # neither echoes a PRIVMSG to its sender (no echo-message asked for)
    quick_ack=True,
)


class ChatdIrc(Chatd):
    """chatd, measured on its IRC port, with the same limits opened as for `Chatd`."""

    dialect = IRC_PASS

    def __init__(self, users: int, cpu: int | None, *, bcrypt_rounds: int = 4) -> None:
        irc_port = _free_port()
        flags = [
            "--rate-per-second", "0", "--max-connections", "20000",
            "--max-per-address", "20000", "--silent-deadline-s", "300",
            "--login-deadline-s", "300",
            "--irc-port", str(irc_port), "--irc-server-name", "bench.chatd.test",
        ]  # fmt: skip
        directory = Path(tempfile.mkdtemp(prefix="chatd-bench-irc-"))
        (directory / "users.txt").write_text("".join(f"user{i}:{PASSWORD}\n" for i in range(users)))
        self.server = ChatdServer(
            flags=flags, cpu=cpu, bcrypt_rounds=bcrypt_rounds,
            directory=directory, db=directory / "chat.db",
        )  # fmt: skip
        self.port, self.pid = irc_port, self.server.pid


class NgircdPass(Ngircd):
    """ngIRCd, spoken to in the same dialect as chatd's IRC port: with a server password."""

    dialect = IRC_PASS

    def __init__(self, users: int, cpu: int | None) -> None:
        binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
        if not Path(binary).exists():
            raise FileNotFoundError("ngircd is not installed (apt-get install ngircd)")
        self.directory = Path(tempfile.mkdtemp(prefix="ngircd-bench-irc-"))
        self.port = _free_port()
        conf = self.directory / "ngircd.conf"
        text = NGIRCD_CONF.format(port=self.port, directory=self.directory)
        conf.write_text(text.replace("[Limits]", f"    Password = {PASSWORD}\n[Limits]"))
        self.process = subprocess.Popen(
            pinned([binary, "--nodaemon", "--config", str(conf)], cpu),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "ngircd")
        self.pid = self.process.pid


def over_irc(peer_class: type[Any] | None) -> type[Any]:
    """The IRC-speaking peer for a peer of run.py's list (chatd or ngircd)."""
    return {Chatd: ChatdIrc, Ngircd: NgircdPass}[peer_class]
