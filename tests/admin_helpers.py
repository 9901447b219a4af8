"""Helpers for the chatd-admin tests: a seeded database and a CLI runner."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner, Result

from admin.cli import app
from chatd import accounts
from chatd.accounts import PasswordHasher
from chatd.clock import parse_when
from chatd.storage import messages, open_database, transaction, users
from chatd.storage.messages import Kind, NewMessage

runner = CliRunner()


def run(*args: str, input: str | None = None) -> Result:
    """Run chatd-admin in-process (typer's CliRunner)."""
    return runner.invoke(app, list(args), input=input)


def local(text: str) -> int:
    return parse_when(text)


def seed(path: Path | str) -> None:
    """alice, bob and carol (admin), and a few days of chat."""
    conn = open_database(path)
    accounts.import_users(
        conn, [("alice", "pass123"), ("bob", "qwerty"), ("carol", "carol-pw")], PasswordHasher(4)
    )
    users.set_role(conn, "carol", "admin")
    alice, bob = users.get(conn, "alice"), users.get(conn, "bob")
    rows = [
        ("2026-11-20 09:00:00", Kind.JOIN, alice, "", None),
        ("2026-11-20 09:00:05", Kind.PUBLIC, alice, "good morning everyone", None),
        ("2026-11-20 09:01:00", Kind.PUBLIC, bob, "morning! pizza for lunch?", None),
        ("2026-11-20 09:02:00", Kind.PRIVATE, alice, "secret pizza plan", bob),
        ("2026-11-21 14:30:00", Kind.PUBLIC, bob, "the café is closed", None),
        ("2026-11-21 14:31:00", Kind.PUBLIC, alice, "evil \x1b[2J escape", None),
        ("2026-11-21 18:00:00", Kind.LEAVE, alice, "left", None),
    ]
    with transaction(conn):
        messages.insert_many(
            conn,
            (
                NewMessage(
                    local(when),
                    kind,
                    sender.id,
                    sender.username,
                    body,
                    None if to is None else to.id,
                    None if to is None else to.username,
                )
                for when, kind, sender, body, to in rows
            ),
        )
    conn.close()


def today() -> str:
    return datetime.now().strftime("%Y-%m-%d")
