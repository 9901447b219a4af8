"""Several nodes on one PostgreSQL database (SPEC §9): real servers sharing a fresh
database, each client logged in to one of them."""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from chatd.storage import open_database, users
from tests.conftest import TIMEOUT, LineClient, RunningServer, wait_for
from tests.irc_helpers import start_irc
from tests.test_serve_command import start_serve

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

Nodes = tuple[RunningServer, RunningServer]


@pytest.fixture
def nodes(make_server: Callable[..., RunningServer], chat_db: str) -> Nodes:
    first = make_server(rate_per_second=0)
    with open_database(chat_db) as conn:
        users.set_role(conn, "admin", "admin")
    return first, make_server(rate_per_second=0)


def _seen(client: LineClient, line: str, timeout: float = TIMEOUT) -> None:
    """Wait until `client` has received `line` (perhaps already, while waiting for another)."""
    if line not in client.received:
        client.expect(f"^{re.escape(line)}$", timeout)


def _users_are(client: LineClient, names: str, timeout: float = TIMEOUT) -> None:
    """Ask `/users` until it answers `names` (other nodes' logins show up within a beat)."""
    deadline = time.monotonic() + timeout
    while True:
        client.send("/users")
        if client.expect("^Active users: ").string == f"Active users: {names}":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{client.name}: /users never said {names}; {client.received[-3:]}")
        _idle(client)


def _idle(client: LineClient, timeout: float = 0.2) -> None:
    """Read what comes within `timeout` (a login or logout notice, say), then go on."""
    with contextlib.suppress(TimeoutError):
        client.read_line(timeout)


def _said(client: LineClient, prefix: str) -> list[str]:
    return [line for line in client.received if line.startswith(prefix)]


def test_messages_reach_the_other_node_once_and_in_commit_order(nodes: Nodes) -> None:
    a, b = nodes
    alice, carol = a.login("alice", "pass123"), a.login("carol", "carol-pw")
    bob = b.login("bob", "qwerty")
    admin = b.login("admin", "admin123")
    count = 60

    def talk(client: LineClient, who: str) -> None:
        for i in range(count):
            client.send(f"{who} {i}")

    senders = [
        threading.Thread(target=talk, args=(alice, "a")),
        threading.Thread(target=talk, args=(carol, "c")),
        threading.Thread(target=talk, args=(bob, "b")),
    ]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    for client, who in ((alice, "a"), (carol, "c"), (bob, "b")):
        client.expect(f"^You said: {who} {count - 1}$")
    for who, name in (("a", "alice"), ("c", "carol"), ("b", "bob")):
        _seen(admin, f"{name}: {who} {count - 1}")
    admin_saw = [line for line in admin.received if ": " in line and line[0] in "abc"]
    for who, name in (("a", "alice"), ("c", "carol"), ("b", "bob")):
        said = [line for line in admin_saw if line.startswith(f"{name}: ")]
        # Exactly once each, each sender's in the order sent.
        assert said == [f"{name}: {who} {i}" for i in range(count)]
        client = {"a": alice, "c": carol, "b": bob}[who]
        assert _said(client, "You said: ") == [f"You said: {who} {i}" for i in range(count)]
    # Every node delivers in the one commit order: bob (node B) sees alice's and
    # carol's messages in the order admin (node B) does, and alice (node A) too.
    _seen(bob, f"carol: c {count - 1}")
    _seen(bob, f"alice: a {count - 1}")
    _seen(alice, f"bob: b {count - 1}")
    _seen(alice, f"carol: c {count - 1}")
    others_of_bob = [line for line in admin_saw if not line.startswith("bob: ")]
    assert [line for line in bob.received if line.startswith(("alice: ", "carol: "))] == (
        others_of_bob
    )
    others_of_alice = [line for line in admin_saw if not line.startswith("alice: ")]
    assert [line for line in alice.received if line.startswith(("bob: ", "carol: "))] == (
        others_of_alice
    )


def test_private_messages_announcements_and_logins_cross_nodes(nodes: Nodes) -> None:
    a, b = nodes
    alice = a.login("alice", "pass123")
    bob = b.login("bob", "qwerty")
    alice.expect(r"^\*\*\* bob joined$")  # a login on node B, seen on node A
    _users_are(alice, "alice, bob")
    alice.send("/msg bob lunch?")
    alice.expect(r"^\[private\] You said to bob: lunch\?$")  # bob is online, on node B
    bob.expect(r"^\[private\] alice: lunch\?$")
    admin = a.login("admin", "admin123")
    admin.send("/announce maintenance at noon")
    bob.expect(r"^\*\*\* Announcement from admin: maintenance at noon$")
    alice.expect(r"^\*\*\* Announcement from admin: maintenance at noon$")
    bob.send("/quit")
    alice.expect(r"^\*\*\* bob left")


