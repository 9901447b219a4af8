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
