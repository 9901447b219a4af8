"""How far one PostgreSQL takes chatd (docs/deploy.md): the ceiling, what it costs, what grows.

    python3 bench/ceiling.py sweep    [--nodes 1,2,3,0] [--clients 200] [--room-size 10]
                                      [--rates 250,500,1000,2000] [--seconds 5] [--runs 3]
                                      [--closed]
    python3 bench/ceiling.py table    SWEEP.json...
    python3 bench/ceiling.py pgbench  [--writers 1,2,3] [--batches 1,8,64] [--seconds 10]
    python3 bench/ceiling.py presence [--online 1000,10000] [--rooms 10]
    python3 bench/ceiling.py storage  [--messages 1000000]

`sweep` starts 1, 2 or 3 nodes (0: one node on SQLite, a baseline) on a new
database, logs the clients in spread over the nodes, puts them in rooms of
`--room-size` (each room spanning the nodes; 0: all in #general with 10
talking per node), and has every client of a room talk, at each offered
rate in turn (messages a second over all senders), then, with `--closed`,
as fast as they are acknowledged (8 in flight each). For each step it
prints what arrived (messages and deliveries a second, latency p50/p99,
loss, duplicates, order), the write transactions that stored them (counted
from the rows' xmin: exact, whatever else the server does), and where the
CPU went: the nodes, PostgreSQL's backends for this database, PostgreSQL's
own processes (WAL writer, checkpointer...), this load generator, and the
rest of the machine (other work: the noise). `table` turns sweeps' JSON
into the Markdown tables of medians docs/deploy.md shows.

`pgbench` runs what a chatd commit does, alone: BEGIN, the advisory lock,
NOTIFY, a batch of messages inserted with one statement, COMMIT; one pgbench
client per node's writer; then again with each writer also reading the
newest messages as every node's feed does.

`presence` times what each node does at every beat with many users online
on 3 nodes: the read of the others' sessions and handing them to the hub.

`storage` fills a new database with generated messages through chatd's own
storage layer and reports the bytes per message of the table and of each
index.

Each command writes its figures as JSON to stdout and its progress to
stderr; each makes its own databases on `--postgres` and drops them after.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import loadgen
from common import (
    ChatdServer,
    chat_nodes,
    cpu_seconds,
    create_postgres_database,
    drop_postgres_database,
    percentile,
    postgres_option,
)

SENDERS_PER_NODE = 10
PGBENCH_PREFILL = 100_000  # messages in the database before pgbench starts
# A step "keeps up" if what was offered arrived within this share of the time...
KEPT_UP = 1.1
# ... and the slowest 1 % of deliveries took at most this long.
P99_LIMIT_MS = 500.0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- where the CPU goes ------------------------------------------------------------------


def _ticks_total() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _cpu_of(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # gone meanwhile
            total += cpu_seconds(pid)
    return total


def _postgres_shared_pids() -> list[int]:
    """PostgreSQL's own processes (no backends): WAL writer, checkpointer, ..."""
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres: ") and any(
            role in command
            for role in ("walwriter", "checkpointer", "background writer", "autovacuum", "stats")
        ):
            found.append(int(status.parent.name))
    return found


