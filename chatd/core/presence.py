"""Who is online on the other nodes sharing a PostgreSQL database (SPEC §9).

`NodePresence` registers this node, beats every HEARTBEAT_S on a thread and
connection of its own, declares dead any node whose beat is older than
DEAD_AFTER_S (removing its sessions and recording their logouts, which reach
every node as committed messages), and reads who is online elsewhere for the
hub, every beat and whenever a login or logout elsewhere is delivered
(`wake`). A clean stop removes the node's rows. SQLite has one node: no
presence runs there.

It also applies the kicks sent by other nodes (table kicks): it reads those
after the last one applied at every beat and at every kick's notice
(`kick_noticed`), so a kick made while this node was cut off from the
database, or whose notice was lost, is applied within a beat of reconnecting;
each exactly once, in order, starting after the newest at this node's start.
The beat also forgets kicks older than KICKS_KEPT_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from chatd.core.hub import Hub
from chatd.storage import ERRORS, Connection, connect, nodes, transaction
from chatd.storage.nodes import Kick
from chatd.storage.rooms import Room

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# A node whose last beat is older than this is dead (its users drop out of
# /users within DEAD_AFTER_S + HEARTBEAT_S, inside SPEC §9's 15 s).
DEAD_AFTER_S = 10.0
# Kicks are kept this long: far longer than any node may be cut off and still
# be alive (DEAD_AFTER_S), so every live node has read each one before it goes.
KICKS_KEPT_S = 3600.0
# After a lost connection is opened again, the next beat comes this soon.
RETRY_S = 0.2


class NodePresence:
    """This node in the `nodes` table, and the other nodes' users in the hub."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hub: Hub,
        db: Path | str,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        dead_after_s: float = DEAD_AFTER_S,
        on_kick: Callable[[Kick], None] | None = None,
    ) -> None:
        self._loop = loop
        self._hub = hub
        self._db = db
        self._on_kick = on_kick  # a kick from another node, on the event loop
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.local: dict[int, str] = {}  # accounts online here: user id -> name (loop only)
        self.last_kick = 0  # every kick up to this id has been applied (presence thread)
        # The rooms of users online elsewhere, for rooms the hub may not know yet.
        self._rooms: dict[int, Room] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatd-presence", daemon=True)

    def start(self) -> int:
        """Register this node; returns its id."""
        self._conn: Connection = connect(self._db)
        self.node_id = nodes.register(self._conn, self.name)
        self.last_kick = nodes.last_kick_id(self._conn)
        self._thread.start()
        return self.node_id

    def wake(self) -> None:
        """Someone logged in or out elsewhere, or joined or left a room: read again."""
        self._wake.set()

    def kick_noticed(self) -> None:
        """A kick's notice came (any node's): read the kicks now."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        with contextlib.suppress(*ERRORS):
            nodes.remove(self._conn, self.node_id)
        with contextlib.suppress(*ERRORS):
            self._conn.close()

    def _run(self) -> None:
        beat_due = 0.0
        while not self._stopping.is_set():
            now = self._loop.time()
            try:
                if now >= beat_due:
                    self._beat()
                    beat_due = now + self._heartbeat_s
                self._read_kicks()
                self._read_online()
            except ERRORS as exc:
                log.error("presence: %s", exc)
                self._reconnect()
                # Beat again soon, and read what came meanwhile (kicks above all).
                beat_due = min(beat_due, self._loop.time() + RETRY_S)
            self._wake.wait(max(0.0, beat_due - self._loop.time()))
            self._wake.clear()

    def _beat(self) -> None:
        with transaction(self._conn):
            if not nodes.beat(self._conn, self.node_id, self.name, list(self.local.items())):
                log.warning("this node had been declared dead: registered again")
            gone = nodes.reap(self._conn, self._dead_after_s)
            nodes.trim_kicks(self._conn, KICKS_KEPT_S)
        if gone:
            log.warning("a node stopped answering: %d users logged out", len(gone))

    def _read_kicks(self) -> None:
        """Apply the kicks committed since the last one applied, other nodes' only."""
        kicks = nodes.kicks_after(self._conn, self.last_kick)
        if not kicks:
            return
        self.last_kick = kicks[-1].id
        for kick in kicks:
            if kick.node_id != self.node_id and self._on_kick is not None:
                self._loop.call_soon_threadsafe(self._on_kick, kick)

    def _read_online(self) -> None:
        """Hand the hub who is online elsewhere, with the rooms they are in."""
        online = nodes.online(self._conn, self.node_id, self._dead_after_s)
        room_ids = {room_id for room_id, _ in online if room_id is not None}
        if not room_ids <= self._rooms.keys():
            rooms = nodes.rooms_with_ids(self._conn, room_ids - self._rooms.keys())
            self._rooms.update((room.id, room) for room in rooms)
        rooms_named = [self._rooms[i] for i in room_ids if i in self._rooms]
        self._loop.call_soon_threadsafe(self._hub.set_remote, online, rooms_named)

    def _reconnect(self) -> None:
        with contextlib.suppress(*ERRORS):
            self._conn.close()
        while not self._stopping.is_set():
            try:
                self._conn = connect(self._db)
                return
            except ERRORS as exc:
                log.error("presence cannot reconnect: %s", exc)
                self._stopping.wait(self._heartbeat_s)
