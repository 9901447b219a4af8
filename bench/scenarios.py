"""The benchmark scenarios. Each takes a peer class and sizes, runs once, returns figures.

Figures are plain floats in a dict, named with their unit (`deliveries_per_s`,
`p99_ms`, `rss_per_session_kib`), so run.py can tabulate, compare and chart
them without knowing what they mean.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import builds
import loadgen
from common import (
    ChatdServer,
    LineClient,
    Observer,
    chatd_command,
    cpu_seconds,
    percentile,
    pinned,
)
from peers import Chatd, Peer

Figures = dict[str, float]
SERVER_CPU = 0  # the server's core; the load generator runs on the other
LOADGEN_CPU = 1


def _ms(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000 if values else float("nan")


def _latency(prefix: str, seconds: list[float]) -> Figures:
    return {
        f"{prefix}p50_ms": _ms(seconds, 0.5),
        f"{prefix}p99_ms": _ms(seconds, 0.99),
        f"{prefix}max_ms": max(seconds) * 1000 if seconds else float("nan"),
    }


def _measure(peer: Peer, work: Callable[[], float]) -> tuple[float, float, float, Figures]:
    """Run `work` (returning its seconds); also the server's and our CPU share over it,
    and for a server on PostgreSQL its backends' (`database_cpu`, share of a core)."""
    database = _backends_cpu(peer)
    server_cpu, own_cpu = cpu_seconds(peer.pid), time.process_time()
    elapsed = work()
    server_cpu, own_cpu = cpu_seconds(peer.pid) - server_cpu, time.process_time() - own_cpu
    extra: Figures = {}
    if database is not None:
        after = _backends_cpu(peer) or {}
        used = sum(cpu - database.get(pid, 0.0) for pid, cpu in after.items())
        extra["database_cpu"] = used / elapsed
    return elapsed, server_cpu / elapsed, own_cpu / elapsed, extra


def _backends_cpu(peer: Peer) -> dict[int, float] | None:
    """CPU seconds used so far by each database backend of a peer on PostgreSQL, else None.
    (A backend that ended during the work is not counted; chatd keeps its connections.)"""
    backends: Callable[[], list[int]] | None = getattr(peer, "database_pids", None)
    if backends is None:
        return None
    used = {}
    for pid in backends():
        with contextlib.suppress(OSError):  # gone since
            used[pid] = cpu_seconds(pid)
    return used