class CpuWatch:
    """CPU seconds used over a stretch of time by each party of a run: processes by pid,
    this process (the load generator), and the whole machine (so the rest: other work)."""

    def __init__(self, **parties: list[int]) -> None:
        self.parties = {**parties, "postgres_shared": _postgres_shared_pids()}

    def take(self) -> dict[str, float]:
        self_usage = resource.getrusage(resource.RUSAGE_SELF)
        busy, everything = _ticks_total()
        return {
            **{name: _cpu_of(pids) for name, pids in self.parties.items()},
            "loadgen": self_usage.ru_utime + self_usage.ru_stime,
            "machine_busy": busy,
            "machine_all": everything,
            "at": time.monotonic(),
        }

    @staticmethod
    def shares(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Each party's CPU as a percentage of one core over the stretch (200: both of 2)."""
        wall = after["at"] - before["at"]
        used = {k: after[k] - before[k] for k in before if k not in ("at", "machine_all")}
        ours = sum(v for k, v in used.items() if k != "machine_busy")
        shares = {f"cpu_{k}_pct": 100 * v / wall for k, v in used.items() if k != "machine_busy"}
        shares["cpu_others_pct"] = max(0.0, 100 * (used["machine_busy"] - ours) / wall)
        shares["cpu_machine_busy_pct"] = 100 * used["machine_busy"] / wall
        shares["cores"] = round((after["machine_all"] - before["machine_all"]) / wall)
        return shares


# --- the sweep ---------------------------------------------------------------------------


def _backend_pids(url: str, application: str = "chatd") -> list[int]:
    """The process ids of the backends of `url`'s database that `application` opened."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            (application,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _written(url: str, after_id: int) -> tuple[int, int, int]:
    """(messages, write transactions that stored them, newest id) for ids after `after_id`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text), coalesce(max(id), %s)"
            " FROM messages WHERE id > %s",
            (after_id, after_id),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _reset(clients: Sequence[loadgen.Client]) -> None:
    """Make logged-in clients fresh for another Fanout (its counts start at zero)."""
    for client in clients:
        loadgen.drain(client)
        client.tail = b""
        client.received = client.bytes_received = client.acks = client.sent = 0
        client.sample = False
        client.last_seq = {}
        client.unacked.clear()


@dataclass(frozen=True)
class Shape:
    """The traffic of a sweep: who is online, who talks, and to whom."""

    clients: int
    room_size: int  # 0: everyone in #general, SENDERS_PER_NODE talking per node
    rates: tuple[float, ...]  # offered messages a second, over all senders
    seconds: float
    closed: bool  # then one step as fast as acknowledgements allow
    setup_sql: str = ""  # run on the new database first (an experiment: an index option...)


class RoomsFanout(loadgen.Fanout):
    """A Fanout where each client talks in its own room: what a client should receive
    is what the senders of its room said."""

    def __init__(
        self, clients: list[loadgen.Client], messages: int, room_of: dict[int, int], **kw: Any
    ) -> None:
        super().__init__(clients, len(clients), messages, loadgen.CHAT, **kw)
        self.room_of = room_of
        self.talking = Counter(room_of[sender.number] for sender in self.senders)

    def expected_per_client(self, client: loadgen.Client) -> int:
        return (self.talking[self.room_of[client.number]] - 1) * self.messages


def sweep(server: str, counts: Sequence[int], shape: Shape, runs: int) -> list[dict[str, Any]]:
    """Every offered rate on 1, 2, 3 nodes, `runs` times each (fresh nodes every run)."""
    results: list[dict[str, Any]] = []
    for run in range(runs):
        for count in counts:
            with chat_nodes(server, count, shape.clients, setup_sql=shape.setup_sql) as (
                started,
                url,
            ):
                steps = _steps(started, url, count, shape, run=run)
                if any(step["lost"] or step["duplicated"] for step in steps):
                    _keep_logs(started, f"run{run}-nodes{count}")
                results += steps
    return results


def _keep_logs(started: Sequence[ChatdServer], prefix: str) -> None:
    """Copy the nodes' logs (their directories go when they stop) where they can be read."""
    kept = Path(tempfile.gettempdir()) / f"chatd-ceiling-logs-{os.getpid()}"
    kept.mkdir(exist_ok=True)
    for number, node in enumerate(started):
        shutil.copy(node.log, kept / f"{prefix}-node{number}.log")
    _say(f"messages lost or duplicated: the nodes' logs are in {kept}")


