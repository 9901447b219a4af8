"""Many people talking at once: committed batches go out whole, in order, exactly once.

Under load the writer commits many messages together and each front end
sends a member its share of a batch in one write; these tests make batches
happen (everyone sends at once) and check what every client receives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.conftest import LineClient, RunningServer
from tests.irc_helpers import IrcClient, start_irc

USERS = "".join(f"u{n}:pw{n}\n" for n in range(6))
SAID = 15


def _burst(client: LineClient, lines: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: client.send("\n".join(lines)))
    thread.start()
    return thread


def _read_until(client: LineClient, endings: set[str]) -> None:
    """Read until a line ending with each of `endings` has come."""
    while not all(any(line.endswith(end) for line in client.received) for end in endings):
        if client.read_line(30) is None:
            raise AssertionError(f"{client.name}: closed")


def test_everyone_talking_at_once_gets_everything_once_and_in_order(
    make_server: Callable[..., RunningServer], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "many.txt"
    users.write_text(USERS)
    irc = start_irc(make_server, users_file=users, rate_per_second=0)
    line_clients = [irc.line(f"u{n}", f"pw{n}") for n in range(4)]
    echoing: IrcClient = irc.sasl("u4", "pw4", caps="echo-message server-time")
    quiet: IrcClient = irc.irc()
    quiet.register_pass("u5", "pw5")
    talkers: list[LineClient] = [*line_clients, echoing, quiet]
    names = [f"u{n}" for n in range(6)]
    threads = []
    for name, client in zip(names, talkers, strict=True):
        texts = [f"{name} says {k}" for k in range(SAID)]
        if isinstance(client, IrcClient):
            texts = [f"PRIVMSG #general :{text}" for text in texts]
        threads.append(_burst(client, texts))
    for thread in threads:
        thread.join()

    for name, client in zip(names, talkers, strict=True):
        expected = {f"{other} says {SAID - 1}" for other in names}
        if client is quiet:
            expected.discard(f"{name} says {SAID - 1}")  # no echo-message: nothing of its own
        _read_until(client, expected)
        texts = [line for line in client.received if " says " in line]
        for other in names:
            heard = [int(t.rsplit(" ", 1)[1]) for t in texts if f"{other} says " in t]
            if other == name and client is quiet:
                assert heard == [], name
            elif other == name and client is not echoing:
                assert [t.startswith("You said: ") for t in texts if f"{other} says " in t] == [
                    True
                ] * SAID
                assert heard == list(range(SAID)), (name, "acks")
            else:
                assert heard == list(range(SAID)), (name, other, heard)
    for client in line_clients:
        assert not any(
            line.startswith("You said: u") and "says" not in line for line in client.received
        )
    assert all(line.startswith("@time=") for line in echoing.received if " says " in line)
    writer = irc.running.server.service._writer
    assert writer.jobs > writer.batches  # messages were committed, and delivered, together


# A session reads its next lines while its messages are committed (InFlight):
# every answer must still come back in the order its line was sent.


def test_line_answers_keep_the_order_of_the_lines_sent_at_once(
    make_server: Callable[..., RunningServer], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "two.txt"
    users.write_text("u0:pw0\nu1:pw1\n")
    server = make_server(users_file=users, rate_per_second=0, max_line_bytes=100)
    talker, listener = server.login("u0", "pw0"), server.login("u1", "pw1")
    burst = [f"message {k}" for k in range(40)]
    burst[10:10] = ["/users"]  # a command waits for the messages before it
    burst[20:20] = ["x" * 200]  # so does an error
    burst[30:30] = ["/nosuchcommand"]
    talker.send("\n".join(burst))
    talker.expect("^You said: message 39$")
    answers = [line for line in talker.received if not line.startswith(("Welcome", "***"))]
    said = [f"You said: message {k}" for k in range(40)]
    users_at = answers.index("Active users: u0, u1")
    too_long_at = next(n for n, line in enumerate(answers) if "line too long" in line)
    unknown_at = next(n for n, line in enumerate(answers) if "unknown command" in line)
    assert [line for line in answers if line.startswith("You said: ")] == said
    assert answers.index(said[9]) < users_at < answers.index(said[10])
    assert answers.index(said[18]) < too_long_at < answers.index(said[19])
    assert answers.index(said[27]) < unknown_at < answers.index(said[28])
    listener.expect("^u0: message 39$")
    heard = [line for line in listener.received if line.startswith("u0: message ")]
    assert heard == [f"u0: message {k}" for k in range(40)]


def test_irc_answers_keep_the_order_of_the_lines_sent_at_once(
    make_server: Callable[..., RunningServer], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "two.txt"
    users.write_text("u0:pw0\nu1:pw1\n")
    irc = start_irc(make_server, users_file=users, rate_per_second=0)
    talker = irc.sasl("u0", "pw0", caps="echo-message")
    listener = irc.line("u1", "pw1")
    burst: list[str] = []
    for k in range(30):
        burst += [f"PRIVMSG #general :message {k}", f"PING :ping{k}"]
    burst[20:20] = ["WHOIS u1"]  # after message 9 and its PING
    burst[41:41] = ["PRIVMSG #nowhere :lost"]  # an error reply, after message 19
    talker.send("\r\n".join(burst))
    talker.expect(r"^:irc\.test PONG irc\.test :ping29$")
    order = {line: n for n, line in enumerate(talker.received)}
    echo = [order[f":u0!u0@chatd PRIVMSG #general :message {k}"] for k in range(30)]
    pong = [order[f":irc.test PONG irc.test :ping{k}"] for k in range(30)]
    assert echo == sorted(echo) and pong == sorted(pong)
    # Each PONG after its message. (The echo of a message sent after a PING may come
    # before its PONG: messages committed together are echoed together.)
    assert all(e < p for e, p in zip(echo, pong, strict=True))
    whois_end = next(n for n, line in enumerate(talker.received) if " 318 " in line)
    assert pong[9] < whois_end < echo[10]
    no_channel = next(n for n, line in enumerate(talker.received) if " 403 " in line)
    assert pong[19] < no_channel < echo[20]
    listener.expect("^u0: message 29$")
    heard = [line for line in listener.received if line.startswith("u0: message ")]
    assert heard == [f"u0: message {k}" for k in range(30)]