def test_rooms_topics_and_membership_cross_nodes(nodes: Nodes) -> None:
    a, b = nodes
    alice = a.login("alice", "pass123")
    bob = b.login("bob", "qwerty")
    carol = b.login("carol", "carol-pw")
    alice.send("/join #dev")
    alice.expect(r"^Now talking in #dev\.$")
    bob.send("/join #dev")
    bob.expect(r"^Now talking in #dev\.$")
    alice.expect(r"^\*\*\* bob joined #dev$")
    alice.send("/topic ship it")
    bob.expect(r"^\*\*\* alice set the topic of #dev: ship it$")
    alice.send("Hello dev")
    alice.expect("^You said: Hello dev$")
    bob.expect("^alice: Hello dev$")
    bob.send("/leave")
    bob.expect(r"^Now talking in #general\.$")
    alice.expect(r"^\*\*\* bob left #dev$")
    alice.send("after bob left")
    alice.expect("^You said: after bob left$")
    alice.send("/join #general")
    alice.expect(r"^Now talking in #general\.$")
    alice.send("to everyone")
    bob.expect("^alice: to everyone$")
    carol.expect("^alice: to everyone$")
    assert not any("after bob left" in line for line in bob.received + carol.received)


def test_cut_connections_lose_nothing_and_deliver_once(
    nodes: Nodes, postgres_database: tuple[str, object]
) -> None:
    """pg_terminate_backend of every chatd connection while messages flow: sessions
    stay, no false `You said:`, delivery resumes, each message exactly once."""
    import psycopg

    a, b = nodes
    url, _ = postgres_database
    alice = a.login("alice", "pass123")
    bob = b.login("bob", "qwerty")
    count = 200

    def talk() -> None:
        for i in range(count):
            alice.send(f"m {i}")

    sender = threading.Thread(target=talk)
    sender.start()
    bob.expect("^alice: m 5$")
    with psycopg.connect(url, autocommit=True) as killer:
        killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'chatd'"
        )
    sender.join()
    alice.send("after the cut")
    alice.expect("^You said: after the cut$", timeout=15)
    bob.expect("^alice: after the cut$", timeout=15)
    acked = [line.removeprefix("You said: ") for line in _said(alice, "You said: ")]
    got = [line.removeprefix("alice: ") for line in _said(bob, "alice: ")]
    assert len(got) == len(set(got)), "a message delivered twice"
    assert got == acked, "bob's messages are not exactly alice's acknowledged ones"
    assert got == [*sorted(got[:-1], key=lambda m: int(m.split()[1])), "after the cut"]
    errors = [line for line in alice.received if line.startswith("Error: your message could not")]
    assert len(acked) - 1 + len(errors) == count, (len(acked), errors[:3])
    # Both nodes still serve: a login on each, and messages both ways.
    dave = b.login("carol", "carol-pw")
    bob.send("still here")
    dave.expect("^bob: still here$")
    alice.expect("^bob: still here$")


def test_users_and_who_list_every_nodes_users(nodes: Nodes) -> None:
    a, b = nodes
    alice = a.login("alice", "pass123")
    bob = b.login("bob", "qwerty")
    carol = b.login("carol", "carol-pw")
    _users_are(alice, "alice, bob, carol")
    _users_are(bob, "alice, bob, carol")
    alice.send("/join #dev")
    alice.expect(r"^Now talking in #dev\.$")
    carol.send("/join #dev")
    alice.expect(r"^\*\*\* carol joined #dev$")
    for client in (alice, carol):
        deadline = time.monotonic() + TIMEOUT
        while True:
            client.send("/who #dev")
            if client.expect("^Online in #dev: ").string == "Online in #dev: alice, carol":
                break
            assert time.monotonic() < deadline, client.received[-3:]
            _idle(client)
    carol.send("/quit")
    _users_are(alice, "alice, bob")