def _connect(
    started: list[ChatdServer], shape: Shape
) -> tuple[list[loadgen.Client], dict[int, int]]:
    """Log the clients in, a block of users on each node, and put them in their rooms;
    returns them interleaved (so the first ones, and each room, span every node)
    and each one's room."""
    sizes = [len(range(i, shape.clients, len(started))) for i in range(len(started))]
    firsts = [sum(sizes[:i]) for i in range(len(started))]
    per_node = [
        loadgen.connect_all(node.port, size, loadgen.CHAT, first=first)
        for node, size, first in zip(started, sizes, firsts, strict=True)
    ]
    connected = [c for group in itertools.zip_longest(*per_node) for c in group if c is not None]
    room_of = {client.number: 0 for client in connected}
    if shape.room_size:
        for first in range(0, len(connected), shape.room_size):
            members = connected[first : first + shape.room_size]
            loadgen.join(members, f"#r{first // shape.room_size}")
            room_of.update({client.number: first // shape.room_size for client in members})
    return connected, room_of


def _steps(
    started: list[ChatdServer], url: str, count: int, shape: Shape, *, run: int
) -> list[dict[str, Any]]:
    connected, room_of = _connect(started, shape)
    senders = (
        len(connected) if shape.room_size else min(shape.clients, SENDERS_PER_NODE * len(started))
    )
    watch = CpuWatch(
        nodes=[node.pid for node in started], postgres_backends=_backend_pids(url) if url else []
    )
    last_id = _written(url, 0)[2] if url else 0
    steps: list[dict[str, Any]] = []
    for rate in [*shape.rates, *([None] if shape.closed else [])]:
        _reset(connected)
        messages = max(1, int((rate or 2000) * shape.seconds / senders))
        fanout: loadgen.Fanout
        if shape.room_size:
            fanout = RoomsFanout(connected, messages, room_of, rate=rate, samples=8)
        else:
            fanout = loadgen.Fanout(
                connected, senders, messages, loadgen.CHAT, rate=rate, samples=4
            )
        before = watch.take()
        elapsed = fanout.run()
        after = watch.take()
        latencies = fanout.tally.latencies
        step: dict[str, Any] = {
            "run": run,
            "nodes": count,
            "clients": shape.clients,
            "room_size": shape.room_size or shape.clients,
            "senders": senders,
            "offered_messages_per_s": rate if rate is not None else "closed",
            "messages_per_s": senders * messages / elapsed,
            "deliveries_per_s": sum(c.received for c in connected) / elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "lost": fanout.lost(),
            "duplicated": fanout.tally.duplicates + fanout.extra(),
            "out_of_order": fanout.tally.out_of_order,
            "seconds": elapsed,
        }
        if shape.setup_sql:
            step["setup_sql"] = shape.setup_sql
        if url:
            stored, commits, last_id = _written(url, last_id)
            step["commits_per_s"] = commits / elapsed
            step["messages_per_commit"] = stored / max(commits, 1)
        step.update(CpuWatch.shares(before, after))
        in_time = rate is None or elapsed <= shape.seconds * KEPT_UP
        step["kept_up"] = in_time and step["p99_ms"] <= P99_LIMIT_MS
        steps.append(step)
        _say(_summary(step))
    loadgen.close_all(connected)
    return steps


def _summary(step: dict[str, Any]) -> str:
    offered = step["offered_messages_per_s"]
    commits = (
        f" {step['commits_per_s']:6.0f} commits/s ({step['messages_per_commit']:5.1f} msg each)"
        if "commits_per_s" in step
        else ""
    )
    return (
        f"{step['nodes']} node(s) offered {offered!s:>6} msg/s:"
        f" {step['messages_per_s']:6.0f} msg/s,"
        f" {step['deliveries_per_s']:7.0f} deliveries/s, p50 {step['p50_ms']:6.1f}"
        f" p99 {step['p99_ms']:7.1f} ms, lost {step['lost']}{commits};"
        f" CPU % nodes {step['cpu_nodes_pct']:.0f} pg {step['cpu_postgres_backends_pct']:.0f}"
        f"+{step['cpu_postgres_shared_pct']:.0f} loadgen {step['cpu_loadgen_pct']:.0f}"
        f" others {step['cpu_others_pct']:.0f}" + ("" if step["kept_up"] else "  FELL BEHIND")
    )


# --- pgbench: a chatd commit, alone ------------------------------------------------------

# What the writer's transaction does on PostgreSQL (chatd/writer.py, storage/messages.py,
# storage/engines/postgresql.py): three round trips, BEGIN, one statement that takes the
# lock held to the commit, sends the notice and inserts the whole batch returning its
# ids, COMMIT.
_COMMIT = """\\set sender random(1, 100)
BEGIN;
WITH ids_lock AS MATERIALIZED
 (SELECT pg_advisory_xact_lock(6007002), pg_notify('chatd_messages', ''))
INSERT INTO messages (sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body)
 SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 'public', 1, :sender,
        'user' || :sender, NULL, NULL, 'a chat message of some forty characters ' || n
 FROM ids_lock, generate_series(1, {batch}) AS n ORDER BY n RETURNING id;
COMMIT;
"""

# What each node's feed reads after every commit (messages.committed_after): here
# the newest messages, as many as the writers commit in a round.
_FEED = """SELECT m.id, m.sent_at, m.kind, m.sender_id, m.sender, m.body, m.recipient_id,
 m.recipient, m.room_id, r.name FROM messages AS m LEFT JOIN rooms AS r ON r.id = m.room_id
 WHERE m.id > (SELECT max(id) FROM messages) - {recent} ORDER BY m.id LIMIT 2000;
"""


def pgbench(
    server: str, writers: Sequence[int], batches: Sequence[int], seconds: float
) -> list[dict[str, Any]]:
    results = []
    for count in writers:
        for batch in batches:
            for with_feed in (False, True):
                results.append(_pgbench_once(server, count, batch, seconds, with_feed=with_feed))
                _say(json.dumps(results[-1]))
    return results


def _pgbench_once(
    server: str, writers: int, batch: int, seconds: float, *, with_feed: bool
) -> dict[str, Any]:
    from chatd.storage import open_database

    name, url = create_postgres_database(server)
    try:
        open_database(url).close()  # chatd's schema
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "commit.sql"
            text = _COMMIT.format(batch=batch)
            if with_feed:  # every node reads every commit: `writers` reads a commit
                text += _FEED.format(recent=batch * writers) * writers
            script.write_text(text)
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO users (username, password_hash, created_at)"
                    " SELECT 'user' || n, 'x', 0 FROM generate_series(1, 100) AS n"
                )
                # A chat that has been going for a while, its statistics known: the
                # plans pgbench prepares are those of a table with rows.
                conn.execute(
                    "INSERT INTO messages (sent_at, kind, room_id, sender_id, sender, body)"
                    " SELECT n, 'public', 1, 1 + n %% 100, 'user' || (1 + n %% 100),"
                    " 'a chat message of some forty characters ' || n"
                    " FROM generate_series(1, %s) AS n",
                    (PGBENCH_PREFILL,),
                )
                conn.execute("VACUUM ANALYZE")
            parts = urlsplit_db(url)
            command = [
                "pgbench", "-n", "-M", "prepared", "-c", str(writers), "-j", str(writers),
                "-T", str(int(seconds)), "-f", str(script), "-h", parts["host"],
                "-p", parts["port"], "-U", parts["user"], parts["dbname"],
            ]  # fmt: skip
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            backends: list[int] = []
            deadline = time.monotonic() + 5
            while len(backends) < writers and time.monotonic() < deadline:
                backends = _backend_pids(url, "pgbench")
            watch = CpuWatch(postgres_backends=backends)
            before = watch.take()
            out, err = process.communicate()
            used = CpuWatch.shares(before, watch.take())
            if process.returncode != 0:
                raise RuntimeError(f"pgbench failed: {err.strip()}")
            tps = float(_between(out, "tps = ", " ("))
            latency = float(_between(out, "latency average = ", " ms"))
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT xmin::text) FROM messages"
                ).fetchone()
            assert row is not None
        return {
            "writers": writers,
            "batch": batch,
            "feed_reads": writers if with_feed else 0,
            "commits_per_s": tps,
            "messages_per_s": tps * batch,
            "latency_ms": latency,
            "messages_stored": int(row[0]),
            "commits_stored": int(row[1]),
            **used,
        }
    finally:
        drop_postgres_database(server, name)


