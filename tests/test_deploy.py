"""docs/deploy.md stays true: its systemd units are valid and run `chatd serve` with options it
has; its HAProxy configuration, run by a real HAProxy, balances two real nodes on a new
PostgreSQL database as the page says (health checks, PROXY v2, chat across the nodes,
draining and stopping one); and the bench behind its figures runs.

The files are the page's fenced blocks that begin with `# /their/path`. What a test
machine cannot have is replaced, and only that: addresses and ports (everything listens on
127.0.0.1), the runtime API's socket, the database (a new one on the test PostgreSQL, which
needs no password file), the users file, HAProxy's `chroot`, `user`, `group` and `daemon`
(it runs in the foreground as whoever runs the tests), and its `maxconn` where the limit of
open files is lower than it needs.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatd.settings import describe_settings
from tests.conftest import TIMEOUT, LineClient, free_port, wait_for
from tests.test_serve_command import chatd_command

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "deploy.md").read_text()

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def page_files(path: str) -> list[str]:
    """Every fenced block of the page that holds the file `path` (its first line is `# path`)."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", PAGE, re.S | re.M)
    found = [block for block in blocks if block.startswith(f"# {path}\n")]
    assert found, f"docs/deploy.md shows no {path}"
    return found


def _unit_command() -> list[str]:
    (unit,) = page_files("/etc/systemd/system/chatd.service")
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _environment(block: str) -> dict[str, str]:
    """The variables an environment file sets (comments and blank lines skipped)."""
    pairs = [line.split("=", 1) for line in block.splitlines() if line and line[0] != "#"]
    return {name: value for name, value in pairs}


# --- the systemd unit ----------------------------------------------------------------


