"""Two (or three) chatd nodes on one PostgreSQL database (SPEC §9): clients split across them.

    python3 bench/nodes.py [--nodes 2] [--clients 100] [--senders 10] [--rate 40000]
                           [--seconds 10] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Makes a fresh database (dropped at the end), starts `--nodes` `chatd serve` on
it (1, or 0 for one node on SQLite: baselines), logs the clients in spread
over the nodes, and has senders on every node say timestamped, numbered
messages at a fixed rate of deliveries a second over all recipients. Prints
deliveries a second; delivery latency (said on one node, received by sampled
clients on every node), over all and for the deliveries that crossed nodes
alone (`cross_node_*`); and loss, duplicates and order as the sampled
clients saw them.
"""

from __future__ import annotations

import argparse
import json

import loadgen
from common import chat_nodes, cpu_seconds, percentile, postgres_option


def run(  # noqa: PLR0917
    server: str, clients: int, senders: int, rate: float, seconds: float, count: int = 2
) -> dict[str, float]:
    """`count` nodes on a new PostgreSQL database (0: one node on SQLite, a baseline)."""
    with chat_nodes(server, count, clients) as (nodes, _):
        # Client n logs in to node n % len(nodes): the senders (the first ones) and
        # the sampled recipients (every quarter) are on every node.
        node_of = {n: n % len(nodes) for n in range(clients)}
        connected = [
            loadgen.connect_all(nodes[node_of[n]].port, 1, loadgen.CHAT, first=n)[0]
            for n in range(clients)
        ]
        message_rate = rate / (clients - 1)
        messages = max(1, int(message_rate * seconds / senders))
        fanout = loadgen.Fanout(
            connected,
            senders,
            messages,
            loadgen.CHAT,
            rate=message_rate,
            samples=4,
            node_of=node_of if len(nodes) > 1 else None,
        )
        cpu_before = [cpu_seconds(node.pid) for node in nodes]
        elapsed = fanout.run()
        cpu = [
            cpu_seconds(node.pid) - before for node, before in zip(nodes, cpu_before, strict=True)
        ]
        delivered = sum(c.received for c in connected)
        latencies = fanout.tally.latencies
        cross = fanout.tally.cross_node
        figures = {
            "offered_per_s": rate,
            "deliveries_per_s": delivered / elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            # Only the deliveries that crossed nodes (none on one node).
            "cross_node_p50_ms": percentile(cross, 0.5) * 1000,
            "cross_node_p99_ms": percentile(cross, 0.99) * 1000,
            "cross_node_max_ms": max(cross) * 1000 if cross else float("nan"),
            "lost": float(fanout.lost()),
            "duplicated": float(fanout.tally.duplicates + fanout.extra()),
            "out_of_order": float(fanout.tally.out_of_order),
            "node_cpu_s": sum(cpu),
            "seconds": elapsed,
        }
        loadgen.close_all(connected)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=40_000.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--nodes", type=int, choices=(0, 1, 2, 3), default=2, help="1, or 0 (SQLite): baselines"
    )
    postgres_option(parser)
    args = parser.parse_args()
    figures = run(args.postgres, args.clients, args.senders, args.rate, args.seconds, args.nodes)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
