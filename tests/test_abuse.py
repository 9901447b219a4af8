"""Abuse: login brute force, connection floods, pending logins."""

from __future__ import annotations

import time

from tests.conftest import RunningServer, wait_for


def _attempt(server: RunningServer, username: str, password: str) -> str:
    """One login attempt on a new connection; the server's answer to it."""
    client = server.connect()
    client.expect("^Username:")
    client.send(username)
    client.expect("^Password:")
    client.send(password)
    answer = client.expect("^(Welcome|Login failed)").string
    client.close()
    return answer


THROTTLE = {"throttle_account_after": 2, "throttle_max_delay_s": 1, "throttle_forget_s": 2}


def test_brute_force_on_an_account_is_slowed_then_refused_then_forgiven(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(**THROTTLE)
    for _ in range(2):
        assert _attempt(server, "alice", "guess").startswith("Login failed. Try again")
    started = time.monotonic()
    assert _attempt(server, "alice", "guess").startswith("Login failed. Try again")
    assert time.monotonic() - started >= 0.9  # the third try waited a second first
    refused = _attempt(server, "alice", "guess")
    assert refused == "Login failed. Too many failed logins; try again later."
    # Even the right password is refused while the account is locked ...
    assert _attempt(server, "alice", "pass123").startswith("Login failed. Too many")
    # ... but other accounts are not affected,
    assert _attempt(server, "bob", "qwerty").startswith("Welcome, bob!")
    # and once the attacker has stopped for a while, alice gets in.
    wait_for(lambda: _attempt(server, "alice", "pass123").startswith("Welcome"), what="alice")


def test_unknown_names_are_throttled_the_same_way(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(**THROTTLE)
    answers = [_attempt(server, "nobody", "guess") for _ in range(4)]
    assert answers[-1].startswith("Login failed. Too many")


def test_brute_force_from_one_address_across_names(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(
        throttle_address_after=3, throttle_max_delay_s=0, throttle_forget_s=2
    )
    for name in ("a1", "a2", "a3"):
        assert _attempt(server, name, "x").startswith("Login failed. Try again")
    assert _attempt(server, "alice", "pass123").startswith("Login failed. Too many")
    wait_for(lambda: _attempt(server, "alice", "pass123").startswith("Welcome"), what="alice")


def test_connections_per_address_are_capped(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_per_address=2)
    first, second = server.connect(), server.connect()
    first.expect("^Username:")
    second.expect("^Username:")
    third = server.connect()
    assert third.wait_closed() == ["Error: too many connections from your address."]
    first.close()
    wait_for(lambda: _greeted(server), what="a free place")


def _greeted(server: RunningServer) -> bool:
    client = server.connect()
    line = client.read_line()
    client.close()
    return line is not None and not line.startswith("Error")


def test_total_connections_are_capped(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_connections=3)
    clients = [server.connect() for _ in range(3)]
    for client in clients:
        client.expect("^Username:")
    assert server.connect().wait_closed() == ["Error: the server is full; try again later."]


def test_pending_logins_are_capped(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_pending_logins=2)
    waiting = [server.connect(), server.connect()]
    for client in waiting:
        client.expect("^Username:")
    refused = server.connect().wait_closed()
    assert refused == ["Error: too many logins in progress; try again in a moment."]
    waiting[0].send("alice")
    waiting[0].send("pass123")
    waiting[0].expect("^Welcome, alice!")  # logged in: no longer pending
    wait_for(lambda: _greeted(server), what="a free login place")
