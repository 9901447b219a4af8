"""A client that vanishes at any point of the login and chat state machine leaves no trace."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import pytest

from tests.conftest import LineClient, RunningServer, wait_for

Step = Callable[[LineClient], None]


def _nothing(client: LineClient) -> None:
    pass


def _greeted(client: LineClient) -> None:
    client.expect("^Username:")


def _username_sent(client: LineClient) -> None:
    client.expect("^Username:")
    client.send("alice")


def _password_sent(client: LineClient) -> None:  # gone while bcrypt runs
    _username_sent(client)
    client.expect("^Password:")
    client.send("pass123")


def _failed_once(client: LineClient) -> None:
    _username_sent(client)
    client.send("wrong")
    client.expect("^Login failed")


def _logged_in(client: LineClient) -> None:
    client.login("alice", "pass123")


def _message_in_flight(client: LineClient) -> None:
    _logged_in(client)
    client.send("going, going")


def _history_in_flight(client: LineClient) -> None:
    _logged_in(client)
    client.send("/history 500")


def _mid_passwd(client: LineClient) -> None:
    _logged_in(client)
    client.send("/passwd")
    client.expect("^Current password:")
    client.send("pass123")


def _half_a_line(client: LineClient) -> None:
    _logged_in(client)
    client.send(b"no newline yet")


POINTS = [
    _nothing,
    _greeted,
    _username_sent,
    _password_sent,
    _failed_once,
    _logged_in,
    _message_in_flight,
    _history_in_flight,
    _mid_passwd,
    _half_a_line,
]


def _reset(client: LineClient) -> None:
    """Close with a TCP reset instead of a clean FIN."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()


@pytest.mark.parametrize("close", [LineClient.close, _reset], ids=["fin", "reset"])
@pytest.mark.parametrize("point", POINTS, ids=[p.__name__.strip("_") for p in POINTS])
def test_disconnecting_leaves_no_stale_session(
    server: RunningServer, point: Step, close: Callable[[LineClient], None]
) -> None:
    watcher = server.login("bob", "qwerty")
    client = server.connect()
    point(client)
    close(client)
    inner = server.server
    wait_for(
        lambda: len(inner._connections) == 1 and inner.service.hub.online_names() == ["bob"],
        what="the connection and its session to be forgotten",
    )
    assert not inner._logging_in
    assert sum(inner._per_address.values()) == 1
    watcher.send("/users")
    watcher.expect("^Active users: bob$")
    again = server.login("alice", "pass123")  # and the account works as before
    again.send("/users")
    again.expect("^Active users: alice, bob$")
