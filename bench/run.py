"""chatd's benchmark suite: chatd, ngIRCd and the floor server on the same work, in one run.

    python bench/run.py                      # everything: 5 runs, every peer (about 25 min)
    python bench/run.py --quick              # small sizes, one run (a minute at most)
    python bench/run.py fanout pingpong --runs 3 --peers chatd,ngircd
    python bench/run.py fanout --peers chatd,chatd@af5ed5f   # against an older build
    python bench/run.py fanout --peers chatd,chatd-pg        # SQLite against PostgreSQL

The server runs pinned to CPU 0 and this process, the load generator, to
CPU 1 (capacity leaves the server free: logins are bcrypt work on every
core). Runs are interleaved (run 1 of every peer, then run 2, ...), ratios
chatd/peer are taken run by run and their median reported, like every other
figure. A peer `chatd@REV` is chatd as it was at revision REV, checked out
and installed in bench/results/builds/ (bench/builds.py); with one, the
`migration` case times the current `chatd-admin migrate` of a database that
build made. A peer `chatd-pg` (or `chatd-pg@REV`) is the same chatd on
PostgreSQL, in a database made for each start on the server at --postgres
(default $CHATD_BENCH_POSTGRES, else the local one) and dropped after; its
ratios are taken the other way, chatd-pg/chatd (against the SQLite build of
the same revision). Results go to bench/results/latest.json (and a dated
copy), and a chart of deliveries and latency to bench/results/chart.png.
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import builds
import common
import irc_peer
import peers
import scenarios

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Case:
    scenario: str
    label: str
    run: Callable[[type[Any] | None], scenarios.Figures]
    # "chatd@": every other build of chatd; "chatd-pg@": of chatd on PostgreSQL
    peers: tuple[str, ...] = ("chatd", "chatd@", "chatd-pg", "chatd-pg@", "ngircd", "floor")

    def takes(self, peer: str) -> bool:
        return any(peer == p or (p.endswith("@") and peer.startswith(p)) for p in self.peers)


@dataclass(frozen=True)
class Target:
    case: str  # "scenario label"
    figure: str
    compare: Callable[[float, float], bool]
    bound: float
    text: str
    ratio_to: str | None = None  # compare <of>/<peer> instead of <of>'s figure
    of: str = "chatd"  # the peer whose figure it is


CHATD_BUILDS = ("chatd", "chatd@", "chatd-pg", "chatd-pg@")
CHATD = ("chatd",)  # scenarios that need what only the current build has (rooms, its storage)


def _cases(
    quick: bool, database: Callable[[builds.Build | None], Path], baselines: list[builds.Build]
) -> list[Case]:
    def fan(c: int, s: int, m: int, rate: float | None = None) -> Callable[[Any], Any]:
        return lambda peer: scenarios.fanout(peer, c, s, m, rate=rate)

    def rooms(c: int, t: int, m: int, room: str | None) -> Callable[[Any], Any]:
        return lambda _: scenarios.room_fanout(c, t, m, room)

    def migrate(build: builds.Build) -> Case:
        def run(_: Any) -> scenarios.Figures:
            return scenarios.migration(database(build))

        return Case("migration", f"{size} from chatd@{build.revision}", run, CHATD)

    size = "5k" if quick else "1M"
    if quick:  # seconds, for the smoke test: the figures mean little at this size
        return [
            Case("fanout", "10x5x10", fan(10, 5, 10)),
            Case("fanout-rate", "1k/s", fan(10, 10, 5, rate=1_000)),
            Case("pingpong", "5", lambda peer: scenarios.pingpong(peer, 5, 10)),
            Case("room-fanout", "#small 3 of 20", rooms(20, 3, 10, "#small"), CHATD),
            Case("capacity", "50", lambda peer: scenarios.capacity(peer, 50)),
            Case("logins", "cost 4", lambda peer: scenarios.logins(peer, 1, rounds=4),
                 CHATD_BUILDS),
            Case("storage", "5k", lambda _: scenarios.storage(database(None), 10, 3), CHATD),
            *(migrate(build) for build in baselines),
        ]  # fmt: skip
    return [
        Case("fanout", "100x100x200", fan(100, 100, 200)),
        Case("fanout", "1000x10x100", fan(1000, 10, 100)),
        Case("fanout-rate", "40k/s", fan(100, 100, 40, rate=40_000)),
        Case("pingpong", "50", lambda peer: scenarios.pingpong(peer, 50, 200)),
        # chatd over IRC against ngIRCd, one dialect for both (bench/irc_peer.py)
        Case(
            "fanout-irc",
            "100x100x200",
            lambda peer: scenarios.fanout(irc_peer.over_irc(peer), 100, 100, 200),
            ("chatd", "ngircd"),
        ),
        Case(
            "pingpong-irc",
            "50",
            lambda peer: scenarios.pingpong(irc_peer.over_irc(peer), 50, 200),
            ("chatd", "ngircd"),
        ),
        # A room's message costs its members, not everyone online: the same 10
        # talkers in a room of 10 among 1,000 online, in that room with nobody
        # else online, in #general with 1,000 online, and in #general alone.
        Case("room-fanout", "#small 10 of 1000", rooms(1000, 10, 500, "#small"), CHATD),
        Case("room-fanout", "#small 10 of 10", rooms(10, 10, 500, "#small"), CHATD),
        Case("room-fanout", "#general 1000", rooms(1000, 10, 100, None), CHATD),
        Case("room-fanout", "#general 10", rooms(10, 10, 500, None), CHATD),
        Case("capacity", "10000", lambda peer: scenarios.capacity(peer, 10_000)),
        Case("logins", "cost 12", lambda peer: scenarios.logins(peer, 20, rounds=12),
             CHATD_BUILDS),
        Case("storage", "1M", lambda _: scenarios.storage(database(None)), CHATD),
        *(migrate(build) for build in baselines),
    ]  # fmt: skip


ge, le = operator.ge, operator.le
TARGETS = [
    Target("fanout 100x100x200", "deliveries_per_s", ge, 200_000, ">= 200,000/s"),
    Target("fanout 100x100x200", "deliveries_per_s", ge, 0.2, ">= 0.2x ngIRCd", "ngircd"),
    Target("fanout 100x100x200", "lost", le, 0, "0"),
    Target("fanout 100x100x200", "duplicated", le, 0, "0"),
    Target("fanout 100x100x200", "out_of_order", le, 0, "0"),
    Target(
        "fanout 100x100x200",
        "deliveries_per_s",
        ge,
        0.5,
        ">= 0.5x chatd on SQLite",
        "chatd",
        of="chatd-pg",
    ),
    Target("fanout 100x100x200", "lost", le, 0, "0", of="chatd-pg"),
    Target("fanout 100x100x200", "duplicated", le, 0, "0", of="chatd-pg"),
    Target("fanout 100x100x200", "out_of_order", le, 0, "0", of="chatd-pg"),
    Target("fanout 1000x10x100", "deliveries_per_s", ge, 150_000, ">= 150,000/s"),
    Target("fanout-rate 40k/s", "p99_ms", le, 5, "<= 5 ms"),
    Target("pingpong 50", "round_trips_per_s", ge, 2_500, ">= 2,500/s"),
    Target("fanout-irc 100x100x200", "deliveries_per_s", ge, 0.4, ">= 0.4x ngIRCd", "ngircd"),
    Target("fanout-irc 100x100x200", "lost", le, 0, "0"),
    Target("fanout-irc 100x100x200", "out_of_order", le, 0, "0"),
    Target("pingpong-irc 50", "round_trips_per_s", ge, 0.4, ">= 0.4x ngIRCd", "ngircd"),
    Target("capacity 10000", "rss_per_session_kib", le, 20 * 1000 / 1024, "<= 20 KB"),
    Target("capacity 10000", "login_all_s", le, 10, "<= 10 s"),
    Target("logins cost 12", "logins_per_s", ge, 3, ">= 3/s"),
    Target("logins cost 12", "chat_p99_ms", le, 50, "<= 50 ms"),
    Target("storage 1M", "history_p99_ms", le, 5, "<= 5 ms"),
    Target("storage 1M", "search_p99_ms", le, 50, "<= 50 ms"),
    Target("storage 1M", "export_logs_lines_per_s", ge, 200_000, ">= 200,000/s"),
    Target("storage 1M", "export_history_lines_per_s", ge, 200_000, ">= 200,000/s"),
    Target("storage 1M", "export_logs_peak_mib", le, 100e6 / 2**20, "<= 100 MB"),
    Target("storage 1M", "export_history_peak_mib", le, 100e6 / 2**20, "<= 100 MB"),
    Target("storage 1M", "ready_s", le, 0.5, "<= 0.5 s"),
]


@dataclass
class Results:
    runs: dict[str, dict[str, list[scenarios.Figures]]] = field(default_factory=dict)

    def add(self, case: str, peer: str, figures: scenarios.Figures) -> None:
        self.runs.setdefault(case, {}).setdefault(peer, []).append(figures)

    def median(self, case: str, peer: str, figure: str) -> float:
        values = [run[figure] for run in self.runs.get(case, {}).get(peer, []) if figure in run]
        return statistics.median(values) if values else math.nan

    def ratio(self, case: str, figure: str, peer: str, of: str = "chatd") -> float:
        """The median over runs of `of`'s figure divided by the peer's in the same run."""
        mine = self.runs.get(case, {}).get(of, [])
        theirs = self.runs.get(case, {}).get(peer, [])
        ratios = [
            a[figure] / b[figure]
            for a, b in zip(mine, theirs, strict=False)
            if figure in a and b.get(figure)
        ]
        return statistics.median(ratios) if ratios else math.nan


def _database(quick: bool, cache: Path) -> Callable[[builds.Build | None], Path]:
    """The storage scenario's database, made on first use and kept: by this build, or by
    an older one (in its schema, for the migration case)."""
    size, users = (5_000, 200) if quick else (1_000_000, 10_000)

    def build(by: builds.Build | None) -> Path:
        path = cache / f"storage-{size}-{'rooms' if by is None else by.directory.name}.db"
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            who = "" if by is None else f" with chatd@{by.revision}"
            print(f"   generating {size:,} messages from {users:,} users{who} ...", flush=True)
            started = time.monotonic()
            partial = path.with_suffix(".partial")
            for leftover in cache.glob(partial.name + "*"):
                leftover.unlink()
            if by is None:
                scenarios.generate_database(partial, size, users)
            else:
                scenarios.generate_database_with(by, partial, size, users)
            partial.rename(path)
            print(f"   ... in {time.monotonic() - started:.0f} s", flush=True)
        return path

    return build


def _format(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def ratios(chosen_peers: list[str]) -> list[tuple[str, str]]:
    """The ratios the table shows, (of, to): chatd/<peer> for every other server, and
    chatd-pg[@REV]/chatd[@REV], PostgreSQL against SQLite in the same build."""
    pairs = []
    for peer in chosen_peers:
        base, at, revision = peer.partition("@")
        if base == "chatd-pg":
            sqlite = f"chatd{at}{revision}"
            pairs.append((peer, sqlite if sqlite in chosen_peers else "chatd"))
        elif peer != "chatd":
            pairs.append(("chatd", peer))
    return [(of, to) for of, to in pairs if of in chosen_peers and to in chosen_peers]


def report(results: Results, chosen_peers: list[str]) -> list[dict[str, Any]]:
    """Print the table; return the targets with their verdicts."""
    pairs = ratios(chosen_peers)
    header = ["case", "figure", *chosen_peers, *(f"{of}/{to}" for of, to in pairs)]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for case, by_peer in results.runs.items():
        figures = list(
            dict.fromkeys(name for p in chosen_peers for run in by_peer.get(p, []) for name in run)
        )
        for figure in figures:
            cells = [_format(results.median(case, p, figure)) for p in chosen_peers]
            cells += [_format(results.ratio(case, figure, to, of)) for of, to in pairs]
            print(f"| {case} | {figure} | " + " | ".join(cells) + " |")
    verdicts = []
    print("\n| target | figure | wanted | measured | met |\n|---|---|---|---|---|")
    for target in TARGETS:
        if target.case not in results.runs or target.of not in chosen_peers:
            continue
        if target.ratio_to:
            if target.ratio_to not in chosen_peers:
                continue
            value = results.ratio(target.case, target.figure, target.ratio_to, target.of)
        else:
            value = results.median(target.case, target.of, target.figure)
        met = not math.isnan(value) and target.compare(value, target.bound)
        name = target.figure + (f" / {target.ratio_to}" if target.ratio_to else "")
        if target.of != "chatd":
            name = f"{target.of}: {name}"
        verdict = "yes" if met else "NO"
        print(f"| {target.case} | {name} | {target.text} | {_format(value)} | {verdict} |")
        verdicts.append(
            {"case": target.case, "figure": name, "wanted": target.text, "measured": value}
            | {"met": met}
        )
    return verdicts


def chart(results: Results, chosen_peers: list[str], path: Path) -> bool:
    """Deliveries and round trips a second, and latency, per peer, as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("   (no chart: matplotlib is not installed; pip install -e '.[bench]')")
        return False
    panels = [
        ("deliveries a second (higher is better)", "deliveries_per_s",
         [c for c in results.runs if c.startswith("fanout ")]),
        ("round trips a second (higher is better)", "round_trips_per_s",
         [c for c in results.runs if c.startswith("pingpong")]),
        ("latency p99, ms, log scale (lower is better)", "p99_ms",
         [c for c in results.runs if c.startswith(("fanout", "pingpong"))]),
    ]  # fmt: skip
    panels = [panel for panel in panels if panel[2]]
    if not panels:  # nothing compared across servers (storage, room-fanout...)
        return False
    figure, axes = plt.subplots(
        1,
        len(panels),
        figsize=(14, 4.5),
        width_ratios=[len(p[2]) for p in panels],
        squeeze=False,
    )
    width = 0.8 / len(chosen_peers)
    for axis, (title, figure_name, cases) in zip(axes[0], panels, strict=True):
        for index, peer in enumerate(chosen_peers):
            xs = [i + index * width for i in range(len(cases))]
            values = [results.median(case, peer, figure_name) for case in cases]
            axis.bar(xs, values, width, label=peer)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
        axis.set_xticklabels(cases, fontsize=8)
        axis.set_title(title, fontsize=10)
        if figure_name == "p99_ms":
            axis.set_yscale("log")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        help="fanout fanout-rate pingpong room-fanout capacity logins storage migration"
        " fanout-irc pingpong-irc",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--runs", type=int, help="runs of each case (default 5; 1 with --quick)")
    parser.add_argument(
        "--peers",
        default="chatd,ngircd,floor",
        help="servers to compare: chatd, ngircd, floor, chatd@REVISION (an older chatd),"
        " chatd-pg and chatd-pg@REVISION (chatd on PostgreSQL)",
    )
    parser.add_argument(
        "--postgres",
        default=common.POSTGRES_URL,
        help="PostgreSQL server on which chatd-pg makes a database for each run, dropped"
        " after (default: $CHATD_BENCH_POSTGRES, else %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and chart go")
    parser.add_argument("--cache", type=Path, default=RESULTS, help="where generated databases go")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--replot", type=Path, help="only draw the chart again from a results JSON file"
    )
    options = parser.parse_args()
    if options.replot:
        saved = json.loads(options.replot.read_text())
        chart(Results(saved["results"]), saved["peers"], options.out / "chart.png")
        return
    runs = options.runs or (1 if options.quick else 5)
    chosen = [p for p in options.peers.split(",") if p]
    for name in list(chosen):
        if (why := peers.unavailable(name, options.postgres)) is not None:
            print(f"skipping {name}: {why}")
            chosen.remove(name)
    # Older builds are checked out and installed now, not between measurements.
    try:
        classes = {name: peers.peer_class(name, options.postgres) for name in chosen}
    except ValueError as exc:
        parser.error(str(exc))
    # chatd@REV and chatd-pg@REV are one build: one migration case
    baselines = list(
        dict.fromkeys(c.build for c in classes.values() if getattr(c, "build", None) is not None)
    )
    cases = [
        case
        for case in _cases(options.quick, _database(options.quick, options.cache), baselines)
        if not options.scenarios or case.scenario in options.scenarios
    ]

    scenarios.pin_self()
    scenarios.raise_open_files_limit()
    results = Results()
    for run in range(1, runs + 1):
        for case in cases:
            for name in (p for p in chosen if case.takes(p)):
                print(f"-- run {run}/{runs}: {case.scenario} {case.label} on {name}", flush=True)
                figures = case.run(classes[name])
                results.add(f"{case.scenario} {case.label}", name, figures)
                print(
                    "   " + ", ".join(f"{k} {_format(v)}" for k, v in figures.items()), flush=True
                )

    verdicts = report(results, chosen)
    options.out.mkdir(parents=True, exist_ok=True)
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "runs": runs,
        "quick": options.quick,
        "peers": chosen,
        "results": results.runs,
        "medians": {
            case: {
                peer: {f: results.median(case, peer, f) for f in runs_[0]}
                for peer, runs_ in by_peer.items()
            }
            for case, by_peer in results.runs.items()
        },
        "targets": verdicts,
    }
    text = json.dumps(document, indent=2)
    (options.out / "latest.json").write_text(text)
    (options.out / time.strftime("bench-%Y%m%d-%H%M%S.json")).write_text(text)
    if not options.no_chart and chart(results, chosen, options.out / "chart.png"):
        print(f"chart: {options.out / 'chart.png'}")
    print(f"results: {options.out / 'latest.json'}")


if __name__ == "__main__":
    sys.exit(main())
