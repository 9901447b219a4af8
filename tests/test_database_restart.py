"""PostgreSQL restarting under two nodes (SPEC §9): sessions stay, nothing is falsely
acknowledged, the nodes reconnect and deliver what they missed, exactly once.

It runs on the test run's private cluster (tests/pg_cluster.py), the only one
a test may stop; chatd logs in there as a plain role, with a password.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatd.storage import open_database, users
from tests.conftest import TIMEOUT, LineClient, RunningServer, wait_for
from tests.irc_helpers import start_irc
from tests.pg_cluster import PrivateCluster
from tests.test_nodes import _seen, _users_are

NOT_SAVED = "Error: your message could not be saved; please send it again."
UNAVAILABLE = "Error: the database is unavailable; that was not done. Please try again."
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")


class Sender(threading.Thread):
    """Says numbered messages one at a time, each once its last is answered (`You said:`
    or the error), until stopped; every line it receives stays in `client.received`."""

    def __init__(self, client: LineClient) -> None:
        super().__init__(name=f"sender-{client.name}", daemon=True)
        self.client = client
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            for i in range(1_000_000):
                if self.stopping.is_set():
                    return
                body = f"{self.client.name} {i}"
                self.client.send(body)
                while True:
                    line = self.client.read_line()
                    if line is None:
                        raise ConnectionError(f"{self.client.name}: the server closed")
                    if line == f"You said: {body}":
                        self.acked.append(body)
                        break
                    if line == NOT_SAVED:
                        self.failed.append(body)
                        break
        except BaseException as exc:  # reported by the test's thread
            self.error = exc

    def answered(self) -> int:
        if self.error is not None:
            raise self.error
        return len(self.acked) + len(self.failed)


def _messages_said(url: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as check:
        rows = check.execute(
            "SELECT sender, body FROM messages WHERE kind = 'public' ORDER BY id"
        ).fetchall()
    return [(str(sender), str(body)) for sender, body in rows]


def test_a_database_restart_loses_nothing_acknowledged_and_delivers_it_once_in_order(
    private_postgres: PrivateCluster,
    private_database: str,  # set up before the servers, so dropped after they stop
    make_server: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    people = tmp_path / "people.txt"
    people.write_text("".join(f"{name}:{name}-pw\n" for name in PEOPLE))
    a = make_server(db=private_database, users_file=people, rate_per_second=0)
    b = make_server(db=private_database, users_file=people, rate_per_second=0)
    alice, carol, erin, frank = (
        a.login(name, f"{name}-pw") for name in ("alice", "carol", "erin", "frank")
    )
    bob, dave = (b.login(name, f"{name}-pw") for name in ("bob", "dave"))
    _users_are(frank, "alice, bob, carol, dave, erin, frank")
    senders = [Sender(client) for client in (alice, bob, carol, dave)]  # two on each node
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: all(len(s.acked) >= 20 for s in senders), what="chat before")

        private_postgres.stop("fast")  # every connection cut; the database is gone
        erin.send("/quit")  # her logout cannot be written now
        erin.wait_closed()
        frank.send("lost in the outage")  # written after erin's logout: it fails too
        frank.expect(f"^{re.escape(NOT_SAVED)}$")
        private_postgres.start()

        # Every sender is answered again, acknowledged after the outage.
        marks = {s: len(s.acked) for s in senders}
        wait_for(
            lambda: all(s.answered() and len(s.acked) >= marks[s] + 10 for s in senders),
            timeout=15,
            what="chat after the restart",
        )
    finally:
        for sender in senders:
            sender.stopping.set()
        for sender in senders:
            sender.join(TIMEOUT)
    for sender in senders:
        assert sender.error is None, sender.error

    # Each sender's messages in the database: exactly those acknowledged, in order.
    said = _messages_said(private_database)
    for sender in senders:
        name = sender.client.name
        assert [body for who, body in said if who == name] == sender.acked
        assert not set(sender.failed) & set(sender.acked)
    assert "lost in the outage" not in {body for _, body in said}

    # Every client received every other's messages once each, in commit order.
    for sender in senders:
        for other in senders:
            if other is not sender and other.acked:
                _seen(sender.client, f"{other.client.name}: {other.acked[-1]}", timeout=15)
    for sender in senders:
        me = sender.client.name
        others = [f"{who}: {body}" for who, body in said if who != me]
        names = tuple(f"{other.client.name}: " for other in senders if other is not sender)
        got = [line for line in sender.client.received if line.startswith(names)]
        assert got == others, f"{me} did not receive the others' messages once, in order"

    # Both nodes work again: /users is right everywhere (erin's logout, lost in the
    # outage, is made good), logins and messages cross nodes.
    _users_are(frank, "alice, bob, carol, dave, frank", timeout=15)
    _users_are(bob, "alice, bob, carol, dave, frank", timeout=15)
    erin = b.login("erin", "erin-pw")
    _users_are(frank, "alice, bob, carol, dave, erin, frank")
    frank.send("back")
    frank.expect("^You said: back$")
    erin.expect("^frank: back$")
    bob.expect("^frank: back$")


def test_while_the_database_is_away_commands_and_logins_say_so_and_sessions_stay(
    private_postgres: PrivateCluster,
    private_database: str,
    make_server: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    """A command that needs the database, or a login, while it is away: one clear
    line (a command is not done, a login fails), and every session stays."""
    people = tmp_path / "people.txt"
    people.write_text("".join(f"{name}:{name}-pw\n" for name in PEOPLE))
    a = start_irc(make_server, db=private_database, users_file=people, rate_per_second=0)
    b = make_server(db=private_database, users_file=people, rate_per_second=0)
    with open_database(private_database) as conn:
        users.set_role(conn, "alice", "admin")
    alice = a.line("alice", "alice-pw")
    bob = b.login("bob", "bob-pw")
    carol = a.irc()
    carol.register_pass("carol", "carol-pw")
    _users_are(alice, "alice, bob, carol")
    alice.send("before")
    alice.expect("^You said: before$")

    private_postgres.stop("fast")
    alice.send("/history 5")
    alice.expect(f"^{re.escape(UNAVAILABLE)}$")
    alice.send("/kick bob")  # bob is on node B: the kick must be saved for B to read
    alice.expect(f"^{re.escape(UNAVAILABLE)}$")
    carol.send("JOIN #later")
    carol.expect(r"^:irc\.test 263 carol JOIN :The database is unavailable; that was not done")
    dave = LineClient(b.port)
    dave.expect("^Username:")
    dave.send("dave")
    dave.expect("^Password:")
    dave.send("dave-pw")
    dave.expect("^Login failed. The database is unavailable; try again later.$")
    dave.wait_closed()
    private_postgres.start()

    # Every session stayed, and what failed works now.
    alice.send("/history 5")
    alice.expect("^Your last 1 message:$")
    _users_are(alice, "alice, bob, carol", timeout=15)  # node B beats again
    alice.send("/kick bob")
    alice.expect(r"^\*\*\* bob was kicked\.$")
    bob.expect(r"^\*\*\* You were kicked by alice\.$")
    carol.send("JOIN #later")
    carol.expect(r" 366 carol #later ")


@pytest.fixture(autouse=True)
def _cluster_running(private_postgres: PrivateCluster) -> Iterator[None]:
    """A test that failed while the cluster was stopped leaves it running for the next."""
    yield
    private_postgres.ensure_running()