def _settle(pid: int, limit_s: float = 10.0) -> None:
    """Wait until the server is idle (under 4 % of a core over a quarter of a second):
    what a thousand logins left it to do (writes, a WAL checkpoint) is not the case's."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.25)
        if cpu_seconds(pid) - before < 0.01:
            return


def fanout(
    peer_class: type[Any], clients: int, senders: int, messages: int, *, rate: float | None = None
) -> Figures:
    """C clients logged in; S of them say M messages each, at most 8 in flight (or at a
    fixed rate of deliveries a second); deliveries a second over all recipients."""
    peer: Peer = peer_class(clients, SERVER_CPU)
    try:
        connected = loadgen.connect_all(peer.port, clients, peer.dialect, wave=peer.connect_wave)
        message_rate = None if rate is None else rate / (clients - 1)
        run = loadgen.Fanout(connected, senders, messages, peer.dialect, rate=message_rate)
        elapsed, server_cpu, own_cpu, database = _measure(peer, run.run)
        delivered = sum(c.received for c in connected)
        figures = {
            "deliveries_per_s": delivered / elapsed,
            **_latency("", run.tally.latencies),
            "lost": float(run.lost()),
            "duplicated": float(run.tally.duplicates + run.extra()),
            "out_of_order": float(run.tally.out_of_order),
            "server_cpu": server_cpu,
            "loadgen_cpu": own_cpu,
            # Work done per second of the server's CPU: steadier than per second of
            # wall time when something else shares the machine.
            "deliveries_per_cpu_s": delivered / (server_cpu * elapsed) if server_cpu else 0.0,
            **database,
        }
        if rate is not None:
            figures["offered_per_s"] = rate
        loadgen.close_all(connected)
        return figures
    finally:
        peer.close()


def pingpong(peer_class: type[Any], clients: int, messages: int) -> Figures:
    """Every client says a message and waits for its acknowledgement before the next."""
    peer: Peer = peer_class(clients, SERVER_CPU)
    try:
        connected = loadgen.connect_all(peer.port, clients, peer.dialect, wave=peer.connect_wave)
        run = loadgen.Fanout(connected, clients, messages, peer.dialect, window=1)
        elapsed, server_cpu, own_cpu, database = _measure(peer, run.run)
        acks = sum(c.acks for c in connected)
        loadgen.close_all(connected)
        return {
            "round_trips_per_s": acks / elapsed,
            **_latency("", run.tally.round_trips),
            "lost": float(run.lost()),
            "server_cpu": server_cpu,
            "loadgen_cpu": own_cpu,
            "round_trips_per_cpu_s": acks / (server_cpu * elapsed) if server_cpu else 0.0,
            **database,
        }
    finally:
        peer.close()


def room_fanout(clients: int, talkers: int, messages: int, room: str | None) -> Figures:
    """C clients logged in; T of them `/join` a room (None: stay in #general, with
    everyone) and say M messages each there, at most 8 in flight. Figures for the
    room's members, what reached everyone else (nothing, in a room), and the
    server's CPU per message: what a room message costs, whoever else is online."""
    peer = Chatd(clients, SERVER_CPU)
    try:
        connected = loadgen.connect_all(peer.port, clients, peer.dialect, wave=peer.connect_wave)
        members = connected[:talkers] if room else connected
        if room:
            loadgen.join(members, room)
        _settle(peer.pid)  # the logins' writes and checkpoint, the last join notices
        for client in connected:
            loadgen.drain(client)
        run = loadgen.Fanout(connected, talkers, messages, peer.dialect, audience=members)
        elapsed, server_cpu, own_cpu, _ = _measure(peer, run.run)
        time.sleep(0.2)  # anything still on its way to the others
        outsiders = [client for client in connected if client not in members]
        late = [loadgen.leftover(client) for client in outsiders]
        said = talkers * messages
        cpu_s = server_cpu * elapsed
        figures = {
            "deliveries_per_s": sum(c.received for c in members) / elapsed,
            **_latency("", run.tally.latencies),
            "lost": float(run.lost()),
            "duplicated": float(run.tally.duplicates),
            "out_of_order": float(run.tally.out_of_order),
            "server_cpu": server_cpu,
            "loadgen_cpu": own_cpu,
            "server_cpu_us_per_message": cpu_s / said * 1e6,
            "server_cpu_us_per_delivery": cpu_s / max(1, sum(c.received for c in members)) * 1e6,
            "others_online": float(len(outsiders)),
            "others_messages": float(
                sum(c.received for c in outsiders) + sum(marks for _, marks in late)
            ),
            "others_bytes": float(
                sum(c.bytes_received for c in outsiders) + sum(size for size, _ in late)
            ),
        }
        loadgen.close_all(connected)
        return figures
    finally:
        peer.close()


def capacity(peer_class: type[Any], sessions: int) -> Figures:
    """K idle sessions: how long they take to log in, and the server's memory for each.
    The server is not pinned: logins are bcrypt work, which runs on every core."""
    peer: Peer = peer_class(sessions, None)
    try:
        before = peer.rss_kib()
        dialect = loadgen.IRC_IDLE if peer.dialect is loadgen.IRC else peer.dialect
        started = time.monotonic()
        connected = loadgen.connect_all(peer.port, sessions, dialect, wave=peer.connect_wave)
        login_s = time.monotonic() - started
        time.sleep(1)  # let the server settle (freed buffers, finished writes)
        after = peer.rss_kib()
        loadgen.close_all(connected)
        return {
            "login_all_s": login_s,
            "logins_per_s": sessions / login_s,
            "rss_per_session_kib": (after - before) / sessions,
            "rss_total_mib": after / 1024,
        }
    finally:
        peer.close()


