"""SIGKILL of one of two chatd nodes under load (SPEC §9): nothing acknowledged lost, and
its users gone from `/users` on the other node within 15 s.

    python3 bench/nodekill.py [--senders 20] [--before 3] [--after 2] [--runs 1]
                              [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Makes a fresh database (dropped at the end), starts nodes A and B on it,
and logs `--senders` senders in to each. Each sender says numbered messages
in a room of their own, in bursts of 8, and records every `You said:` it
gets. After `--before` seconds node B is killed with SIGKILL; the senders on
A go on for `--after` seconds more while an observer on A asks `/users`
every 0.2 s until none of B's users is listed. Then every acknowledged
message is looked for in the database. Prints, per run: acknowledged,
stored, acknowledged but missing (must be 0), and the seconds from the kill
until B's users had left A's `/users`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import time

from common import LineClient, Sender, chat_nodes, postgres_option

DEADLINE_S = 30.0  # how long B's users may take to leave before the run gives up


def _users(observer: LineClient) -> set[str]:
    observer.send_line("/users")
    line = observer.expect("Active users: ")
    return set(line.removeprefix("Active users: ").split(", "))


def _stored(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT body FROM messages WHERE kind = 'public'").fetchall()
    return {str(body) for (body,) in rows}


def run(server: str, senders: int, before_s: float, after_s: float) -> dict[str, float]:
    users = 2 * senders + 1
    with chat_nodes(server, 2, users) as (nodes, url):
        node_a, node_b = nodes
        on_a = [Sender(node_a.port, n) for n in range(senders)]
        on_b = [Sender(node_b.port, n) for n in range(senders, 2 * senders)]
        observer = LineClient(node_a.port)
        observer.login(f"user{2 * senders}", f"pw{2 * senders}")
        b_users = {sender.name for sender in on_b}
        for sender in on_a + on_b:
            sender.start()
        time.sleep(before_s)  # the load runs for this long before the kill
        node_b.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        node_b.process.wait()
        gone_after = float("nan")
        while time.monotonic() - killed_at < DEADLINE_S:
            if not _users(observer) & b_users:
                gone_after = time.monotonic() - killed_at
                break
            time.sleep(0.2)
        remaining = after_s - (time.monotonic() - killed_at)
        if remaining > 0:
            time.sleep(remaining)  # A's senders go on after the kill
        for sender in on_a + on_b:
            sender.stop.set()
        for sender in on_a + on_b:
            sender.join(10)
        acknowledged = {text for sender in on_a + on_b for text in sender.acknowledged}
        stored = _stored(url)
        return {
            "acknowledged": float(len(acknowledged)),
            "acknowledged_on_b": float(sum(len(s.acknowledged) for s in on_b)),
            "stored": float(len(stored)),
            "acknowledged_missing": float(len(acknowledged - stored)),
            "users_gone_after_s": gone_after,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senders", type=int, default=20, help="on each node")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--after", type=float, default=2.0, help="seconds of load after")
    parser.add_argument("--runs", type=int, default=1)
    postgres_option(parser)
    args = parser.parse_args()
    results = [run(args.postgres, args.senders, args.before, args.after) for _ in range(args.runs)]
    for figures in results:
        print(json.dumps(figures))
    if len(results) > 1:
        gone = [r["users_gone_after_s"] for r in results]
        print(json.dumps({"median_users_gone_after_s": statistics.median(gone)}))


if __name__ == "__main__":
    main()
