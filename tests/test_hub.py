"""The protocol-neutral core with fake sessions and no sockets: who gets what."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from chatd.core.hub import FrontEnd, Hub, Member
from chatd.rooms import GENERAL_ROOM_ID
from chatd.storage.messages import Kind, NewMessage
from chatd.storage.rooms import Room

GENERAL = Room(GENERAL_ROOM_ID, "#general", "")
DEV = Room(2, "#dev", "")


@dataclass(eq=False)
class Recorder:
    """A front end that writes down what it is handed."""

    received: list[tuple[str, str, str]] = field(default_factory=list)  # (to, kind, body)
    calls: int = 0
    runs: int = 0  # deliver_said calls

    def deliver(
        self, message: NewMessage, audience: Iterable[Member], origin: Member | None
    ) -> None:
        self.calls += 1
        for member in audience:
            self.received.append((member.name, message.kind.value, message.body))

    def deliver_said(
        self,
        messages: Sequence[NewMessage],
        said_by: Mapping[Member, list[int]],
        audience: Iterable[Member],
    ) -> None:
        self.runs += 1
        members = list(audience)
        origins = {index: member for member, indexes in said_by.items() for index in indexes}
        for index, message in enumerate(messages):
            self.deliver(message, members, origins.get(index))

    def acknowledge(self, message: NewMessage, origin: Member, delivered: bool) -> None:
        self.received.append((origin.name, "ack", str(delivered)))

    def disconnect(self, member: Member, by: str, reason: str) -> None:
        self.received.append((member.name, "kicked", by))

    def to(self, name: str) -> list[str]:
        return [body for to, kind, body in self.received if to == name and kind == "public"]


@dataclass(eq=False)
class FakeSession:
    name: str
    user_id: int
    frontend: FrontEnd


def _said(sender: FakeSession, body: str, room: Room = GENERAL) -> NewMessage:
    return NewMessage(
        0, Kind.PUBLIC, sender.user_id, sender.name, body, None, None, room.id, room.name
    )


def test_a_room_message_reaches_only_its_members_in_one_call_per_front_end() -> None:
    hub, line = Hub(quiet_joins_above=50), Recorder()
    alice, bob, carol = (FakeSession(n, i, line) for i, n in enumerate(("alice", "bob", "carol")))
    hub.enter(alice, [GENERAL, DEV])
    hub.enter(bob, [GENERAL, DEV])
    hub.enter(carol, [GENERAL])
    hub.deliver(_said(alice, "dev talk", DEV), 1, alice)
    assert line.calls == 1
    assert line.to("bob") == ["dev talk"] and line.to("alice") == ["dev talk"]
    assert line.to("carol") == []


def test_delivery_touches_only_a_rooms_members_among_many_online() -> None:
    hub, line = Hub(quiet_joins_above=50), Recorder()
    members = [FakeSession(f"m{n}", n, line) for n in range(10)]
    for session in members:
        hub.enter(session, [GENERAL, DEV])
    for n in range(10, 1010):
        hub.enter(FakeSession(f"u{n}", n, line), [GENERAL])
    hub.deliver(_said(members[0], "small room", DEV), 1, members[0])
    assert len(line.received) == 10


def test_joins_and_leaves_change_membership_in_commit_order() -> None:
    hub, line = Hub(quiet_joins_above=50), Recorder()
    alice, bob = FakeSession("alice", 1, line), FakeSession("bob", 2, line)
    hub.enter(alice, [GENERAL, DEV])
    hub.enter(bob, [GENERAL])
    hub.deliver(_said(alice, "before", DEV), 1, alice)
    join = NewMessage(0, Kind.JOIN, bob.user_id, "bob", "", None, None, DEV.id, DEV.name)
    hub.deliver(join, 2, bob)
    hub.deliver(_said(alice, "after", DEV), 3, alice)
    assert line.to("bob") == ["after"]
    assert hub.is_member(bob, DEV.id)
    leave = NewMessage(0, Kind.LEAVE, bob.user_id, "bob", "", None, None, DEV.id, DEV.name)
    hub.deliver(leave, 4, bob)
    hub.deliver(_said(alice, "gone", DEV), 5, alice)
    assert line.to("bob") == ["after"]
    assert hub.last_delivered_id == 5


def test_the_last_session_of_an_account_takes_it_offline() -> None:
    hub, line = Hub(quiet_joins_above=50), Recorder()
    first, second = FakeSession("alice", 1, line), FakeSession("alice", 1, line)
    assert hub.enter(first, [GENERAL]) is True
    assert hub.enter(second, [GENERAL]) is False
    assert hub.online_names() == ["alice"]
    assert hub.leave(first) is False
    assert hub.leave(second) is True
    assert hub.online_names() == []


def test_two_front_ends_each_get_their_own_members() -> None:
    hub, line, irc = Hub(quiet_joins_above=50), Recorder(), Recorder()
    alice, bob = FakeSession("alice", 1, line), FakeSession("bob", 2, irc)
    hub.enter(alice, [GENERAL])
    hub.enter(bob, [GENERAL])
    hub.deliver(_said(alice, "hi both", GENERAL), 1, alice)
    assert line.to("alice") == ["hi both"] and line.to("bob") == []
    assert irc.to("bob") == ["hi both"]
    assert hub.kick("bob", "admin", "") == 1
    assert ("bob", "kicked", "admin") in irc.received


def test_a_batch_goes_out_in_commit_order_with_runs_of_one_room_together() -> None:
    hub, line = Hub(quiet_joins_above=50), Recorder()
    alice, bob = FakeSession("alice", 1, line), FakeSession("bob", 2, line)
    hub.enter(alice, [GENERAL, DEV])
    hub.enter(bob, [GENERAL])
    batch = [
        (_said(alice, "one"), 1, alice),
        (_said(bob, "two"), 2, bob),
        (_said(alice, "in dev", DEV), 3, alice),
        (_said(alice, "three"), 4, alice),
    ]
    hub.deliver_batch(batch)
    assert line.to("alice") == ["one", "two", "in dev", "three"]
    assert line.to("bob") == ["one", "two", "three"]
    assert line.runs == 1  # [one, two] together; the others one at a time
    assert hub.last_delivered_id == 4


def test_users_online_elsewhere_are_found_with_their_rooms() -> None:
    """Other nodes' users (set_remote): their rooms, those no local user is in too."""
    hub, line = Hub(quiet_joins_above=50), Recorder()
    alice = FakeSession("alice", 1, line)
    hub.enter(alice, [GENERAL])
    lab = Room(3, "#lab", "soldering")
    hub.set_remote([(None, "Bob"), (DEV.id, "Bob"), (lab.id, "Bob"), (None, "carol")], [DEV, lab])
    assert hub.online_name("bob") == "Bob"
    assert [state.name for state in hub.rooms_of_user("BOB")] == ["#general", "#dev", "#lab"]
    assert [state.name for state in hub.rooms_of_user("carol")] == ["#general"]
    assert [state.name for state in hub.rooms_of_user("alice")] == ["#general"]
    assert hub.rooms_of_user("dave") == []
    state = hub.room("#lab")
    assert state is not None and state.topic == "soldering" and state.online_names() == ["Bob"]
    assert hub.online_in(lab.id) == 1
    hub.set_remote([(None, "carol")])  # Bob logged out
    assert hub.rooms_of_user("bob") == [] and hub.online_name("bob") is None
    assert hub.room("#lab") is not None and hub.online_in(lab.id) == 0
