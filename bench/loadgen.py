"""The load generator: many client connections driven from one thread with `selectors`.

It has to outrun the server it measures, on one core of its own, so it
does as little per line as it can: every socket is read in chunks of up to
1 MiB, deliveries are counted with `bytes.count` (in C), and only a few
sampled recipients parse every line they get, for latency, order, loss and
duplicates.

Two dialects: `chat` (chatd, and the floor server, which speaks the same
lines) and `irc` (ngIRCd). Every message a sender says carries a marker, the
sender's number, a sequence number and the time it was sent:
"@@17:42:12345.678901".
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MARK = b"@@"
READ_SIZE = 1 << 20
_TAIL = 16  # bytes of each read kept to find the patterns cut in two by a read
_LOGIN_READ = 4096  # logins read small: recv(1 MiB) allocates (and maps) a megabyte each time
_SCRATCH = bytearray(READ_SIZE)  # where drained data goes


def _count(data: bytearray, size: int, pattern: bytes, tail: bytes) -> int:
    """Occurrences of `pattern` in data[:size], in C and without a copy, plus those
    that began in the previous read (`tail`) and end in this one."""
    found = data.count(pattern, 0, size)
    reach = len(pattern) - 1
    if tail and reach:
        found += (tail[-reach:] + bytes(data[: min(reach, size)])).count(pattern)
    return found


@dataclass(frozen=True)
class Dialect:
    name: str
    login: Callable[[int], bytes]  # what client N sends to log in (and join)
    ready: bytes  # the line start that says it is logged in (and has joined)
    say: Callable[[str], bytes]  # the bytes that say one payload (and ask for its ack)
    ack: bytes  # counts one acknowledgement of the sender's own message
    echo: bytes  # in received data: the sender's own copy, not a delivery (or b"")
    # Acknowledge every read at once: for servers that write small pieces without
    # TCP_NODELAY, which would otherwise wait 40 ms for our delayed ACK (Nagle).
    quick_ack: bool = False


CHAT = Dialect(
    name="chat",
    login=lambda n: f"user{n}\npw{n}\n".encode(),
    ready=b"Welcome, ",
    say=lambda payload: payload.encode() + b"\n",
    ack=b"You said: ",
    echo=b"You said: " + MARK,
)

# IRC has no acknowledgement of a PRIVMSG, so each one is followed by a PING:
# a server answers a client's lines in order, so the PONG says it is done.
IRC = Dialect(
    name="irc",
    login=lambda n: f"NICK user{n}\r\nUSER user{n} 0 * :bench\r\nJOIN #bench\r\n".encode(),
    ready=b":bench.chatd.test 366 ",  # end of the channel's NAMES list: joined
    say=lambda payload: f"PRIVMSG #bench :{payload}\r\nPING :a\r\n".encode(),
    ack=b" PONG ",
    echo=b"",
    quick_ack=True,
)

# Idle IRC sessions register but join no channel (10,000 joins would be 50
# million JOIN lines: SPEC §4's reason for chatd's quiet joins).
IRC_IDLE = Dialect(
    name="irc-idle",
    login=lambda n: f"NICK user{n}\r\nUSER user{n} 0 * :bench\r\n".encode(),
    ready=b" 001 ",
    say=IRC.say,
    ack=IRC.ack,
    echo=b"",
    quick_ack=True,
)


@dataclass
class Client:
    number: int
    sock: socket.socket
    pending: bytes = b""  # an incomplete last line, kept for the next read (sampled clients)
    tail: bytes = b""  # the end of the last read
    ready: bool = False
    received: int = 0  # messages from others
    bytes_received: int = 0  # everything read while a Fanout ran
    acks: int = 0
    sent: int = 0  # messages said
    sample: bool = False  # parse every line
    last_seq: dict[int, int] = field(default_factory=dict)
    unacked: deque[float] = field(default_factory=deque)  # when each message in flight was said


@dataclass
class Tally:
    """What the sampled recipients saw."""

    latencies: list[float] = field(default_factory=list)  # said -> received by another
    cross_node: list[float] = field(default_factory=list)  # the latencies from another node
    round_trips: list[float] = field(default_factory=list)  # said -> acknowledged
    out_of_order: int = 0
    duplicates: int = 0


def connect_all(
    port: int,
    count: int,
    dialect: Dialect,
    *,
    first: int = 0,
    wave: int = 200,
    timeout: float = 120.0,
) -> list[Client]:
    """Open `count` connections and log each in, `wave` at a time (a burst of
    thousands of SYNs would overflow the listen backlog)."""
    clients: list[Client] = []
    address = ("127.0.0.1", port)
    selector = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    next_number = first
    waiting = 0
    while next_number < first + count or waiting:
        while waiting < wave and next_number < first + count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.connect(address)  # on loopback this completes at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            client = Client(next_number, sock)
            sock.send(dialect.login(next_number))
            selector.register(sock, selectors.EVENT_READ, client)
            clients.append(client)
            next_number += 1
            waiting += 1
        for key, _ in selector.select(timeout=1.0):
            client = key.data
            data = client.sock.recv(_LOGIN_READ)
            if not data:
                raise ConnectionError(f"client {client.number} was closed while logging in")
            if dialect.ready in client.pending + data:
                client.ready = True
                client.pending = b""
                selector.unregister(client.sock)
                waiting -= 1
            else:
                client.pending = (client.pending + data)[-4096:]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{waiting} clients still logging in")
    selector.close()
    for client in clients:
        drain(client)
    return clients


def join(clients: Iterable[Client], room: str, timeout: float = 60.0) -> None:
    """Make `room` each client's current room (`/join`, chat dialect only); return once
    every one has been told `Now talking in ROOM` and what came with it was read."""
    answer = f"Now talking in {room}".encode()
    selector = selectors.DefaultSelector()
    waiting = 0
    for client in clients:
        client.sock.setblocking(True)
        client.sock.sendall(f"/join {room}\n".encode())
        client.sock.setblocking(False)
        selector.register(client.sock, selectors.EVENT_READ, client)
        waiting += 1
    deadline = time.monotonic() + timeout
    while waiting:
        for key, _ in selector.select(timeout=1.0):
            client = key.data
            data = client.sock.recv(_LOGIN_READ)
            if not data:
                raise ConnectionError(f"client {client.number} was closed while joining")
            if answer in client.pending + data:
                client.pending = b""
                selector.unregister(client.sock)
                waiting -= 1
            else:
                client.pending = (client.pending + data)[-4096:]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{waiting} clients still joining {room}")
    selector.close()


def leftover(client: Client) -> tuple[int, int]:
    """What is waiting to be read, now: its bytes, and the messages among them."""
    size = marks = 0
    try:
        while read := client.sock.recv_into(_SCRATCH):
            size += read
            marks += _SCRATCH.count(MARK, 0, read)
    except BlockingIOError:
        pass
    return size, marks


def drain(client: Client) -> None:
    """Read and forget whatever is waiting (welcome text, join notices)."""
    try:
        while client.sock.recv_into(_SCRATCH):
            pass
    except BlockingIOError:
        pass
    client.pending = b""


class Fanout:
    """Senders say numbered, timestamped messages; everyone counts what arrives."""

    def __init__(
        self,
        clients: list[Client],
        senders: int,
        messages: int,
        dialect: Dialect,
        *,
        window: int = 8,
        samples: int = 2,
        rate: float | None = None,
        min_round_s: float = 0.0,
        audience: list[Client] | None = None,
        node_of: dict[int, int] | None = None,
    ) -> None:
        self.clients = clients
        self.senders = clients[:senders]
        # Who should receive each message (all clients: everyone is in one room);
        # every other client is still read, and should receive none.
        self.audience = clients if audience is None else audience
        self._in_audience = {client.number for client in self.audience}
        # Client number -> the node it is on, when there are several: latencies of
        # messages said on another node are also counted apart (tally.cross_node).
        self.node_of = node_of
        self.messages = messages
        self.dialect = dialect
        self.window = window
        self.rate = rate  # messages a second over all senders; None: as fast as acks allow
        self.min_round_s = min_round_s
        self._buffer = bytearray(READ_SIZE)  # every read lands here: no allocation per read
        self.tally = Tally()
        # Sample recipients from both the senders and the others.
        step = max(1, len(self.audience) // samples)
        for client in self.audience[::step][:samples]:
            client.sample = True

    def expected_per_client(self, client: Client) -> int:
        if client.number not in self._in_audience:
            return 0
        own = self.messages if client in self.senders else 0
        return len(self.senders) * self.messages - own

    def run(self, timeout: float = 300.0) -> float:
        """Send everything, wait until every message has reached everyone; return the seconds."""
        selector = selectors.DefaultSelector()
        for client in self.clients:
            selector.register(client.sock, selectors.EVENT_READ, client)
        started = time.monotonic()
        deadline = started + timeout
        if self.rate is None:
            for sender in self.senders:
                self._send(sender, min(self.window, self.messages))
        goal = sum(self.expected_per_client(c) for c in self.clients)
        total = 0
        next_tick = started
        while total < goal or any(s.acks < self.messages for s in self.senders):
            if self.rate is not None:
                next_tick = self._paced(started, next_tick)
            round_started = time.monotonic()
            for key, _ in selector.select(timeout=0.001 if self.rate else 1.0):
                total += self._read(key.data)
            if self.rate is None and self.min_round_s:
                # At full speed, let data pile up a little between rounds: fewer,
                # larger reads keep the generator ahead of a fast server.
                rest = self.min_round_s - (time.monotonic() - round_started)
                if rest > 0:
                    time.sleep(rest)
            if time.monotonic() > deadline:
                break
        elapsed = time.monotonic() - started
        selector.close()
        return elapsed

    def _paced(self, started: float, next_tick: float) -> float:
        """Send what the fixed rate says is due by now, round-robin over the senders."""
        assert self.rate is not None
        now = time.monotonic()
        due = int((now - started) * self.rate) + 1
        sent = sum(s.sent for s in self.senders)
        per_sender_limit = self.messages
        index = sent
        while sent < min(due, len(self.senders) * per_sender_limit):
            sender = self.senders[index % len(self.senders)]
            index += 1
            if sender.sent < per_sender_limit:
                self._send(sender, 1)
                sent += 1
        return now

    def _send(self, sender: Client, count: int) -> None:
        now = time.monotonic()
        payloads = [
            f"{MARK.decode()}{sender.number}:{sender.sent + i}:{now:.6f}" for i in range(count)
        ]
        sender.sent += count
        sender.unacked.extend([now] * count)
        data = b"".join(self.dialect.say(p) for p in payloads)
        sender.sock.setblocking(True)  # a short wait for buffer space, never a lost message
        sender.sock.sendall(data)
        sender.sock.setblocking(False)

    def _read(self, client: Client) -> int:
        try:
            size = client.sock.recv_into(self._buffer)
        except BlockingIOError:
            return 0
        if not size:
            raise ConnectionError(f"client {client.number} was disconnected")
        if self.dialect.quick_ack:
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        client.bytes_received += size
        data = self._buffer
        arrived = _count(data, size, MARK, client.tail)
        if self.dialect.echo:
            arrived -= _count(data, size, self.dialect.echo, client.tail)
        acks = _count(data, size, self.dialect.ack, client.tail)
        client.tail = bytes(data[max(0, size - _TAIL) : size])
        client.received += arrived
        if acks:
            client.acks += acks
            now = time.monotonic()
            for _ in range(min(acks, len(client.unacked))):
                self.tally.round_trips.append(now - client.unacked.popleft())
            if self.rate is None:
                more = min(acks, self.messages - client.sent)
                if more > 0:
                    self._send(client, more)
        if client.sample:
            chunk = client.pending + bytes(data[:size])
            cut = chunk.rfind(b"\n") + 1
            complete, client.pending = chunk[:cut], chunk[cut:]
            self._inspect(client, complete)
        return arrived

    def _inspect(self, client: Client, complete: bytes) -> None:
        now = time.monotonic()
        echo = self.dialect.echo
        for line in complete.split(b"\n"):
            start = line.find(MARK)
            if start < 0 or (echo and echo in line):
                continue
            sender_text, seq_text, sent_text = line[start + 2 :].split(b":")[:3]
            sender, seq = int(sender_text), int(seq_text)
            latency = now - float(sent_text.strip())
            self.tally.latencies.append(latency)
            if self.node_of is not None and self.node_of[sender] != self.node_of[client.number]:
                self.tally.cross_node.append(latency)
            previous = client.last_seq.get(sender, -1)
            if seq <= previous:
                self.tally.duplicates += 1
            elif seq != previous + 1:
                self.tally.out_of_order += 1
            client.last_seq[sender] = max(previous, seq)

    def lost(self) -> int:
        return sum(max(0, self.expected_per_client(c) - c.received) for c in self.clients)

    def extra(self) -> int:
        """Deliveries beyond what was sent: duplicates seen by any recipient."""
        return sum(max(0, c.received - self.expected_per_client(c)) for c in self.clients)


def close_all(clients: Iterable[Client]) -> None:
    for client in clients:
        client.sock.close()
