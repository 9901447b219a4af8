"""Every node's database connections cut, again and again, under load (SPEC §9):
nothing falsely acknowledged, every stored message delivered once, in order.

    python3 bench/nodecut.py [--nodes 2] [--senders 5] [--seconds 10] [--cut-every 1.0]
                             [--runs 1] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Makes a fresh database (dropped at the end) and starts `--nodes` nodes on it.
On each node, `--senders` senders say numbered messages in #load, in bursts
of 8, each answered `You said:` or refused ("could not be saved"), and one
watcher in #load records every message it receives. Every `--cut-every`
seconds, PostgreSQL ends every connection chatd has to the database
(`pg_terminate_backend`: the writers, the feeds, the listeners, presence,
the readers). After `--seconds` the senders stop; once the watchers have
caught up (or 30 s have passed) the database is read. Prints, per run:
acknowledged, refused, stored; acknowledged but not stored and refused but
stored (both must be 0); and for the watchers together, stored messages
missing, duplicated or out of commit order (all must be 0), and sessions
cut off (must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import threading
import time

from common import LineClient, Sender, chat_nodes, postgres_option

SETTLE_S = 30.0  # how long the watchers may take to catch up once the load stops


class Watcher(threading.Thread):
    """A user in #load who only reads: the messages said there, in the order received."""

    def __init__(self, port: int, number: int) -> None:
        super().__init__(daemon=True)
        self.client = LineClient(port)
        answer = self.client.login(f"user{number}", f"pw{number}")
        if not answer.startswith("Welcome, "):
            raise RuntimeError(f"user{number}: {answer}")
        self.client.send_line("/join #load")
        self.client.expect("Now talking in #load")
        self.received: list[str] = []
        self.cut_off = False

    def run(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the run
            while (line := self.client.read_line()) is not None:
                name, colon, body = line.partition(": ")
                if colon and name.startswith("user") and body.startswith(name + "-"):
                    self.received.append(body)
            self.cut_off = True


def _cut(url: str) -> int:
    """End every connection chatd has to the database; returns how many."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'chatd'"
        ).fetchall()
    return len(rows)


def _stored(url: str) -> list[str]:
    """The bodies said in #load, in commit (id) order."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT m.body FROM messages AS m JOIN rooms AS r ON r.id = m.room_id"
            " WHERE m.kind = 'public' AND r.name = '#load' ORDER BY m.id"
        ).fetchall()
    return [str(body) for (body,) in rows]


def _order_breaks(received: list[str], position: dict[str, int]) -> int:
    """How often a watcher received a stored message before one committed earlier."""
    positions = [position[body] for body in received if body in position]
    return sum(1 for before, after in itertools.pairwise(positions) if after < before)


def run(
    server: str, count: int, senders: int, seconds: float, cut_every: float
) -> dict[str, float]:
    users = count * (senders + 1)
    with chat_nodes(server, count, users) as (nodes, url):
        watchers = [Watcher(node.port, count * senders + i) for i, node in enumerate(nodes)]
        talking = [
            Sender(node.port, i * senders + n)
            for i, node in enumerate(nodes)
            for n in range(senders)
        ]
        for thread in (*watchers, *talking):
            thread.start()
        cuts = connections_cut = 0
        started = time.monotonic()
        next_cut = started + cut_every
        while (now := time.monotonic()) < started + seconds:
            if now >= next_cut:
                connections_cut += _cut(url)
                cuts += 1
                next_cut += cut_every
            time.sleep(min(0.05, max(0.0, next_cut - now)))
        for sender in talking:
            sender.stop.set()
        for sender in talking:
            sender.join(SETTLE_S)
        stored = _stored(url)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and any(len(w.received) < len(stored) for w in watchers):
            time.sleep(0.1)
        acknowledged = {text for sender in talking for text in sender.acknowledged}
        refused = {text for sender in talking for text in sender.refused}
        kept = set(stored)
        position = {body: index for index, body in enumerate(stored)}
        figures = {
            "cuts": float(cuts),
            "connections_cut": float(connections_cut),
            "acknowledged": float(len(acknowledged)),
            "refused": float(len(refused)),
            "stored": float(len(stored)),
            "acknowledged_not_stored": float(len(acknowledged - kept)),
            "refused_but_stored": float(len(refused & kept)),
            "missing": float(sum(len(kept - set(w.received)) for w in watchers)),
            "duplicated": float(sum(len(w.received) - len(set(w.received)) for w in watchers)),
            "out_of_order": float(sum(_order_breaks(w.received, position) for w in watchers)),
            "not_stored_but_received": float(sum(len(set(w.received) - kept) for w in watchers)),
            "sessions_cut_off": float(
                sum(s.cut_off for s in talking) + sum(w.cut_off for w in watchers)
            ),
            "wrong_answers": float(sum(bool(s.wrong) for s in talking)),
        }
        for thread in (*talking, *watchers):
            thread.client.close()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--senders", type=int, default=5, help="on each node")
    parser.add_argument("--seconds", type=float, default=10.0, help="of load")
    parser.add_argument("--cut-every", type=float, default=1.0, help="seconds between cuts")
    parser.add_argument("--runs", type=int, default=1)
    postgres_option(parser)
    args = parser.parse_args()
    for _ in range(args.runs):
        figures = run(args.postgres, args.nodes, args.senders, args.seconds, args.cut_every)
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