def logins(
    peer_class: type[Chatd], seconds: float, chatters: int = 5, storm: int = 10, rounds: int = 12
) -> Figures:
    """A storm of logins at bcrypt cost `rounds` while `chatters` users talk."""
    accounts = storm + chatters + 1
    peer = peer_class(accounts, SERVER_CPU, bcrypt_rounds=rounds)
    try:
        speakers = [(f"user{i}", f"pw{i}") for i in range(storm, storm + chatters)]
        listener = (f"user{accounts - 1}", f"pw{accounts - 1}")
        done: list[float] = []
        stop = threading.Event()

        def log_in_and_out(number: int) -> None:
            while not stop.is_set():
                client = LineClient(peer.port)
                answer = client.login(f"user{number}", f"pw{number}")
                if answer.startswith("Welcome"):
                    done.append(time.monotonic())
                client.close()

        with Observer(peer.port, speakers, listener, interval=0.25) as observer:
            observer.take()
            workers = [threading.Thread(target=log_in_and_out, args=(n,)) for n in range(storm)]
            started = time.monotonic()
            for worker in workers:
                worker.start()
            time.sleep(seconds)
            stop.set()
            for worker in workers:
                worker.join()
            elapsed = time.monotonic() - started
            latency = observer.take()
        return {
            "logins_per_s": len(done) / elapsed,
            "chat_p50_ms": latency.p50_ms,
            "chat_p99_ms": latency.p99_ms,
            "chat_max_ms": latency.max_ms,
            "bcrypt_rounds": float(rounds),
        }
    finally:
        peer.close()


# --- storage ----------------------------------------------------------------------------

WORDS = [f"w{n}" for n in range(5000)]


ROOMS = 10  # besides #general; user N belongs to #room(N % ROOMS)