def urlsplit_db(url: str) -> dict[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "dbname": parts.path.lstrip("/"),
    }


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


# --- storage per message -----------------------------------------------------------------


def storage(server: str, messages: int, users: int) -> dict[str, Any]:
    """Bytes per message of the messages table, its indexes and its text search index."""
    import psycopg
    from scenarios import generate_database

    name, url = create_postgres_database(server)
    try:
        started = time.monotonic()
        generate_database(url, messages, users)  # type: ignore[arg-type]
        generated_s = time.monotonic() - started
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE messages")
            sizes = dict(
                conn.execute(
                    "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class AS c"
                    " JOIN pg_index AS i ON i.indexrelid = c.oid"
                    " WHERE i.indrelid = 'messages'::regclass"
                ).fetchall()
            )
            row = conn.execute(
                "SELECT pg_relation_size('messages'), pg_total_relation_size('messages'),"
                " pg_database_size(current_database()), count(*), avg(octet_length(body))"
                " FROM messages"
            ).fetchone()
            assert row is not None
            heap, total, database, count, body = row
        per = {f"index {k}": v / count for k, v in sorted(sizes.items())}
        return {
            "messages": int(count),
            "generated_s": generated_s,
            "average_body_bytes": float(body),
            "bytes_per_message_table": heap / count,
            "bytes_per_message_total": total / count,
            "bytes_per_message_database": database / count,
            **{f"bytes_per_message_{k}": v for k, v in per.items()},
            "total_mib": total / 2**20,
        }
    finally:
        drop_postgres_database(server, name)


