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


def _build_map() -> str:
    start = README.index("## How it is built")
    return README[start : README.index("\n## ", start + 1)]


def test_every_python_file_the_readme_names_exists() -> None:
    import re

    named = set(re.findall(r"\b([a-z_][a-z0-9_]*\.py)\b", README))
    existing = {path.name for path in ROOT.rglob("*.py") if ".venv" not in path.parts}
    assert named <= existing, f"README names files that do not exist: {named - existing}"


def test_the_build_map_names_every_module_of_the_server() -> None:
    build_map = _build_map()
    packages = ("chatd", "chatd/core", "chatd/line", "chatd/irc", "chatd/storage", "admin")
    for package in packages:
        for path in sorted((ROOT / package).glob("*.py")):
            if path.name not in ("__init__.py", "__main__.py"):
                assert path.name in build_map, f"{package}/{path.name} is missing from the map"
    newest = sorted((ROOT / "migrations").glob("*.sql"))[-1].name
    assert newest in build_map, f"the map should name the newest migration, {newest}"
