"""Every command has help text and is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from admin.cli import app as admin_app
from chatd.cli import app as chatd_app
from tests.admin_helpers import runner

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(app: typer.Typer) -> dict[str, str]:
    group = typer.main.get_command(app)
    return {name: command.help or "" for name, command in group.commands.items()}  # type: ignore[attr-defined]


ADMIN = _commands(admin_app)
CHATD = _commands(chatd_app)


def test_the_expected_commands_exist() -> None:
    assert {
        "add-user",
        "remove-user",
        "passwd",
        "disable-user",
        "enable-user",
        "list-users",
        "import-users",
        "logs",
        "stats",
        "export-history",
        "export-logs",
        "migrate",
    } <= set(ADMIN)
    assert "serve" in CHATD


@pytest.mark.parametrize("name", sorted(ADMIN))
def test_admin_command_has_help_and_is_in_the_readme(name: str) -> None:
    assert len(ADMIN[name].strip()) > 10
    result = runner.invoke(admin_app, [name, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    assert f"chatd-admin {name}" in README, f"README does not show `chatd-admin {name}`"


@pytest.mark.parametrize("name", sorted(CHATD))
def test_chatd_command_has_help_and_is_in_the_readme(name: str) -> None:
    assert len(CHATD[name].strip()) > 10
    assert runner.invoke(chatd_app, [name, "--help"]).exit_code == 0
    assert f"chatd {name}" in README