# --- presence: what each node reads every beat -------------------------------------------


def presence(
    server: str, online: Sequence[int], rooms: int, repeats: int = 20
) -> list[dict[str, Any]]:
    """What a node does every HEARTBEAT_S (and at every login or logout elsewhere) with
    `online` users on 3 nodes, each user a member of one of `rooms` rooms: the query
    of the others' sessions (chatd/storage/nodes.py) and handing them to the hub."""
    import psycopg

    from chatd.core.hub import Hub
    from chatd.rooms import GENERAL_ROOM
    from chatd.storage import nodes as node_store
    from chatd.storage import open_database
    from chatd.storage.rooms import Room

    results = []
    for count in online:
        name, url = create_postgres_database(server)
        try:
            conn = open_database(url)
            with psycopg.connect(url, autocommit=True) as raw:
                raw.execute(
                    "INSERT INTO users (username, password_hash, created_at)"
                    " SELECT 'user' || n, 'x', 0 FROM generate_series(1, %s) AS n",
                    (count,),
                )
                raw.execute(
                    "INSERT INTO rooms (name, created_at)"
                    " SELECT '#r' || n, 0 FROM generate_series(1, %s) AS n",
                    (rooms,),
                )
                raw.execute(
                    "INSERT INTO memberships (room_id, user_id, joined_at)"
                    " SELECT 2 + id %% %s, id, 0 FROM users",
                    (rooms,),
                )
                node_ids = [node_store.register(conn, f"node{n}") for n in range(3)]
                raw.execute(
                    "INSERT INTO node_sessions (node_id, user_id, name)"
                    " SELECT (ARRAY[%s, %s, %s])[1 + id %% 3], id, username FROM users",
                    node_ids,
                )
                raw.execute("VACUUM ANALYZE")
                sessions_bytes = raw.execute(
                    "SELECT pg_total_relation_size('node_sessions')"
                ).fetchone()[0]  # type: ignore[index]
            hub = Hub(50)
            for room_id in range(2, rooms + 2):
                hub._room(Room(room_id, f"#r{room_id - 2}", ""))
            assert hub._rooms[1].name == GENERAL_ROOM
            query, handing = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                rows, away = node_store.online(conn, node_ids[0], 10.0)
                query.append(time.perf_counter() - started)
                started = time.perf_counter()
                hub.set_remote(rows, (), away)
                handing.append(time.perf_counter() - started)
            conn.close()
            results.append(
                {
                    "online": count,
                    "rooms": rooms,
                    "rows_read_per_beat": len(rows),
                    "query_ms_p50": statistics.median(query) * 1000,
                    "set_remote_ms_p50": statistics.median(handing) * 1000,
                    "node_sessions_bytes_per_user": sessions_bytes / count,
                }
            )
            _say(json.dumps(results[-1]))
        finally:
            drop_postgres_database(server, name)
    return results


# --- medians, as docs/deploy.md shows them -----------------------------------------------

