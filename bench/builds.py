"""Another chatd build beside this one: a revision checked out and installed on its own.

`run.py --peers chatd,chatd@af5ed5f` measures the current code and an older
one in the same run; `attacks.py --baseline af5ed5f` attacks the older one.
A build is a `git worktree` of the revision (detached) in
bench/results/builds/, with its own virtual environment and a plain
`pip install` of that checkout, made once and kept.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
BUILDS = REPOSITORY / "bench" / "results" / "builds"


@dataclass(frozen=True)
class Build:
    revision: str  # as asked for: "af5ed5f"
    directory: Path  # its checkout; its environment is in .venv/

    @property
    def python(self) -> str:
        return str(self.directory / ".venv" / "bin" / "python")

    @property
    def chatd(self) -> list[str]:
        return [str(self.directory / ".venv" / "bin" / "chatd")]

    @property
    def chatd_admin(self) -> list[str]:
        return [str(self.directory / ".venv" / "bin" / "chatd-admin")]


def _git(*args: str) -> str:
    git = shutil.which("git") or "/usr/bin/git"
    return subprocess.run(
        [git, "-C", str(REPOSITORY), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def exists(revision: str) -> bool:
    try:
        _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except subprocess.CalledProcessError:
        return False
    return True


@functools.cache
def checkout(revision: str) -> Build:
    """The build of `revision`, checked out and installed if it is not yet."""
    commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}")
    build = Build(revision, BUILDS / commit[:12])
    if (build.directory / ".venv" / "bin" / "chatd").exists():
        return build
    print(f"   building chatd@{revision} in {build.directory} ...", flush=True)
    if not (build.directory / ".git").exists():
        BUILDS.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(build.directory), commit)
    subprocess.run([sys.executable, "-m", "venv", str(build.directory / ".venv")], check=True)
    subprocess.run([build.python, "-m", "pip", "install", "-q", str(build.directory)], check=True)
    return build


def with_postgresql(build: Build) -> None:
    """Install the build's `postgres` extra (psycopg) in its environment, if it is not yet."""
    found = subprocess.run([build.python, "-c", "import psycopg"], check=False, capture_output=True)
    if found.returncode != 0:
        print(f"   installing chatd[postgres]@{build.revision} ...", flush=True)
        subprocess.run(
            [build.python, "-m", "pip", "install", "-q", f"{build.directory}[postgres]"],
            check=True,
        )


@functools.cache
def serve_help(command: tuple[str, ...]) -> str:
    """A build's `chatd serve --help`."""
    wide = {**os.environ, "COLUMNS": "200"}  # no option name wrapped by the help's table
    return subprocess.run(
        [*command, "serve", "--help"], check=True, capture_output=True, text=True, env=wide
    ).stdout


def serve_flags(command: tuple[str, ...]) -> frozenset[str]:
    """The options a build's `chatd serve` understands, from its --help."""
    return frozenset(re.findall(r"--[a-z][a-z0-9-]*", serve_help(command)))


def speaks_postgresql(command: Sequence[str]) -> bool:
    """Whether a build's `chatd serve --db` takes a postgresql:// URL."""
    return "postgresql://" in serve_help(tuple(command))


def understood(command: Sequence[str], flags: Sequence[str]) -> list[str]:
    """`flags` (pairs of option and value) without the options this build lacks: an
    older build still has --max-pending-logins, a newer one --silent-deadline-s."""
    known = serve_flags(tuple(command))
    pairs = zip(flags[::2], flags[1::2], strict=True)
    return [part for option, value in pairs if option in known for part in (option, value)]
