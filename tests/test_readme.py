"""The README stays true: its settings table and its test command."""

from __future__ import annotations

from pathlib import Path

from chatd.settings import describe_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _settings_table() -> list[str]:
    rows = ["| flag | variable | default | what it is for |", "|---|---|---|---|"]
    for info in describe_settings():
        default = "(none)" if info.default is None else f"`{info.default}`"
        rows.append(f"| `{info.flag}` | `{info.env}` | {default} | {info.help} |")
    return rows


def test_readme_lists_every_setting_exactly() -> None:
    expected = "\n".join(_settings_table())
    assert expected in README, "README settings table is stale; it should read:\n" + expected


def test_ci_runs_the_readme_test_command() -> None:
    test_command = ".venv/bin/pip install -e '.[test]' && .venv/bin/pytest"
    assert test_command in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pip install -e '.[test]'" in ci
    assert "\n.venv/bin/pytest" in ci


def test_readme_first_run_command_serves_the_sample_users() -> None:
    assert ".venv/bin/pip install . && .venv/bin/chatd serve" in README
    assert (ROOT / "users.txt").read_text().count(":") >= 3