_COLUMNS = [
    ("messages_per_s", "msg/s", "{:,.0f}"),
    ("deliveries_per_s", "deliveries/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.0f}"),
    ("p99_ms", "p99 ms", "{:.0f}"),
    ("commits_per_s", "commits/s", "{:.0f}"),
    ("messages_per_commit", "msg/commit", "{:.1f}"),
    ("cpu_nodes_pct", "CPU nodes %", "{:.0f}"),
    ("cpu_postgres_backends_pct", "CPU PostgreSQL %", "{:.0f}"),
    ("cpu_loadgen_pct", "CPU load gen. %", "{:.0f}"),
    ("cpu_others_pct", "CPU others %", "{:.0f}"),
]


def table(steps: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of sweeps' medians over their runs: one row per room size, node
    count and offered rate, with how many of the runs kept up."""
    groups: dict[tuple[Any, int, str], list[dict[str, Any]]] = {}
    for step in steps:
        shape = (step.get("room_size", ""), step["nodes"], str(step["offered_messages_per_s"]))
        groups.setdefault(shape, []).append(step)
    head = ["room", "nodes", "offered msg/s", *(title for _, title, _ in _COLUMNS), "kept up"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (room_size, count, offered), runs in groups.items():
        cells = [str(room_size), str(count) if count else "1 (SQLite)", offered.removesuffix(".0")]
        for key, _, style in _COLUMNS:
            values = [run[key] for run in runs if key in run]
            cells.append(style.format(statistics.median(values)) if values else "")
        kept = sum(run["kept_up"] for run in runs)
        cells.append(f"{kept}/{len(runs)}" if offered != "closed" else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the command line --------------------------------------------------------------------


def _numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    postgres_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    sweep_args = commands.add_parser("sweep", help="offered rates on 1, 2, 3 nodes")
    sweep_args.add_argument("--nodes", default="1,2,3", help="0: one node on SQLite")
    sweep_args.add_argument("--clients", type=int, default=200)
    sweep_args.add_argument(
        "--room-size",
        type=int,
        default=10,
        help="each client talks in a room of this many; 0: all in #general, 10 talking per node",
    )
    sweep_args.add_argument("--rates", default="250,500,1000,2000", help="messages a second")
    sweep_args.add_argument("--seconds", type=float, default=5.0)
    sweep_args.add_argument("--runs", type=int, default=3)
    sweep_args.add_argument("--closed", action="store_true", help="then as fast as acked")
    sweep_args.add_argument("--setup-sql", default="", help="run on the new database first")
    bench_args = commands.add_parser("pgbench", help="a chatd commit alone, in pgbench")
    bench_args.add_argument("--writers", default="1,2,3")
    bench_args.add_argument("--batches", default="1,8,64")
    bench_args.add_argument("--seconds", type=float, default=10.0)
    storage_args = commands.add_parser("storage", help="bytes per stored message")
    storage_args.add_argument("--messages", type=int, default=1_000_000)
    storage_args.add_argument("--users", type=int, default=10_000)
    presence_args = commands.add_parser("presence", help="a node's beat, with many online")
    presence_args.add_argument("--online", default="1000,10000")
    presence_args.add_argument("--rooms", type=int, default=10)
    table_args = commands.add_parser("table", help="medians of sweeps' JSON, as Markdown")
    table_args.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "table":
        print(table([step for path in args.files for step in json.loads(path.read_text())]))
        return
    if args.command == "sweep":
        rates = tuple(_numbers(args.rates))
        shape = Shape(
            args.clients, args.room_size, rates, args.seconds, args.closed, args.setup_sql
        )
        figures: Any = sweep(
            args.postgres, [int(n) for n in _numbers(args.nodes)], shape, args.runs
        )
    elif args.command == "pgbench":
        figures = pgbench(
            args.postgres,
            [int(n) for n in _numbers(args.writers)],
            [int(n) for n in _numbers(args.batches)],
            args.seconds,
        )
    elif args.command == "presence":
        figures = presence(args.postgres, [int(n) for n in _numbers(args.online)], args.rooms)
    else:
        figures = storage(args.postgres, args.messages, args.users)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
