"""Two chatd nodes on one PostgreSQL database (SPEC §9): clients split across them.

    python3 bench/nodes.py [--clients 100] [--senders 10] [--rate 40000] [--seconds 10]
                           [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Makes a fresh database (dropped at the end), starts two `chatd serve` on it,
logs half the clients in to each, and has senders on both nodes say
timestamped, numbered messages at a fixed rate of deliveries a second over
all recipients. Prints deliveries a second, delivery latency (said on one
node, received by sampled clients on both: half of what they receive crossed
nodes), and loss, duplicates and order as the sampled clients saw them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import loadgen
from common import (
    POSTGRES_URL,
    ChatdServer,
    cpu_seconds,
    create_postgres_database,
    drop_postgres_database,
    percentile,
    write_users,
)


def run(  # noqa: PLR0917
    server: str, clients: int, senders: int, rate: float, seconds: float, count: int = 2
) -> dict[str, float]:
    """`count` nodes on a new PostgreSQL database (0: one node on SQLite, a baseline)."""
    name, url = create_postgres_database(server) if count else ("", "")
    nodes: list[ChatdServer] = []
    try:
        for _ in range(max(count, 1)):
            directory = Path(tempfile.mkdtemp(prefix="chatd-nodes-"))
            write_users(directory / "users.txt", clients)
            flags = ["--rate-per-second", "0", "--max-per-address", str(clients + 10)]
            db = url or directory / "chat.db"
            nodes.append(ChatdServer(clients, db=db, directory=directory, flags=flags))
        half = clients // 2
        on_a = loadgen.connect_all(nodes[0].port, half, loadgen.CHAT, first=0)
        on_b = loadgen.connect_all(nodes[-1].port, clients - half, loadgen.CHAT, first=half)
        # Interleaved, so that the senders (the first ones) and the sampled
        # recipients (every quarter) are on both nodes.
        connected = [c for pair in zip(on_a, on_b, strict=False) for c in pair]
        message_rate = rate / (clients - 1)
        messages = max(1, int(message_rate * seconds / senders))
        fanout = loadgen.Fanout(
            connected, senders, messages, loadgen.CHAT, rate=message_rate, samples=4
        )
        cpu_before = [cpu_seconds(node.pid) for node in nodes]
        elapsed = fanout.run()
        cpu = [
            cpu_seconds(node.pid) - before for node, before in zip(nodes, cpu_before, strict=True)
        ]
        delivered = sum(c.received for c in connected)
        latencies = fanout.tally.latencies
        figures = {
            "offered_per_s": rate,
            "deliveries_per_s": delivered / elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "lost": float(fanout.lost()),
            "duplicated": float(fanout.tally.duplicates + fanout.extra()),
            "out_of_order": float(fanout.tally.out_of_order),
            "node_cpu_s": sum(cpu),
            "seconds": elapsed,
        }
        loadgen.close_all(connected)
        return figures
    finally:
        for node in nodes:
            node.stop()
            node.__exit__()
        time.sleep(0.2)
        if name:
            drop_postgres_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=40_000.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--nodes", type=int, choices=(0, 1, 2), default=2, help="1, or 0 (SQLite): baselines"
    )
    parser.add_argument(
        "--postgres", default=POSTGRES_URL, help="server URL (default: $CHATD_BENCH_POSTGRES)"
    )
    args = parser.parse_args()
    figures = run(args.postgres, args.clients, args.senders, args.rate, args.seconds, args.nodes)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
