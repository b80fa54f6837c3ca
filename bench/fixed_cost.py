"""The fixed cost of a run: whole `clickhaul` commands as a user starts them, process start included.

- `clickhaul --help` and `clickhaul status` (over the loaded pipelines of every vendor);
- a no-change daily run of each vendor (history loaded, then the same day again), split into its phases, and the
  wall time beyond the time its requests were on the wire; beside it, the same days loaded as if the vendor had
  restated every one of them (a fixed range over the lookback: nothing is left out as unchanged);
- Opentracker sessions loaded by one command, against the ceiling (the same windows fetched and parsed, nothing
  loaded), as an independent harness measured it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from simulators.harness import served

from . import incremental, opentracker
from .measure import Measure, median_of_pairs


def clickhaul_command() -> list[str]:
    script = Path(sys.executable).with_name("clickhaul")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipelines"]


def run(args: list[str], workdir: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """One command, timed from outside: interpreter start, imports, work and exit. Python caches the compiled
    modules as on a user's machine (a sandbox's PYTHONDONTWRITEBYTECODE would compile clickhaul at every start)."""
    workdir.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "DLT_DATA_DIR": str(workdir / "dlt"), **(env or {})}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.monotonic()
    done = subprocess.run(
        [*clickhaul_command(), *args], cwd=workdir, env=environment, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"clickhaul {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def last_success(workdir: Path, vendor: str) -> dict[str, Any]:
    journal = workdir / "dlt" / "pipelines" / f"clickhaul_{vendor}" / "clickhaul_journal.json"
    return dict(json.loads(journal.read_text())["last_success"])


def daily_run(vendor: str, workdir: Path, repeats: int) -> dict[str, Any]:
    """History first, then `repeats` runs of the same day, and `repeats` of the lookback days restated; the median
    run's phases of each."""
    server, env, resources = incremental.SOURCES[vendor]()
    try:
        env = incremental.scheduled(vendor, env)
        args = ["run", vendor, "--progress", "off", *(["--resources", resources] if resources else [])]
        run(args, workdir, env)
        no_change = median_run([timed_run(vendor, args, workdir, env) for _ in range(repeats)])
        lookback = [
            "--start",
            str(incremental.TODAY - dt.timedelta(days=incremental.LOOKBACK_DAYS)),
            "--end",
            str(incremental.TODAY),
        ]
        restated = median_run([timed_run(vendor, [*args, *lookback], workdir, env) for _ in range(repeats)])
        return {**no_change, "restated": restated}
    finally:
        server.stop()


def timed_run(vendor: str, args: list[str], workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    wall, _ = run(args, workdir, env)
    success = last_success(workdir, vendor)
    phases = {name: round(seconds, 3) for name, seconds in success["phases"].items()}
    phases["interpreter"] = round(max(0.0, wall - sum(success["phases"].values())), 3)
    return {
        "wall": round(wall, 3),
        "request_seconds": round(success["request_seconds"], 3),
        "requests": success["requests"],
        "rows": sum(success["rows"].values()),
        "beyond_requests": round(wall - success["request_seconds"], 3),
        "phases": phases,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    median = sorted(runs, key=lambda entry: entry["beyond_requests"])[len(runs) // 2]
    return {**median, "runs": [entry["wall"] for entry in runs]}


def cli_start(workdir: Path, repeats: int = 5) -> dict[str, Any]:
    """`--help` and `status` over whatever pipelines `workdir` holds: the median of `repeats` runs each."""
    figures = {}
    for name, args in (("help", ["--help"]), ("status", ["status"])):
        walls = [run(args, workdir)[0] for _ in range(repeats)]
        figures[name] = {"seconds": round(statistics.median(walls), 3), "runs": [round(w, 3) for w in walls]}
    return figures


def opentracker_command(workdir: Path, sessions: int, repeats: int) -> dict[str, Any]:
    """The whole command against the ceiling, in turn (ceiling, command, ceiling, command...): the figure is the
    median of the pairs' ratios, the machine's drift between runs cancelling out."""
    first, last = opentracker.days_of(sessions)
    journals: dict[int, dict[str, Any]] = {}  # each command's last success, by run

    def command(url: str) -> Measure:
        here = workdir / f"run-{len(journals)}"
        args = ["run", "opentracker", "--start", str(first), "--end", str(last)]
        wall, _ = run([*args, "--resources", "sessions", "--progress", "off"], here, opentracker.env(url))
        success = journals[len(journals)] = last_success(here, "opentracker")
        return Measure(sum(success["rows"].values()), wall, success["requests"])

    with served(lambda: opentracker.simulator(sessions)) as url:
        opentracker.ceiling(url, sessions)  # untimed: fills the simulator's caches
        ceiling, ours, of_ceiling = median_of_pairs(
            lambda: opentracker.ceiling(url, sessions), lambda: command(url), budget_seconds=1e9, max_pairs=repeats
        )
    success = journals[ours.runs.index(round(ours.seconds, 3))]
    phases = {name: round(seconds, 3) for name, seconds in success["phases"].items()}
    phases["interpreter"] = round(max(0.0, ours.seconds - sum(phases.values())), 3)
    return {
        "sessions": ours.rows,
        "seconds": round(ours.seconds, 3),
        "rows_per_second": round(ours.rows_per_second),
        "request_seconds": round(success["request_seconds"], 3),
        "phases": phases,
        "runs": ours.runs,
        "ceiling_seconds": round(ceiling.seconds, 3),
        "ceiling_runs": ceiling.runs,
        # the same windows in both: the ratio of times (rows/s would count the sessions served twice against us)
        "of_ceiling": round(of_ceiling, 3),
    }
