"""Attack the installed chatd server from outside and measure how it holds up.

    python bench/attacks.py            # every attack, a table at the end
    python bench/attacks.py flood kill # some of them
    python bench/attacks.py idle-lockout --baseline af5ed5f   # the same on an older build

Each attack runs against a fresh `chatd serve` (default settings unless
the table says otherwise) while an observer pair of users chats, and
reports what the server did and how the observers' latency looked. The
figures go into docs/reliability.md. Everything stays on loopback (other
source addresses are other addresses of 127/8) and every attack stops by
itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import builds
from common import TIMEOUT, ChatdServer, Latency, LineClient, Observer, chatd_command, threads

SPEAKERS = [(f"user{i}", f"pw{i}") for i in range(50, 55)]  # 5 x 4 lines/s: 20 probes/s
LISTENER = ("user55", "pw55")
MIN_SECONDS = 3.0  # each attack goes on at least this long, for the probes to measure


@dataclass
class Outcome:
    attack: str
    setting: str
    result: str
    observers: str


ATTACKS: dict[str, Callable[[], Outcome]] = {}


@dataclass
class Target:
    """The chatd under attack: the one installed here, or another build (--baseline)."""

    command: list[str] | None = None


TARGET = Target()


def _server(users: int, flags: Sequence[str] = (), **options: int) -> ChatdServer:
    """A fresh `chatd serve` of the target build, with the flags of `flags` it has."""
    command = TARGET.command or chatd_command()
    understood = builds.understood(command, flags)
    return ChatdServer(users, flags=understood, command=command, **options)


def attack(name: str) -> Callable[[Callable[[], Outcome]], Callable[[], Outcome]]:
    def register(function: Callable[[], Outcome]) -> Callable[[], Outcome]:
        ATTACKS[name] = function
        return function

    return register


def _observed(server: ChatdServer) -> Observer:
    return Observer(server.port, SPEAKERS, LISTENER)


def _until_min_seconds(started: float) -> None:
    """Let the probes go on until the attack has lasted MIN_SECONDS."""
    time.sleep(max(0.0, MIN_SECONDS - (time.monotonic() - started)))


@attack("long-line")
def long_line() -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        before = server.rss_kib()
        client = LineClient(server.port)
        client.login("user2", "pw2")
        chunk = b"x" * (1 << 20)
        started = time.monotonic()
        for _ in range(100):
            client.sock.sendall(chunk)
        took = time.monotonic() - started
        peak = server.rss_kib()
        _until_min_seconds(started)
        client.sock.sendall(b"\nstill talking\n")
        error = client.expect("Error")
        client.expect("You said: still talking")
        return Outcome(
            "100 MiB line without a newline",
            "--max-line-bytes 2048",
            f"one error line ({error[:30]}...); RSS {before / 1024:.1f} -> {peak / 1024:.1f} MiB;"
            f" 100 MiB read in {took:.2f} s; session goes on",
            str(observer.take()),
        )


@attack("garbage")
def garbage() -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        generator = random.Random(7)
        started = time.monotonic()
        sent = 0
        for round_number in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port))
            if round_number % 2:
                sock.sendall(b"user3\npw3\n")
            payload = generator.randbytes(50_000)
            try:
                sock.sendall(payload)
                sent += len(payload)
            except OSError:
                pass
            sock.close()
        _until_min_seconds(started)
        answer = _try_login(server.port, "user2", "pw2")
        conn = sqlite3.connect(server.db)
        bodies = [row[0] for row in conn.execute("SELECT body FROM messages")]
        controls = sum(ch < " " or "\x7f" <= ch <= "\x9f" for body in bodies for ch in body)
        return Outcome(
            "random bytes (invalid UTF-8, controls) on 200 connections",
            "framing + sanitise",
            f"{sent / 1e6:.0f} MB sent; afterwards a login answers {answer[:15]!r};"
            f" {len(bodies)} rows stored, {controls} control characters in them",
            str(observer.take()),
        )


@attack("escapes")
def escapes() -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        started = time.monotonic()
        attacker, victim = LineClient(server.port), LineClient(server.port)
        attacker.login("user2", "pw2")
        victim.login("user3", "pw3")
        attacker.send_line("\x1b[2J\x1b]0;owned\x07\x1b[31mred\x9b6n\x00!")
        seen = victim.expect("user2: ")
        _until_min_seconds(started)
        raw = any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in seen)
        return Outcome(
            "escape injection (CSI, OSC title, BEL, C1, NUL)",
            "sanitise on input",
            f"the other user sees {seen!r}; control characters forwarded: {raw}",
            str(observer.take()),
        )


@attack("flood")
def flood() -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        flooder = LineClient(server.port)
        flooder.login("user2", "pw2")
        started = time.monotonic()
        accepted = refused = 0
        with contextlib.suppress(OSError):  # the server may hang up before it has all
            flooder.sock.sendall(b"".join(f"flood {i}\n".encode() for i in range(10_000)))
        while (line := flooder.read_line()) is not None:
            accepted += line.startswith("You said: flood")
            refused += line.startswith("Error: slow down")
        took = time.monotonic() - started
        _until_min_seconds(started)
        return Outcome(
            "flood: 10,000 lines at once",
            "--rate-burst 20 --rate-per-second 5 --rate-strikes 10",
            f"{accepted} accepted, {refused} refused with 'slow down', then disconnected after"
            f" {took:.2f} s",
            str(observer.take()),
        )


@attack("brute-force")
def brute_force() -> Outcome:
    """Guess one account's password from 20 connections at once for 30 s; then the
    owner tries to log in."""
    flags = ["--throttle-forget-s", "10"]
    with _server(60, flags) as server, _observed(server) as observer:
        answers: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + 30

        def guess(worker: int) -> None:
            number = 0
            while time.monotonic() < deadline:
                client = LineClient(server.port)
                answer = "Login failed. Try again"
                while answer.startswith("Login failed. Try again") and time.monotonic() < deadline:
                    answer = client.login("user2", f"guess-{worker}-{number}")
                    number += 1
                    with lock:
                        answers.append(answer)
                client.close()

        with threads(*(threading.Thread(target=guess, args=(n,)) for n in range(20))):
            pass
        checked = sum(a.startswith("Login failed. Try again") for a in answers)
        refused = sum("Too many failed" in a for a in answers)
        stopped = time.monotonic()
        while not _try_login(server.port, "user2", "pw2").startswith("Welcome"):
            time.sleep(0.5)  # the owner retries every half second
        return Outcome(
            "password guessing on one account: 20 connections for 30 s",
            "--throttle-account-after 5 --throttle-max-delay-s 30 (--throttle-forget-s 10)",
            f"{len(answers):,} guesses: {checked} checked, {refused:,} refused unchecked;"
            f" the owner logs in {time.monotonic() - stopped:.1f} s after the attack stops",
            str(observer.take()),
        )


def _try_login(port: int, username: str, password: str) -> str:
    client = LineClient(port)
    try:
        return client.login(username, password)
    finally:
        client.close()


@attack("silent")
def silent() -> Outcome:
    flags = ["--silent-deadline-s", "3", "--max-per-address", "2000",
             "--max-connections", "3000"]  # fmt: skip
    with _server(60, flags) as server, _observed(server) as observer:
        before = server.rss_kib()
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
        connected = time.monotonic()
        time.sleep(0.5)
        loaded = server.rss_kib()
        closed = 0
        for sock in sockets:
            sock.settimeout(TIMEOUT)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
            closed += 1
        return Outcome(
            "1,000 connections that never log in",
            "--silent-deadline-s (3 here; 20 by default)",
            f"{(loaded - before) / 1000:.1f} KiB each while open; all {closed} closed"
            f" {time.monotonic() - connected:.1f} s after connecting",
            str(observer.take()),
        )


# --- connections that never log in, and the logins they must not keep out -----------

IDLE_LIMIT_S = 90.0  # the longest an idle-connection attack waits for anything


def _idle_sockets(
    port: int, addresses: Sequence[str], each: int, says: bytes = b""
) -> list[socket.socket]:
    """`each` connections from every address, opened in turn, that say `says` (nothing,
    or a username) and then nothing more."""
    sockets = []
    for _ in range(each):
        for address in addresses:
            with contextlib.suppress(OSError):
                sock = socket.create_connection(
                    ("127.0.0.1", port), timeout=TIMEOUT, source_address=(address, 0)
                )
                sockets.append(sock)
                if says:
                    sock.sendall(says)
    return sockets


def _still_open(sockets: Sequence[socket.socket]) -> list[socket.socket]:
    """The sockets the server has not closed (read what it sent; an end means closed)."""
    alive = []
    for sock in sockets:
        sock.setblocking(False)
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            alive.append(sock)
        except OSError:
            pass
    return alive


def _timed_login(port: int, number: int, timeout: float = TIMEOUT) -> tuple[str, float]:
    """An honest user logs in from 127.0.0.1: the answer and how long it took."""
    started = time.monotonic()
    try:
        client = LineClient(port, timeout=timeout)
    except OSError as exc:
        return f"(cannot connect: {exc})", time.monotonic() - started
    try:
        answer = client.login(f"user{number}", f"pw{number}")
    except OSError:
        answer = "(closed)"
    finally:
        client.close()
    return answer, time.monotonic() - started


def _honest_logins(port: int, count: int = 20) -> tuple[Latency, list[str]]:
    """`count` logins one after the other: their times, and the answers that refused."""
    times, refused = [], []
    for n in range(count):
        answer, seconds = _timed_login(port, 2 + n)
        if answer.startswith("Welcome"):
            times.append(seconds)
        else:
            refused.append(answer)
    return Latency.of(times), refused


def _idle_attack(addresses: Sequence[str], each: int, says: bytes = b"") -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        opened = time.monotonic()
        idle = _idle_sockets(server.port, addresses, each, says)
        attempted = len(addresses) * each
        took = time.monotonic() - opened
        time.sleep(0.5)  # refusals are a line and a close: let them arrive
        accepted = len(_still_open(idle))
        logins, refused = _honest_logins(server.port)
        let_in = "at once"
        if refused:  # how long until the idle connections stop keeping honest users out
            while time.monotonic() - opened < IDLE_LIMIT_S:
                if _timed_login(server.port, 30)[0].startswith("Welcome"):
                    let_in = f"{time.monotonic() - opened:.0f} s after the attack began"
                    break
                time.sleep(1)
            else:
                let_in = f"not within {IDLE_LIMIT_S:.0f} s"
        while _still_open(idle) and time.monotonic() - opened < IDLE_LIMIT_S:
            time.sleep(0.5)
        left = len(_still_open(idle))
        closed_after = time.monotonic() - opened
        for sock in idle:
            sock.close()
        why = Counter(answer.split(";")[0] for answer in refused)
        what = "send a username, then nothing" if says else "never send a byte"
        return Outcome(
            f"{attempted:,} connections that {what}, from {len(addresses)} addresses;"
            f" meanwhile 20 logins from another",
            "--silent-deadline-s 20, --login-deadline-s 60, --max-connections 1000 (the oldest"
            " silent connection of the busiest address makes room)",
            f"{accepted} of {attempted} idle connections open after {took:.1f} s; honest logins:"
            f" {logins.count} of 20 in ({logins.p50_ms:.1f} / {logins.p99_ms:.1f} ms p50 / p99),"
            f" {len(refused)} refused {dict(why) or ''}; a login gets in {let_in};"
            f" the idle ones {'all' if not left else f'all but {left}'} closed"
            f" {closed_after:.0f} s after opening",
            str(observer.take()),
        )


@attack("idle-lockout")
def idle_lockout() -> Outcome:
    return _idle_attack(["127.0.0.2", "127.0.0.3"], 50)


@attack("idle-full")
def idle_full() -> Outcome:
    return _idle_attack([f"127.0.0.{10 + n}" for n in range(20)], 50)


@attack("stalled-logins")
def stalled_logins() -> Outcome:
    """Like idle-full, but each connection sends a username: no longer silent, yet a
    full server still closes the oldest of the busiest address for a newcomer."""
    return _idle_attack([f"127.0.0.{10 + n}" for n in range(20)], 50, says=b"user1\n")


@attack("class")
def class_logs_in() -> Outcome:
    """A class of 200 behind 4 addresses: everyone connects, then everyone logs in."""
    size, first = 200, 100  # accounts user100 ... user299
    addresses = [f"127.0.0.{40 + n}" for n in range(4)]
    with _server(first + size, bcrypt_rounds=12) as server, _observed(server) as observer:
        observer.take()
        clients = []
        for n in range(size):
            client = LineClient(server.port, timeout=IDLE_LIMIT_S, source=addresses[n % 4])
            clients.append(client)
        started = time.monotonic()
        answers: list[tuple[str, float]] = []
        lock = threading.Lock()

        def log_in(number: int, client: LineClient) -> None:
            try:
                answer = client.login(f"user{number}", f"pw{number}")
            except OSError:
                answer = "(closed)"
            with lock:
                answers.append((answer, time.monotonic() - started))

        workers = [
            threading.Thread(target=log_in, args=(first + n, c), daemon=True)
            for n, c in enumerate(clients)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.1, started + IDLE_LIMIT_S + 5 - time.monotonic()))
        welcomed = [seconds for answer, seconds in answers if answer.startswith("Welcome")]
        refused = Counter(a.split(";")[0] for a, _ in answers if not a.startswith("Welcome"))
        for client in clients:
            client.close()
        last = f"the last Welcome {max(welcomed):.1f} s after they began" if welcomed else ""
        return Outcome(
            f"a class: {size} clients from 4 addresses connect at once, then all log in"
            " (bcrypt cost 12)",
            "--max-per-address 50, --max-connections 1000, --login-deadline-s 60 (bcrypt waits"
            " not counted)",
            f"{len(welcomed)} of {size} logged in, {last}; refused: {dict(refused) or 0}",
            str(observer.take()),
        )


@attack("no-reader")
def no_reader() -> Outcome:
    with (
        _server(60, ["--rate-per-second", "0"]) as server,
        _observed(server) as observer,
    ):
        sleepers = []
        for i in range(2, 12):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(f"user{i}\npw{i}\n".encode())
            sleepers.append(sock)
        time.sleep(0.5)
        talker = LineClient(server.port)
        talker.login("user20", "pw20")
        before = server.rss_kib()
        peak = before
        padding = "x" * 900
        started = time.monotonic()
        for batch in range(40):
            talker.sock.sendall(b"".join(f"{batch}-{i} {padding}\n".encode() for i in range(50)))
            talker.expect(f"You said: {batch}-49 ")
            peak = max(peak, server.rss_kib())
        cut = sum(_closed(sock) for sock in sleepers)
        logged = server.log.read_text().count("SendQ exceeded")
        return Outcome(
            "10 clients that stop reading while 1.8 MB is broadcast",
            "--sendq-bytes 262144 (+ a 64 KiB kernel send buffer)",
            f"{cut}/10 cut off, {logged} 'SendQ exceeded' in the log;"
            f" RSS {before / 1024:.1f} -> peak {peak / 1024:.1f} MiB; the talker's 2,000 lines took"
            f" {time.monotonic() - started:.2f} s",
            str(observer.take()),
        )


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except OSError:
        return False
    return True


@attack("connection-flood")
def connection_flood() -> Outcome:
    with _server(60) as server, _observed(server) as observer:
        opened, refused = [], 0
        started = time.monotonic()
        for _ in range(300):
            client = LineClient(server.port)
            line = client.read_line()
            if line is not None and line.startswith("Error"):
                refused += 1
                client.close()
            else:
                opened.append(client)
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        _until_min_seconds(started)
        return Outcome(
            "300 connections from one address",
            "--max-per-address 50, --max-connections 1000",
            f"{len(opened)} accepted (+ the {len(SPEAKERS) + 1} observers), {refused} refused"
            f" with a reason; the server holds {fds} descriptors",
            str(observer.take()),
        )


@attack("login-storm")
def login_storm() -> Outcome:
    with _server(60, bcrypt_rounds=12) as server, _observed(server) as observer:
        observer.take()
        results: list[str] = []

        def storm(first: int) -> None:
            for i in range(first, 50, 10):
                client = LineClient(server.port)
                results.append(client.login(f"user{i}", f"pw{i}"))
                client.close()

        started = time.monotonic()
        workers = [threading.Thread(target=storm, args=(n,)) for n in range(10)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        took = time.monotonic() - started
        ok = sum(r.startswith("Welcome") for r in results)
        return Outcome(
            "a storm of logins at bcrypt cost 12 (10 at a time)",
            "--bcrypt-workers (one per CPU)",
            f"{ok} of {len(results)} logins done in {took:.1f} s: {len(results) / took:.1f}/s",
            str(observer.take()),
        )


def _durability(sig: signal.Signals) -> Outcome:
    with _server(8, ["--rate-per-second", "0"]) as server:
        acknowledged: list[str] = []
        sent: list[str] = []
        lock = threading.Lock()

        def chat(index: int) -> None:
            client = LineClient(server.port)
            client.login(f"user{index}", f"pw{index}")
            number = 0
            while True:
                burst = [f"u{index}-{number + k}" for k in range(8)]
                number += 8
                try:
                    client.sock.sendall("".join(f"{t}\n" for t in burst).encode())
                except OSError:
                    return
                with lock:
                    sent.extend(burst)
                for _ in burst:
                    try:
                        line = client.expect("You said: ")
                    except (ConnectionError, OSError):
                        return
                    with lock:
                        acknowledged.append(line.removeprefix("You said: "))

        workers = [threading.Thread(target=chat, args=(i,), daemon=True) for i in range(8)]
        for worker in workers:
            worker.start()
        while len(acknowledged) < 5000:
            time.sleep(0.05)
        started = time.monotonic()
        status = server.stop(sig)
        took = time.monotonic() - started
        for worker in workers:
            worker.join(TIMEOUT)
        conn = sqlite3.connect(server.db)
        stored = {row[0] for row in conn.execute("SELECT body FROM messages WHERE kind='public'")}
        acked = set(acknowledged)
        return Outcome(
            f"{sig.name} while 8 clients send, 8 in flight each",
            "ack after commit; WAL, synchronous=NORMAL"
            + ("; graceful shutdown" if sig == signal.SIGTERM else ""),
            f"exit {status} after {took:.2f} s; {len(acked)} acknowledged, {len(stored)} stored,"
            f" acknowledged but missing: {len(acked - stored)}",
            "-",
        )


@attack("sigkill")
def sigkill() -> Outcome:
    return _durability(signal.SIGKILL)


@attack("sigterm")
def sigterm() -> Outcome:
    return _durability(signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[*ATTACKS, []], help="attacks to run")
    parser.add_argument(
        "--baseline", metavar="REVISION", help="attack chatd as it was at REVISION instead"
    )
    options = parser.parse_args()
    if options.baseline:
        TARGET.command = builds.checkout(options.baseline).chatd
        print(f"attacking chatd@{options.baseline}: {' '.join(TARGET.command)}")
    names = options.names or list(ATTACKS)
    outcomes = []
    for name in names:
        print(f"-- {name}", flush=True)
        outcome = ATTACKS[name]()
        print(f"   {outcome.result}\n   observers: {outcome.observers}", flush=True)
        outcomes.append(outcome)
    print("\n| attack | bounded by | measured | chat meanwhile |\n|---|---|---|---|")
    for o in outcomes:
        print(f"| {o.attack} | {o.setting} | {o.result} | {o.observers} |")


if __name__ == "__main__":
    main()