def generate_database(path: Path, messages: int, users: int) -> None:
    """A chat database of `messages` messages from `users` users over 100 days, through
    chatd's own storage layer. Words follow a Zipf-like law, as in real text. One in
    twenty is private; of the others, one in four is said in the sender's room,
    the rest in #general. Half the accounts have not logged in since rooms came
    (as after an upgrade: their first login shows their rooms' latest), the other
    half were away for the last 500 messages."""
    import bcrypt

    from chatd.storage import engine_of, open_database, rooms, transaction
    from chatd.storage import messages as message_store
    from chatd.storage.messages import Kind, NewMessage

    conn = open_database(path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    start = int((time.time() - 100 * 86400) * 1_000_000)
    step = 100 * 86400 * 1_000_000 // messages
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    generator = random.Random(42)
    with transaction(conn):
        conn.executemany(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
            ((f"user{i}", hashed, start) for i in range(users)),
        )
        room_ids = [rooms.find_or_create(conn, f"#room{r}").id for r in range(ROOMS)]
        for i in range(users):
            rooms.add_member(conn, room_ids[i % ROOMS], i + 1)
    ids = {name: i + 1 for i, name in enumerate(f"user{i}" for i in range(users))}
    batch = 50_000
    for first in range(0, messages, batch):
        rows = []
        for n in range(first, min(messages, first + batch)):
            number = generator.randrange(users)
            sender = f"user{number}"
            text = " ".join(generator.choices(WORDS, weights, k=generator.randint(3, 12)))
            at = start + n * step
            if n % 20 == 0:  # one in twenty is private
                to = f"user{generator.randrange(users)}"
                rows.append(NewMessage(at, Kind.PRIVATE, ids[sender], sender, text, ids[to], to))
            elif n % 4 == 1:  # in the sender's room (the same draws as before rooms)
                room = number % ROOMS
                rows.append(
                    NewMessage(at, Kind.PUBLIC, ids[sender], sender, text,
                               room_id=room_ids[room], room=f"#room{room}")
                )  # fmt: skip
            else:
                rows.append(NewMessage(at, Kind.PUBLIC, ids[sender], sender, text))
        with transaction(conn):
            message_store.insert_many(conn, rows)
    with transaction(conn):
        conn.execute(
            "UPDATE users SET seen_upto = ? WHERE id > ?", (max(0, messages - 500), users // 2)
        )
    if engine_of(conn).name == "sqlite":  # PostgreSQL (bench/ceiling.py) has no WAL file to trim
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def generate_database_with(build: builds.Build, path: Path, messages: int, users: int) -> None:
    """The same database made by another build's own bench/scenarios.py and storage
    layer, in its schema (for the migration case)."""
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import scenarios;"
        " scenarios.generate_database(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
    )
    subprocess.run(
        [build.python, "-c", script, str(build.directory / "bench"), str(path),
         str(messages), str(users)],
        check=True,
    )  # fmt: skip


def storage(database: Path, queries: int = 200, logins: int = 10) -> Figures:
    """/history, logins that catch up and /join through the server, full-text search,
    exports, and start-up time."""
    from chatd.storage import connect
    from chatd.storage import messages as message_store
    from chatd.storage.messages import LogQuery

    figures: Figures = {}
    work = Path(tempfile.mkdtemp(prefix="chatd-storage-"))
    try:
        # The server writes (logins, joins): it gets a copy, the same for every run.
        copy = work / "chat.db"
        shutil.copyfile(database, copy)
        # Start-up on an existing database (no users file to import).
        server = ChatdServer(
            directory=work, db=copy, cpu=SERVER_CPU, flags=["--rate-per-second", "0"]
        )
        figures["ready_s"] = server.ready_after_s
        try:
            users = int(_scalar(database, "SELECT count(*) FROM users"))
            # The Welcome line comes after what was missed: a login's time includes it.
            for name, numbers in (
                ("login_first_", range(7, 7 + logins)),  # not since rooms: their rooms' latest
                ("login_back_", range(users - logins, users)),  # away for 500 messages
            ):
                durations = []
                for number in numbers:
                    started = time.monotonic()
                    client = LineClient(server.port)
                    client.login(f"user{number}", "pw")
                    durations.append(time.monotonic() - started)
                    client.close()
                figures.update(_latency(name, durations))
            client = LineClient(server.port)
            client.login("user7", "pw")
            durations = []
            for room in range(ROOMS):  # a room not yet joined: its latest, and how many
                if room == 7 % ROOMS:
                    continue
                started = time.monotonic()
                client.send_line(f"/join room{room}")
                client.send_line("/who")
                client.expect("Online in ")
                durations.append(time.monotonic() - started)
            client.send_line("/join general")
            client.expect("Now talking in #general")
            figures.update(_latency("join_", durations))
            durations = []
            for _ in range(queries):
                started = time.monotonic()
                client.send_line("/history 20")
                header = client.expect("Your last ")
                for _ in range(int(header.split()[2])):
                    client.read_line()
                durations.append(time.monotonic() - started)
            figures.update(_latency("history_", durations))
        finally:
            server.stop()
            server.process.wait()

        conn = connect(database)
        search_times = []
        generator = random.Random(1)
        for _ in range(queries // 2):
            words = " ".join(generator.choices(WORDS[:2000], k=generator.choice([1, 1, 2])))
            started = time.monotonic()
            list(message_store.query(conn, LogQuery(text=words, limit=100)))
            search_times.append(time.monotonic() - started)
        conn.close()
        figures.update(_latency("search_", search_times))

        for name, args in (
            ("export_logs", ["export-logs", "--out", str(work / "logs")]),
            ("export_history", ["export-history", "--all", "--out", str(work / "history")]),
        ):
            lines, seconds, peak_mib = _export(database, args)
            figures[f"{name}_lines_per_s"] = lines / seconds
            figures[f"{name}_peak_mib"] = peak_mib
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


def migration(database: Path) -> Figures:
    """`chatd-admin migrate` of a copy of an older build's database to this schema."""
    work = Path(tempfile.mkdtemp(prefix="chatd-migrate-"))
    try:
        copy = work / "chat.db"
        shutil.copyfile(database, copy)
        messages = _scalar(copy, "SELECT count(*) FROM messages")
        started = time.monotonic()
        subprocess.run(
            pinned([*_admin(), "migrate", "--db", str(copy)], SERVER_CPU),
            check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.monotonic() - started
        return {
            "migrate_s": seconds,
            "messages": messages,
            "db_mib": database.stat().st_size / 2**20,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _scalar(database: Path, sql: str) -> float:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return float(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _admin() -> list[str]:
    """The `chatd-admin` installed beside this Python."""
    admin = Path(chatd_command()[0]).with_name("chatd-admin")
    return [str(admin)] if admin.exists() else [sys.executable, "-m", "admin"]


def _export(database: Path, args: list[str]) -> tuple[int, float, float]:
    """Run a chatd-admin export; the lines written, its seconds and its peak memory."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*_admin(), *args, "--db", str(database)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if status != 0:
        raise RuntimeError(f"chatd-admin {' '.join(args)} failed: {output}")
    lines = int(output.rsplit("(", 1)[1].split()[0].replace(",", ""))
    return lines, seconds, usage.ru_maxrss / 1024


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_self() -> None:
    """Run the load generator on its own core, away from the server's."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > LOADGEN_CPU:
        os.sched_setaffinity(0, {LOADGEN_CPU})