def test_the_unit_runs_chatd_serve_with_options_it_has() -> None:
    command = _unit_command()
    assert Path(command[0]).name == "chatd" and command[1] == "serve"
    flags = {info.flag for info in describe_settings()}
    given = [word for word in command[2:] if word.startswith("--")]
    assert given and set(given) <= flags, f"not options of chatd serve: {set(given) - flags}"
    variables = {info.env for info in describe_settings()}
    for block in page_files("/etc/chatd/chatd.env"):
        named = {name for name in _environment(block) if name.startswith("CHATD_")}
        assert named <= variables, f"not variables of chatd serve: {named - variables}"
        commented = set(re.findall(r"^# (CHATD_[A-Z_]+)=", block, re.M))
        assert commented <= variables, f"not variables of chatd serve: {commented - variables}"


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify`, with the program where this test's chatd is."""
    names = ["chatd.service", "chatd-backup.service", "chatd-backup.timer"]
    for name in names:
        (text,) = page_files(f"/etc/systemd/system/{name}")
        text = text.replace("/opt/chatd/bin/chatd ", f"{chatd_command()[0]} ")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


# --- HAProxy ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def haproxy() -> str:
    if HAPROXY is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed (under CI the deployment tests must run)")
        pytest.skip("haproxy is not installed")
    return HAPROXY


def test_the_haproxy_configuration_is_valid(haproxy: str, tmp_path: Path) -> None:
    (config,) = page_files("/etc/haproxy/haproxy.cfg")
    (tmp_path / "haproxy.cfg").write_text(config)
    result = subprocess.run(
        [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout


@dataclass
class Node:
    """A `chatd serve` started as the page's unit starts it, its log in a file."""

    name: str  # its name in HAProxy's configuration
    process: subprocess.Popen[str]
    port: int
    irc_port: int
    log: Path

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()


def _start_node(name: str, tmp_path: Path, database: str, users: Path) -> Node:
    command = _unit_command()
    irc_port = free_port()
    replace = {"--port": "0", "--irc-port": str(irc_port), "--users-file": str(users)}
    for flag, value in replace.items():
        command[command.index(flag) + 1] = value
    environment = _environment(page_files("/etc/chatd/chatd.env")[-1])  # the nodes' file
    assert set(environment) == {"CHATD_DB", "PGPASSFILE", "CHATD_PROXY_PROTOCOL_FROM"}
    environment.update(CHATD_DB=database, CHATD_PROXY_PROTOCOL_FROM="127.0.0.1")
    del environment["PGPASSFILE"]  # the test server trusts local connections
    log = tmp_path / f"{name}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*chatd_command(), *command[1:], "--host", "127.0.0.1"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **environment, "CHATD_BCRYPT_ROUNDS": "4"},
        )
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith("[+] Server started on port "):
        process.kill()
        pytest.fail(f"{name} did not start: {first!r} {log.read_text()}")
    return Node(name, process, int(first.rsplit(" ", 1)[1]), irc_port, log)


def _runtime_api(path: Path, command: str) -> str:
    """One command to HAProxy's runtime API (what `socat stdio` does in the page)."""
    with socket.socket(socket.AF_UNIX) as api:
        api.settimeout(TIMEOUT)
        api.connect(str(path))
        api.sendall(command.encode() + b"\n")
        answer = b""
        while chunk := api.recv(65536):
            answer += chunk
    return answer.decode()


def _servers(api: Path) -> dict[str, tuple[str, str]]:
    """backend/server -> (status, last check) from `show stat`."""
    rows = [line.split(",") for line in _runtime_api(api, "show stat").splitlines()[1:] if line]
    return {f"{r[0]}/{r[1]}": (r[17], r[36]) for r in rows if r[1] not in ("FRONTEND", "BACKEND")}


def _page_commands(pattern: str) -> list[str]:
    """The runtime API commands the page pipes to socat, matching `pattern`."""
    return [c for c in re.findall(r'echo "([^"]+)" \| sudo socat', PAGE) if re.search(pattern, c)]


@pytest.fixture
def balanced(
    haproxy: str, tmp_path: Path, blank_db: str, users_file: Path
) -> Iterator[tuple[dict[str, Node], int, Path]]:
    """Two nodes on a new database behind the page's HAProxy: (nodes by name, the
    balancer's chat port, its runtime API socket)."""
    nodes: dict[str, Node] = {}
    proxy: subprocess.Popen[str] | None = None
    try:
        for name in ("chat1", "chat2"):
            nodes[name] = _start_node(name, tmp_path, blank_db, users_file)
        config, chat_port, api = _local_config(tmp_path, nodes)
        (tmp_path / "haproxy.cfg").write_text(config)
        with (tmp_path / "haproxy.log").open("w") as log:
            proxy = subprocess.Popen(
                [haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        wait_for(api.exists, what="HAProxy's runtime API")
        yield nodes, chat_port, api
    finally:
        running = [node.process for node in nodes.values()] + ([proxy] if proxy else [])
        for process in running:
            if process.poll() is None:
                process.terminate()
        for process in running:
            process.wait(TIMEOUT)


def _local_config(tmp_path: Path, nodes: dict[str, Node]) -> tuple[str, int, Path]:
    (config,) = page_files("/etc/haproxy/haproxy.cfg")
    kept = [
        line
        for line in config.splitlines()
        if line.split()[:1] not in (["chroot"], ["user"], ["group"], ["daemon"])
    ]
    config = "\n".join(kept) + "\n"
    chat_port, irc_port = free_port(), free_port()
    api = tmp_path / "admin.sock"
    addresses = {"chat1": "10.0.0.11", "chat2": "10.0.0.12"}
    replacements = {
        "/run/haproxy/admin.sock": str(api),
        "bind :1024\n": f"bind 127.0.0.1:{chat_port}\n",
        "bind :6667\n": f"bind 127.0.0.1:{irc_port}\n",
    }
    for name, node in nodes.items():
        replacements[f"{addresses[name]}:1024\n"] = f"127.0.0.1:{node.port}\n"
        replacements[f"{addresses[name]}:6667\n"] = f"127.0.0.1:{node.irc_port}\n"
    for old, new in replacements.items():
        assert old in config, f"the page's haproxy.cfg no longer has {old!r}"
        config = config.replace(old, new)
    # HAProxy raises its own limit of open files to two per connection of its
    # maxconn, and a few more, within the hard limit.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    maxconn = int(re.search(r"^\s+maxconn (\d+)$", config, re.M)[1])  # type: ignore[index]
    if hard != resource.RLIM_INFINITY and hard < 2 * maxconn + 100:  # a small test machine
        config = config.replace(f"maxconn {maxconn}\n", f"maxconn {(hard - 100) // 2}\n")
    return config, chat_port, api


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_haproxy_balances_two_nodes_as_the_page_says(
    balanced: tuple[dict[str, Node], int, Path],
) -> None:
    nodes, port, api = balanced
    # The health checks (the greeting, and a PING on the IRC port) find both nodes up.
    wait_for(
        lambda: set(_servers(api).values()) == {("UP", "L7OK")} and len(_servers(api)) == 4,
        what="both nodes up in both backends",
    )

    # A client comes through the balancer; its node sees its own address (PROXY v2).
    alice = LineClient(port, source="127.0.0.2")
    alice.login("alice", "pass123")
    seen_as = f"127.0.0.2:{alice.sock.getsockname()[1]}: alice logged in"
    first = wait_for(
        lambda: next((n for n in nodes.values() if n.logged(seen_as)), None),
        what="alice's node logging her real address",
    )
    (other,) = [node for node in nodes.values() if node is not first]

    # Drained as the page drains chat2 (in both backends), her node takes no one new.
    drains = _page_commands(r"^set server \w+/chat2 state drain$")
    assert len(drains) == 2
    for command in drains:
        assert _runtime_api(api, command.replace("chat2", first.name)) == "\n"
    bob = LineClient(port, source="127.0.0.3")
    bob.login("bob", "qwerty")
    assert wait_for(
        lambda: other.logged(f"127.0.0.3:{bob.sock.getsockname()[1]}: bob logged in"),
        what="bob on the other node",
    )

    # One chat across the two nodes.
    bob.send("hello from the other node")
    alice.expect("^bob: hello from the other node$")
    alice.send("hi bob")
    bob.expect("^alice: hi bob$")
    alice.expect("^You said: hi bob$")

    # Stopped (systemctl stop: SIGTERM), her node says goodbye and closes; back
    # through the balancer, she lands on the other node and finds bob there.
    first.process.send_signal(signal.SIGTERM)
    assert alice.wait_closed()[-1] == "*** The server is shutting down. Goodbye."
    assert first.process.wait(TIMEOUT) == 0
    bob.expect(r"^\*\*\* alice left$")
    again = LineClient(port, source="127.0.0.2")
    again.login("alice", "pass123")
    assert wait_for(
        lambda: other.logged(f"127.0.0.2:{again.sock.getsockname()[1]}: alice logged in"),
        what="alice back, on the other node",
    )
    again.send("/users")
    again.expect("^Active users: alice, bob$")
    # And the health checks have found the stopped node down.
    wait_for(
        lambda: _servers(api)[f"chatd/{first.name}"][0] == "DOWN",
        what="the stopped node marked down",
    )
    for client in (alice, bob, again):
        client.close()


# --- the figures' bench ----------------------------------------------------------------


CEILING = ROOT / "bench" / "ceiling.py"


def _ceiling(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(CEILING), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_the_ceiling_bench_runs(postgres_server: str, tmp_path: Path) -> None:
    """A smoke run of bench/ceiling.py, so that it cannot rot; its figures are not checked."""
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        _ceiling(
            "--postgres", postgres_server, "sweep", "--nodes", "2", "--clients", "4",
            "--room-size", "2", "--rates", "40", "--seconds", "0.5", "--runs", "1",
        )
    )  # fmt: skip
    (step,) = json.loads(sweep.read_text())
    assert step["lost"] == step["duplicated"] == step["out_of_order"] == 0
    assert step["commits_per_s"] > 0
    assert "| 2 | 2 | 40 |" in _ceiling("table", str(sweep))  # room of 2, 2 nodes, 40 msg/s
