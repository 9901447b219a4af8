"""Smoke runs of the benchmarks, so that they cannot rot. Their speed is not checked; that
nothing was lost, duplicated or out of order is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def test_the_bench_runs_every_scenario_and_writes_its_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--peers", "chatd,floor", "--no-chart",
         "--out", str(tmp_path), "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    cases = document["results"]
    assert {case.split()[0] for case in cases} == {
        "fanout", "fanout-rate", "pingpong", "room-fanout", "capacity", "logins", "storage",
    }  # fmt: skip
    fanout = next(runs for case, runs in cases.items() if case.startswith("fanout "))
    assert set(fanout) == {"chatd", "floor"}
    assert fanout["chatd"][0]["lost"] == 0  # what the bench counts, not how fast
    room = next(runs for case, runs in cases.items() if case.startswith("room-fanout "))
    assert room["chatd"][0]["lost"] == 0
    assert room["chatd"][0]["others_messages"] == 0  # a room's messages reach its members only
    assert "| case | figure | chatd | floor | chatd/floor |" in result.stdout


def test_another_build_gets_only_the_options_it_understands() -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        import builds
        import common
    finally:
        sys.path.remove(str(BENCH.parent))
    flags = ["--silent-deadline-s", "300", "--max-pending-logins", "20000", "--port", "0"]
    assert builds.understood(common.chatd_command(), flags) == [
        "--silent-deadline-s", "300", "--port", "0",
    ]  # fmt: skip


def test_chatd_on_postgresql_runs_beside_chatd_on_sqlite_in_a_database_of_its_own(
    tmp_path: Path, postgres_server: str
) -> None:
    import psycopg

    process = subprocess.Popen(
        [sys.executable, str(BENCH), "fanout", "--quick", "--peers", "chatd,chatd-pg",
         "--postgres", postgres_server, "--no-chart", "--out", str(tmp_path),
         "--cache", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    cases = json.loads((tmp_path / "latest.json").read_text())["results"]
    assert list(cases) == ["fanout 10x5x10"]
    on_postgresql = cases["fanout 10x5x10"]["chatd-pg"][0]
    assert on_postgresql["deliveries_per_s"] > 0
    assert on_postgresql["lost"] == on_postgresql["duplicated"] == 0
    assert on_postgresql["out_of_order"] == 0
    # Its PostgreSQL backends were measured (a run this short may take under a tick).
    assert on_postgresql["database_cpu"] >= 0
    assert "| case | figure | chatd | chatd-pg | chatd-pg/chatd |" in stdout
    with psycopg.connect(postgres_server) as admin:  # its database was dropped after it
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"chatd\\_bench\\_{process.pid}\\_%",),
        ).fetchall()
    assert left == []


def _bench_script(name: str, *args: str) -> dict[str, float]:
    """Run bench/NAME with `args`; the JSON object it printed."""
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / name), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def test_the_nodes_bench_tells_cross_node_latency_apart(postgres_server: str) -> None:
    """A small run of bench/nodes.py on three nodes: every message delivered once, in
    order, and the latencies of the deliveries that crossed nodes counted apart."""
    figures = _bench_script(
        "nodes.py", "--nodes", "3", "--clients", "6", "--senders", "3", "--rate", "500",
        "--seconds", "1", "--postgres", postgres_server,
    )  # fmt: skip
    assert figures["lost"] == figures["duplicated"] == figures["out_of_order"] == 0
    assert 0 < figures["cross_node_p50_ms"] <= figures["cross_node_max_ms"]


def test_cutting_every_connection_under_load_loses_nothing(postgres_server: str) -> None:
    """A small run of bench/nodecut.py: with chatd's connections to the database cut
    every half second, nothing acknowledged is lost, nothing refused was stored, and
    the watchers received every stored message once, in commit order."""
    figures = _bench_script(
        "nodecut.py", "--senders", "2", "--seconds", "2", "--cut-every", "0.5",
        "--postgres", postgres_server,
    )  # fmt: skip
    assert figures["cuts"] >= 2
    assert figures["acknowledged"] > 0
    assert figures["acknowledged_not_stored"] == figures["refused_but_stored"] == 0
    assert figures["missing"] == figures["duplicated"] == figures["out_of_order"] == 0
    assert figures["not_stored_but_received"] == figures["sessions_cut_off"] == 0
    assert figures["wrong_answers"] == 0
