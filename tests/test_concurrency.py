"""Many clients at once: everyone sees everything, in each sender's order, and it is all stored."""

from __future__ import annotations

import threading
from pathlib import Path

from chatd.storage import open_database
from tests.conftest import LineClient, RunningServer

CLIENTS = 12
MESSAGES = 15


def test_concurrent_clients_all_receive_every_message_in_order(
    make_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    accounts = [(f"user{i:02d}", f"pw-{i}") for i in range(CLIENTS)]
    (tmp_path / "many.txt").write_text("".join(f"{n}:{p}\n" for n, p in accounts))
    server: RunningServer = make_server(users_file=tmp_path / "many.txt", rate_per_second=0)
    clients = [server.login(name, password) for name, password in accounts]
    for client in clients:  # wait until everyone is in: later joins are no messages
        client.send("/users")
        client.expect(f"^Active users: {', '.join(n for n, _ in accounts)}$")

    def talk(client: LineClient) -> None:
        for number in range(MESSAGES):
            client.send(f"{client.name} says {number}")

    threads = [threading.Thread(target=talk, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for client in clients:
        seen: dict[str, list[int]] = {}
        own: list[int] = []
        while len(own) < MESSAGES or sum(map(len, seen.values())) < (CLIENTS - 1) * MESSAGES:
            line = client.read_line()
            assert line is not None
            if line.startswith("You said: "):
                own.append(int(line.rsplit(" ", 1)[1]))
            elif " says " in line:
                sender, _, rest = line.partition(": ")
                seen.setdefault(sender, []).append(int(rest.rsplit(" ", 1)[1]))
        assert own == list(range(MESSAGES))
        assert len(seen) == CLIENTS - 1
        assert all(numbers == list(range(MESSAGES)) for numbers in seen.values())

    with open_database(tmp_path / "chat.db") as conn:
        stored = conn.execute("SELECT count(*) FROM messages WHERE kind = 'public'").fetchone()[0]
    assert stored == CLIENTS * MESSAGES
