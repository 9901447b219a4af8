"""How chatd-admin prints query results: a table for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from chatd.clock import StampFormatter, iso_time
from chatd.storage.messages import LogEntry
from chatd.storage.rooms import RoomSummary
from chatd.storage.users import UserSummary
from chatd.wire import make_visible


def print_table(headers: list[str], rows: Iterable[list[str]]) -> int:
    """Print rows under their headers; return how many there were (nothing is printed for 0)."""
    table = Table(show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    if table.row_count:
        Console(highlight=False).print(table)
    return table.row_count


def print_json_array(items: Iterable[Mapping[str, Any]]) -> None:
    """Stream one JSON array, an item per line, however many items there are."""
    out = sys.stdout
    out.write("[")
    separator = "\n"
    for item in items:
        out.write(separator + json.dumps(item, ensure_ascii=False))
        separator = ",\n"
    out.write("\n]\n" if separator != "\n" else "]\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def message_rows(entries: Iterable[LogEntry], *, utc: bool) -> Iterator[list[str]]:
    stamp = StampFormatter(utc=utc)
    for entry in entries:
        yield [
            stamp(entry.sent_at),
            entry.room or "",
            entry.kind,
            entry.sender,
            entry.recipient or "",
            make_visible(entry.body),
        ]


MESSAGE_HEADERS = ["time", "room", "kind", "from", "to", "message"]


def message_json(entries: Iterable[LogEntry], *, utc: bool) -> Iterator[dict[str, Any]]:
    for entry in entries:
        yield {
            "id": entry.id,
            "time": iso_time(entry.sent_at, utc=utc),
            "room": entry.room,
            "kind": entry.kind.value,
            "sender": entry.sender,
            "recipient": entry.recipient,
            "body": entry.body,
        }


USER_HEADERS = ["user", "role", "state", "created", "last login", "messages"]


def user_rows(summaries: Iterable[UserSummary], *, utc: bool) -> Iterator[list[str]]:
    stamp = StampFormatter(utc=utc)
    for user in summaries:
        yield [
            user.username,
            user.role,
            "disabled" if user.disabled else "active",
            stamp(user.created_at),
            "never" if user.last_login_at is None else stamp(user.last_login_at),
            f"{user.messages:,}",
        ]


def user_json(summaries: Iterable[UserSummary], *, utc: bool) -> Iterator[dict[str, Any]]:
    for user in summaries:
        yield {
            "username": user.username,
            "role": user.role,
            "disabled": user.disabled,
            "created": iso_time(user.created_at, utc=utc),
            "last_login": None
            if user.last_login_at is None
            else iso_time(user.last_login_at, utc=utc),
            "messages": user.messages,
        }


ROOM_HEADERS = ["room", "members", "messages", "last activity", "topic"]


def room_rows(summaries: Iterable[RoomSummary], *, utc: bool) -> Iterator[list[str]]:
    stamp = StampFormatter(utc=utc)
    for room in summaries:
        yield [
            room.name,
            f"{room.members:,}",
            f"{room.messages:,}",
            "never" if room.last_activity is None else stamp(room.last_activity),
            make_visible(room.topic),
        ]


def room_json(summaries: Iterable[RoomSummary], *, utc: bool) -> Iterator[dict[str, Any]]:
    for room in summaries:
        yield {
            "room": room.name,
            "members": room.members,
            "messages": room.messages,
            "last_activity": None
            if room.last_activity is None
            else iso_time(room.last_activity, utc=utc),
            "topic": room.topic,
        }
