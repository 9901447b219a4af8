"""How stored messages read as text: in /history, in `chatd-admin logs` and in exports."""

from __future__ import annotations

from chatd.clock import StampFormatter
from chatd.storage.messages import Kind, StoredMessage


def describe(message: StoredMessage) -> str:
    """What was said or done, without the time."""
    sender, body = message.sender, message.body
    match message.kind:
        case Kind.PUBLIC:
            return f"{sender}: {body}"
        case Kind.PRIVATE:
            return f"{sender} -> {message.recipient} (private): {body}"
        case Kind.ANNOUNCE:
            return f"*** Announcement from {sender}: {body}"
        case Kind.JOIN:
            return f"*** {sender} joined"
        case Kind.LEAVE:
            return f"*** {sender} {body or 'left'}"


def log_line(message: StoredMessage, stamp: StampFormatter) -> str:
    """One line of a history or log: "2026-11-23 14:05:09 alice: Hello"."""
    return f"{stamp(message.sent_at)} {describe(message)}"
