"""Who is online on the other nodes sharing a PostgreSQL database (SPEC §9).

`NodePresence` registers this node, beats every HEARTBEAT_S on a thread and
connection of its own, declares dead any node whose beat is older than
DEAD_AFTER_S (removing its sessions and recording their logouts, which reach
every node as committed messages), and reads who is online elsewhere for the
hub, every beat and whenever a login, logout, join or leave elsewhere is
delivered (`wake`). A clean stop removes the node's rows. SQLite has one
node: no presence runs there.

This node's own sessions go to the database through the writer, in order
with its other writes (a login's row is there before its notice). A write
that fails (the database was unreachable) leaves the rows out of step, so
after the next beat the node writes all of its sessions again. After losing
its connection a node waits DEAD_AFTER_S before declaring others dead: the
whole database may have been away, and every node's beat with it.

It also applies the kicks sent by other nodes (table kicks): it reads those
after the last one applied at every beat and at every kick's notice
(`wake` too), so a kick made while this node was cut off from the
database, or whose notice was lost, is applied within a beat of reconnecting;
each exactly once, in order, starting after the newest at this node's start.
The beat also forgets kicks older than KICKS_KEPT_S.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from chatd.core.hub import Hub
from chatd.storage import ERRORS, Connection, connect, nodes, transaction
from chatd.storage.nodes import Kick
from chatd.storage.rooms import Room
from chatd.writer import ActionJob, WriteJob

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# A node whose last beat is older than this is dead (its users drop out of
# /users within DEAD_AFTER_S + HEARTBEAT_S, inside SPEC §9's 15 s).
DEAD_AFTER_S = 10.0
# Kicks are kept this long: far longer than any node may be cut off and still
# be alive (DEAD_AFTER_S), so every live node has read each one before it goes.
KICKS_KEPT_S = 3600.0
# How often a lost connection is tried again.
RETRY_S = 0.5
# How long the presence thread waits for the event loop to answer it.
LOOP_ANSWER_S = 10.0
# After an unexpected error, the beat waits this long, doubled each time in a row up
# to BUG_RETRY_MAX_S (a lasting bug logs a traceback every 30 s, not twice a second).
BUG_RETRY_MAX_S = 30.0


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
        self.dead_after_s = dead_after_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        # Accounts online here: user id -> name, and the away messages of those away.
        # On the loop only (the presence thread asks the loop for a copy: _local_now).
        self.local: dict[int, str] = {}
        self._away: dict[int, str] = {}
        self._submit: Callable[[WriteJob], None] | None = None  # the writer's (see start)
        self._out_of_step = False  # a write of `local` failed (set on the loop)
        self.last_kick = 0  # every kick up to this id has been applied (presence thread)
        # The rooms of users online elsewhere, for rooms the hub may not know yet.
        self._rooms: dict[int, Room] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatd-presence", daemon=True)

    def start(self, submit: Callable[[WriteJob], None]) -> int:
        """Register this node; its sessions are written through `submit` (the writer's).
        Returns the node's id."""
        self._submit = submit
        self._conn: Connection = connect(self._db)
        self.node_id = nodes.register(self._conn, self.name)
        self.last_kick = nodes.last_kick_id(self._conn)
        self._thread.start()
        return self.node_id

    def wake(self) -> None:
        """Someone logged in or out elsewhere, joined or left a room, or a kick's notice
        came: read again (the kicks too)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        with contextlib.suppress(*ERRORS):
            nodes.remove(self._conn, self.node_id)
        with contextlib.suppress(*ERRORS):
            self._conn.close()

    # --- this node's sessions, on the event loop ------------------------------------

    def logged_in(self, user_id: int, name: str) -> None:
        """An account's first session here: online for the other nodes."""
        self.local[user_id] = name
        self._write(nodes.add_session, user_id=user_id, name=name)

    def logged_out(self, user_id: int) -> None:
        """An account's last session here has ended."""
        self.local.pop(user_id, None)
        self._away.pop(user_id, None)
        self._write(nodes.remove_session, user_id=user_id)

    def set_away(self, user_id: int, away: str) -> None:
        """An account online here is away with this message ("": back), for the others."""
        if user_id in self.local and self._away.get(user_id, "") != away:
            if away:
                self._away[user_id] = away
            else:
                self._away.pop(user_id, None)
            self._write(nodes.set_away, user_id=user_id, away=away)

    def _sessions(self) -> list[nodes.Session]:
        return [
            (user_id, name, self._away.get(user_id, "")) for user_id, name in self.local.items()
        ]

    def _write(self, change: Callable[..., None], **fields: Any) -> None:
        assert self._submit is not None
        done: asyncio.Future[None] = self._loop.create_future()
        done.add_done_callback(self._written)
        self._submit(ActionJob(partial(change, node_id=self.node_id, **fields), done))

    def _written(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            self._out_of_step = True  # written again whole after the next beat

    def _write_all(self) -> None:
        """Write every session of this node again (after a write of them failed)."""
        if self._out_of_step:
            self._out_of_step = False
            self._write(nodes.set_sessions, sessions=self._sessions())

    # --- the heartbeat, on the presence thread ----------------------------------------

    def _run(self) -> None:
        beat_due = 0.0
        reap_after = 0.0  # no declaring others dead before this (see the module's doc)
        bug_retry_s = RETRY_S
        while not self._stopping.is_set():
            now = self._loop.time()
            try:
                if now >= beat_due:
                    self._beat(reap=now >= reap_after)
                    beat_due = now + self._heartbeat_s
                    if self._out_of_step:
                        self._loop.call_soon_threadsafe(self._write_all)
                self._read_kicks()
                self._read_online()
            except ERRORS as exc:
                log.error("presence: %s", exc)
                self._reconnect()
                beat_due = 0.0  # at once: the others may be about to think us dead
                reap_after = self._loop.time() + self.dead_after_s
                continue
            except Exception:  # a bug must not stop the beat (the others would reap us)
                log.exception("presence failed; beating on")
                self._stopping.wait(bug_retry_s)
                bug_retry_s = min(2 * bug_retry_s, BUG_RETRY_MAX_S)
                continue
            bug_retry_s = RETRY_S
            self._wake.wait(max(0.0, beat_due - self._loop.time()))
            self._wake.clear()

    def _beat(self, *, reap: bool) -> None:
        with transaction(self._conn):
            if not nodes.beat(self._conn, self.node_id, self.name, self._local_now):
                log.warning("this node had been declared dead: registered again")
            gone = nodes.reap(self._conn, self.dead_after_s) if reap else []
            nodes.trim_kicks(self._conn, KICKS_KEPT_S)
        if gone:
            log.warning("a node stopped answering: %d users logged out", len(gone))

    def _local_now(self) -> list[nodes.Session]:
        """This node's accounts online, copied on the event loop, where they change."""
        copied: concurrent.futures.Future[list[nodes.Session]] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(lambda: copied.set_result(self._sessions()))
        return copied.result(timeout=LOOP_ANSWER_S)

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
        online, away = nodes.online(self._conn, self.node_id, self.dead_after_s)
        room_ids = {room_id for room_id, _ in online if room_id is not None}
        if not room_ids <= self._rooms.keys():
            rooms = nodes.rooms_with_ids(self._conn, room_ids - self._rooms.keys())
            self._rooms.update((room.id, room) for room in rooms)
        rooms_named = [self._rooms[i] for i in room_ids if i in self._rooms]
        self._loop.call_soon_threadsafe(self._hub.set_remote, online, rooms_named, away)

    def _reconnect(self) -> None:
        with contextlib.suppress(*ERRORS):
            self._conn.close()
        while not self._stopping.is_set():
            try:
                self._conn = connect(self._db)
                log.warning("presence reconnected to the database")
                return
            except ERRORS as exc:
                log.error("presence cannot reconnect: %s", exc)
                self._stopping.wait(RETRY_S)