def test_a_killed_node_drops_out_and_loses_nothing_acknowledged(
    make_server: Callable[..., RunningServer], chat_db: str, tmp_path: Path
) -> None:
    """SIGKILL of a node (a `chatd serve` process): its users are gone from /users on
    the other node within 15 s, and every message it acknowledged reached the other."""
    a = make_server(rate_per_second=0)
    process, port = start_serve(tmp_path, "--db", chat_db, "--rate-per-second", "0")
    try:
        alice = a.login("alice", "pass123")
        bob = LineClient(port)
        bob.login("bob", "qwerty")
        _users_are(alice, "alice, bob")
        for i in range(100):
            bob.send(f"b {i}")
        bob.expect("^You said: b 20$")
        process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
        killed_at = time.monotonic()
        acked = [line.removeprefix("You said: ") for line in _said(bob, "You said: ")]
        _users_are(alice, "alice", timeout=15)
        assert time.monotonic() - killed_at <= 15
        _seen(alice, "*** bob left")
        got = [line.removeprefix("bob: ") for line in _said(alice, "bob: ")]
        assert got[: len(acked)] == acked  # nothing acknowledged lost, in order, once
        assert len(got) == len(set(got))
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_an_admin_on_one_node_kicks_a_user_on_the_other(nodes: Nodes) -> None:
    a, b = nodes
    admin = a.login("admin", "admin123")
    bob = b.login("bob", "qwerty")
    _users_are(admin, "admin, bob")
    admin.send("/kick bob spamming")
    admin.expect(r"^\*\*\* bob was kicked\.$")
    bob.expect(r"^\*\*\* You were kicked by admin")
    bob.wait_closed()
    _users_are(admin, "admin")
    admin.send("/kick bob again")
    admin.expect(r"^Error: bob is not online\.$")
    # Back on node B: kicked as soon as his login is seen, before node A's next beat
    # (the kick asks the database, not only A's last reading of who is online).
    bob = b.login("bob", "qwerty")
    admin.expect(r"^\*\*\* bob joined$")
    admin.send("/kick bob at once")
    admin.expect(r"^\*\*\* bob was kicked\.$")
    bob.expect(r"^\*\*\* You were kicked by admin \(at once\)\.$")


@contextlib.contextmanager
def _role_of_its_own(keeper: Any, url: str) -> Iterator[tuple[str, str]]:
    """A login role for one node (its backends then tell apart from the other
    node's, and it can be kept out), with its --db URL; dropped at the end."""
    role = f"chatd_node_{secrets.token_hex(4)}"
    keeper.execute(f"CREATE ROLE {role} LOGIN IN ROLE postgres")  # the tables' owner
    parts = urlsplit(url)
    try:
        yield role, urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    finally:
        keeper.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        keeper.execute(f"DROP ROLE {role}")


def _kicks(keeper: Any) -> list[tuple[str, str, str]]:
    return [
        tuple(row)
        for row in keeper.execute(
            "SELECT u.username, k.by_name, k.reason FROM kicks AS k"
            " JOIN users AS u ON u.id = k.user_id ORDER BY k.id"
        )
    ]


def test_a_kick_made_while_a_node_is_cut_off_reaches_it_when_it_is_back(
    make_server: Callable[..., RunningServer], postgres_database: tuple[str, Any], chat_db: str
) -> None:
    """A kick is a committed row: node B, cut off from the database when it is made
    (and so deaf to its notice), applies it once it is back, exactly once."""
    url, keeper = postgres_database
    a = make_server(rate_per_second=0)
    with open_database(chat_db) as conn:
        users.set_role(conn, "admin", "admin")
    with _role_of_its_own(keeper, url) as (role, b_url):
        b = make_server(rate_per_second=0, db=b_url)
        try:
            admin = a.login("admin", "admin123")
            bob = b.login("bob", "qwerty")
            _users_are(admin, "admin, bob")
            # Cut node B off: every connection of its role ended, and no new one let in.
            keeper.execute(f"ALTER ROLE {role} NOLOGIN")
            keeper.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.send("/kick bob flooding")
            admin.expect(r"^\*\*\* bob was kicked\.$")  # the reply of today
            wait_for(lambda: _kicks(keeper), what="the kick committed")
            assert _kicks(keeper) == [("bob", "admin", "flooding")]
            assert "*** You were kicked by admin (flooding)." not in bob.received
            keeper.execute(f"ALTER ROLE {role} LOGIN")
            bob.expect(r"^\*\*\* You were kicked by admin \(flooding\)\.$", timeout=15)
            bob.wait_closed()
            # Applied once: bob is back on node B, and a later kick (of carol, on B)
            # is applied there without kicking bob again.
            bob = b.login("bob", "qwerty")
            carol = b.login("carol", "carol-pw")
            _users_are(admin, "admin, bob, carol")
            admin.send("/kick carol")
            admin.expect(r"^\*\*\* carol was kicked\.$")
            carol.expect(r"^\*\*\* You were kicked by admin\.$")
            carol.wait_closed()
            bob.send("still here")
            bob.expect("^You said: still here$")
            admin.expect("^bob: still here$")
        finally:
            b.stop()


