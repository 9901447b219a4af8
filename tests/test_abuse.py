"""Abuse: login brute force, connection floods, idle connections, a crowd logging in."""

from __future__ import annotations

import time

from tests.conftest import LineClient, RunningServer, wait_for


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
    clients = [server.login(name, pw) for name, pw in (("alice", "pass123"), ("bob", "qwerty"))]
    clients.append(server.login("carol", "carol-pw"))
    assert server.connect().wait_closed() == ["Error: the server is full; try again later."]


def test_a_full_server_closes_a_silent_connection_for_a_newcomer(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_connections=3)
    typing = server.connect()
    typing.expect("^Username:")
    typing.send("bob")
    typing.expect("^Password:")
    idle = [server.connect(), server.connect()]
    for client in idle:
        client.expect("^Username:")
    newcomer = server.login("alice", "pass123")  # takes the place of the oldest idle one
    assert idle[0].wait_closed() == [
        "Error: the server is full; closing connections not logged in."
    ]
    typing.send("qwerty")
    typing.expect("^Welcome, bob!")
    newcomer.send("/users")
    newcomer.expect("^Active users: alice, bob$")


def test_logins_stalled_after_the_username_do_not_lock_out_newcomers(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(max_connections=3)
    stalled = [server.connect() for _ in range(3)]
    for client in stalled:
        client.expect("^Username:")
        client.send("alice")  # and never a password
        client.expect("^Password:")
    newcomer = server.login("bob", "qwerty")
    assert stalled[0].wait_closed() == [
        "Error: the server is full; closing connections not logged in."
    ]
    newcomer.send("Hello")
    newcomer.expect("^You said: Hello$")


def test_silent_connections_are_closed_after_the_silent_deadline(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(silent_deadline_s=1, login_deadline_s=30)
    silent, typing = server.connect(), server.connect()
    typing.expect("^Username:")
    typing.send("alice")
    assert silent.wait_closed()[-1] == "Error: login took too long; disconnecting."
    typing.expect("^Password:")
    typing.send("pass123")
    typing.expect("^Welcome, alice!")


def test_idle_sockets_from_two_addresses_do_not_lock_out_logins(server: RunningServer) -> None:
    # 100 connections that never log in used to fill the pending-login cap
    # for the whole login deadline: the next honest client was refused.
    idle = [LineClient(server.port, source=f"127.0.0.{2 + n % 2}") for n in range(100)]
    for client in idle:
        client.expect("^Username:")
    honest = server.login("alice", "pass123")
    honest.send("Hello")
    honest.expect("^You said: Hello$")


def test_a_class_connecting_at_once_all_log_in(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 200 clients from four addresses (within the per-address limit) connect,
    # then all log in: with default limits every one of them gets in.
    names = [f"student{n}" for n in range(200)]
    users = tmp_path / "class.txt"
    users.write_text("".join(f"{name}:pw-{name}\n" for name in names))
    server: RunningServer = make_server(users_file=users)
    clients = [LineClient(server.port, source=f"127.0.0.{1 + n % 4}") for n in range(200)]
    for client in clients:
        client.expect("^Username:")
    for name, client in zip(names, clients, strict=True):
        client.send(name)
        client.send(f"pw-{name}")
    for name, client in zip(names, clients, strict=True):
        client.expect(f"^Welcome, {name}!", timeout=60)
