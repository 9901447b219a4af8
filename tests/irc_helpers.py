"""A raw IRC test client over a real socket, and a fixture for a server with IRC on."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from tests.conftest import LineClient, RunningServer


class IrcClient(LineClient):
    """LineClient speaking IRC: send raw lines, expect lines matching a pattern."""

    def register_sasl(self, account: str, password: str, caps: str = "") -> None:
        self.name = account
        self.send("CAP LS 302")
        self.send(f"NICK {account}")
        self.send("USER u 0 * :test")
        self.expect(r" CAP \* LS ")
        self.send(f"CAP REQ :{' '.join(['sasl', *caps.split()])}")
        self.expect(" ACK ")
        self.send("AUTHENTICATE PLAIN")
        self.expect("^AUTHENTICATE \\+")
        self.send("AUTHENTICATE " + plain(account, password))
        self.expect(" 903 ")
        self.send("CAP END")
        self.expect(f" 001 {account} ")
        self.expect(" 366 .* #general ")

    def register_pass(self, account: str, password: str) -> None:
        self.name = account
        self.send(f"PASS {password}")
        self.send(f"NICK {account}")
        self.send("USER u 0 * :test")
        self.expect(f" 001 {account} ")
        self.expect(" 366 .* #general ")


def plain(account: str, password: str) -> str:
    return base64.b64encode(f"\0{account}\0{password}".encode()).decode()


class IrcServer:
    """A running server with both listeners, and clients for each."""

    def __init__(self, running: RunningServer) -> None:
        self.running = running
        assert running.server.irc_port is not None
        self.irc_port = running.server.irc_port

    def irc(self) -> IrcClient:
        return IrcClient(self.irc_port)

    def sasl(self, account: str, password: str, caps: str = "") -> IrcClient:
        client = self.irc()
        client.register_sasl(account, password, caps)
        return client

    def line(self, account: str, password: str) -> LineClient:
        return self.running.login(account, password)


def start_irc(make_server: Callable[..., RunningServer], **overrides: Any) -> IrcServer:
    """A server with its IRC listener on a free port, named irc.test."""
    return IrcServer(make_server(irc_port=0, irc_server_name="irc.test", **overrides))