def test_a_starting_node_applies_only_the_kicks_made_after_it(
    make_server: Callable[..., RunningServer], postgres_database: tuple[str, Any], chat_db: str
) -> None:
    _, keeper = postgres_database
    a = make_server(rate_per_second=0)
    with open_database(chat_db) as conn:
        users.set_role(conn, "admin", "admin")
    b = make_server(rate_per_second=0)
    admin = a.login("admin", "admin123")
    bob = b.login("bob", "qwerty")
    _users_are(admin, "admin, bob")
    admin.send("/kick bob")
    bob.wait_closed()
    (newest,) = keeper.execute("SELECT max(id) FROM kicks").fetchone()
    c = make_server(rate_per_second=0)
    presence = c.server.service._presence
    assert presence is not None and presence.last_kick == newest
    carol = c.login("carol", "carol-pw")
    _users_are(admin, "admin, carol")
    admin.send("/kick carol")
    carol.expect(r"^\*\*\* You were kicked by admin\.$")
    carol.wait_closed()
    assert presence.last_kick == newest + 1


def test_three_nodes_deliver_everything_once_in_one_order(
    make_server: Callable[..., RunningServer],
) -> None:
    servers = [make_server(rate_per_second=0) for _ in range(3)]
    people = [("alice", "pass123"), ("bob", "qwerty"), ("carol", "carol-pw")]
    clients = [server.login(name, pw) for server, (name, pw) in zip(servers, people, strict=True)]
    watcher = servers[1].login("admin", "admin123")  # sees everyone's, in commit order
    _users_are(clients[0], "admin, alice, bob, carol")
    count = 40

    def talk(client: LineClient) -> None:
        for i in range(count):
            client.send(f"{client.name} {i}")

    senders = [threading.Thread(target=talk, args=(client,)) for client in clients]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    for client in clients:
        client.expect(f"^You said: {client.name} {count - 1}$")
        _seen(watcher, f"{client.name}: {client.name} {count - 1}")
        for other in clients:
            if other is not client:
                _seen(client, f"{other.name}: {other.name} {count - 1}")
    names = [name for name, _ in people]
    everything = [line for line in watcher.received if line.split(":")[0] in names]
    for name in names:  # each once, in the order sent
        assert [line for line in everything if line.startswith(f"{name}: ")] == [
            f"{name}: {name} {i}" for i in range(count)
        ]
    for client in clients:  # the same order on every node
        others = tuple(f"{other}: " for other in names if other != client.name)
        seen = [line for line in client.received if line.startswith(others)]
        assert seen == [line for line in everything if line.startswith(others)]


def test_irc_names_and_who_see_the_other_nodes_users(
    make_server: Callable[..., RunningServer],
) -> None:
    a = start_irc(make_server, rate_per_second=0)
    b = make_server(rate_per_second=0)
    alice = a.sasl("alice", "pass123")
    bob = b.login("bob", "qwerty")
    bob.send("/join #dev")
    bob.expect(r"^Now talking in #dev\.$")
    alice.send("JOIN #dev")
    alice.expect(r"^:alice!alice@chatd JOIN #dev$")
    deadline = time.monotonic() + TIMEOUT
    while True:  # bob's login reaches node A within a beat
        alice.send("NAMES #dev")
        if alice.expect(r" 353 alice = #dev :").string.endswith(":alice bob"):
            break
        assert time.monotonic() < deadline, alice.received[-3:]
        _idle(alice)
    alice.send("WHO bob")
    alice.expect(r" 352 alice \* bob chatd irc\.test bob H :0 bob$")
    bob.send("hello irc")
    alice.expect(r"^:bob!bob@chatd PRIVMSG #dev :hello irc$")


def test_irc_whois_who_ison_and_userhost_find_a_user_on_another_node(
    make_server: Callable[..., RunningServer],
) -> None:
    """bob is online on node B only, in #dev, which nobody on node A has ever been in
    (node A starts after he joined it): IRC users on node A still find him."""
    b = make_server(rate_per_second=0)
    bob = b.login("bob", "qwerty")
    bob.send("/join #dev")
    bob.expect(r"^Now talking in #dev\.$")
    bob.send("/topic ship it")
    bob.expect(r"^\*\*\* bob set the topic of #dev: ship it$")
    a = start_irc(make_server, rate_per_second=0)
    alice = a.sasl("alice", "pass123")
    deadline = time.monotonic() + TIMEOUT
    while True:  # what node A knows of node B's users, it learns within a beat
        alice.send("WHOIS bob")
        found = alice.expect(r" (311|401) alice bob ")
        if found[1] == "311":
            break
        assert time.monotonic() < deadline, alice.received[-3:]
        _idle(alice)
    assert found.string.endswith(" 311 alice bob bob chatd * :bob")
    whois = alice.lines_until(r" 318 alice bob :End of /WHOIS list\.$")
    assert [line.split(" ", 1)[1] for line in whois] == [
        "319 alice bob :#general #dev",
        "312 alice bob irc.test :chatd",
        "330 alice bob bob :is logged in as",
        "318 alice bob :End of /WHOIS list.",
    ]
    alice.send("WHO #dev")
    alice.expect(r" 352 alice #dev bob chatd irc\.test bob H :0 bob$")
    alice.expect(r" 315 alice #dev :")
    alice.send("TOPIC #dev")
    alice.expect(r" 332 alice #dev :ship it$")
    alice.send("ISON bob carol")
    alice.expect(r" 303 alice :bob$")
    alice.send("USERHOST bob carol")
    alice.expect(r" 302 alice :bob=\+bob@chatd$")
    alice.send("WHOIS carol")
    alice.expect(r" 401 alice carol :No such nick/channel$")
    alice.expect(r" 318 alice carol :End of /WHOIS list\.$")
    line = a.line("carol", "carol-pw")
    line.send("/who #dev")
    line.expect("^Online in #dev: bob$")
    bob.send("/quit")
    deadline = time.monotonic() + TIMEOUT
    while True:  # and that he left, within a beat
        alice.send("WHOIS bob")
        if alice.expect(r" (311|401) alice bob ")[1] == "401":
            break
        assert time.monotonic() < deadline, alice.received[-3:]
        _idle(alice)


def _whois_away(client: Any, nick: str) -> str:
    """The away message WHOIS gives for `nick` ("" if none)."""
    client.send(f"WHOIS {nick}")
    lines = client.lines_until(rf" 318 {client.name} {nick} :End of /WHOIS list\.$")
    away = [line.split(" :", 1)[1] for line in lines if f" 301 {client.name} {nick} :" in line]
    return away[0] if away else ""


def test_an_irc_users_away_message_is_seen_on_the_other_node(
    make_server: Callable[..., RunningServer],
) -> None:
    """AWAY on node A shows in WHOIS, WHO, USERHOST and a private message's answer on
    node B (within a beat), and so does coming back, or leaving while away."""
    a = start_irc(make_server, rate_per_second=0)
    b = start_irc(make_server, rate_per_second=0)
    alice = a.sasl("alice", "pass123")
    bob = b.sasl("bob", "qwerty")
    alice.send("AWAY :at lunch")
    alice.expect(r" 306 alice :You have been marked as being away$")
    wait_for(lambda: _whois_away(bob, "alice") == "at lunch", what="alice away on node B")
    bob.send("WHO alice")
    bob.expect(r" 352 bob \* alice chatd irc\.test alice G :0 alice$")
    bob.send("USERHOST alice")
    bob.expect(r" 302 bob :alice=-alice@chatd$")
    bob.send("PRIVMSG alice :back soon?")
    bob.expect(r" 301 bob alice :at lunch$")
    alice.expect(r"^:bob!bob@chatd PRIVMSG alice :back soon\?$")
    alice.send("AWAY")
    alice.expect(r" 305 alice :You are no longer marked as being away$")
    wait_for(lambda: _whois_away(bob, "alice") == "", what="alice back on node B")
    # Away, then gone with a second session still here: no longer away anywhere.
    second = a.sasl("alice", "pass123")
    second.send("AWAY :gone home")
    second.expect(r" 306 alice :")
    wait_for(lambda: _whois_away(bob, "alice") == "gone home", what="away again")
    second.send("QUIT")
    second.wait_closed()
    wait_for(lambda: _whois_away(bob, "alice") == "", what="the away session gone")
