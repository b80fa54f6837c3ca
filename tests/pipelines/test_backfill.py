"""Backfills that survive SIGKILL, Ctrl-C and alternate safely with incremental runs (against the Pirsch simulator)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dlt
import pytest

from pipelines.backfill import run_backfill
from pipelines.registry import vendor
from simulators.harness import Faults
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.clock import today_utc
from tests.support import ROOT, Loader, environment, run_cli

LAST = dt.date(2024, 3, 31)
START = LAST - dt.timedelta(days=7)
RESOURCES = "visitors,pages,referrers"


def simulator() -> PirschSimulator:
    return PirschSimulator(PirschData(days=40, last_day=LAST, sessions_per_day=(60, 90), paths=60))


def env_for(sim: PirschSimulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **demo_plan(sim).env,
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "load.duckdb"),
        **extra,
    }


def journal(tmp_path: Path) -> dict:
    path = tmp_path / "dlt" / "pipelines" / "clickhaul_pirsch" / "clickhaul_journal.json"
    return json.loads(path.read_text()) if path.exists() else {}


def done_windows(tmp_path: Path) -> list[str]:
    backfills = journal(tmp_path).get("backfills", {})
    return next(iter(backfills.values()))["done"] if backfills else []


def table_rows(database: Path) -> dict[str, list[tuple]]:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as connection:
        return {
            table: connection.execute(f"select * exclude (_dlt_load_id) from pirsch.{table} order by all").fetchall()
            for table in ("visitors", "pages", "referrers")
        }


def backfill_args() -> list[str]:
    return [
        "backfill",
        "pirsch",
        "--start",
        START.isoformat(),
        "--end",
        LAST.isoformat(),
        "--resources",
        RESOURCES,
        "--progress",
        "log",
    ]


@pytest.mark.slow
def test_killed_backfill_resumes_without_gaps_duplicates_or_repeated_windows(tmp_path: Path) -> None:
    with simulator() as sim:
        reference = tmp_path / "reference"
        clean = run_cli(*backfill_args(), env=env_for(sim, reference), cwd=tmp_path)
        assert clean.returncode == 0, clean.stderr
        assert "complete: 8 windows" in clean.stdout

        killed = tmp_path / "killed"
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines", *backfill_args()],
            env={**os.environ, **env_for(sim, killed)},
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while len(done_windows(killed)) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        finished_before_kill = list(done_windows(killed))
        assert 3 <= len(finished_before_kill) < 8, "the kill must land mid-backfill"

        status = run_cli("status", "pirsch", env=env_for(sim, killed), cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert f"{len(finished_before_kill)}/8 windows done, interrupted" in status.stdout

        sim.clear_log()
        resumed = run_cli(*backfill_args(), env=env_for(sim, killed), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert f"{len(finished_before_kill)} already done" in resumed.stdout
        requested_days = {r.query["from"] for r in sim.requests if r.path.endswith("/statistics/page")}
        assert requested_days.isdisjoint(finished_before_kill), "finished windows were requested again"
        assert table_rows(killed / "load.duckdb") == table_rows(reference / "load.duckdb")

        status = run_cli("status", "pirsch", env=env_for(sim, killed), cwd=tmp_path)
        assert "8/8 windows done, finished" in status.stdout
        assert "pages" in status.stdout


@pytest.mark.calendar
def test_backfill_never_moves_the_incremental_cursor_back(tmp_path: Path) -> None:
    today = today_utc()
    data = PirschData(days=60, last_day=today, sessions_per_day=(30, 40), paths=20)
    with PirschSimulator(data) as sim:
        loader = Loader(
            "pirsch",
            tmp_path,
            {
                **demo_plan(sim).env,
                "SOURCES__PIRSCH__START_DATE": (today - dt.timedelta(days=5)).isoformat(),
                "SOURCES__PIRSCH__TIMEZONE": "UTC",
            },
        )
        loader.run(resources="pages")
        with environment(loader.env):
            summary = run_backfill(
                vendor("pirsch"),
                start=today - dt.timedelta(days=40),
                end=today - dt.timedelta(days=35),
                resources="pages",
                pipeline_name=loader.pipeline_name,
                pipelines_dir=str(loader.pipelines_dir),
                progress="off",
                destination_config=dlt.destinations.duckdb(str(loader.database)),
            )
        assert summary.windows == 6 and not summary.interrupted
        assert loader.query("select min(day) from pirsch.pages")[0][0] == today - dt.timedelta(days=40)
        sim.clear_log()
        loader.run(resources="pages")
        days = sorted({r.query["from"] for r in sim.requests if r.path.endswith("/statistics/page")})
        # the next incremental run starts from the lookback before today, not after the historic backfill
        assert days[0] == (today - dt.timedelta(days=3)).isoformat()


def test_backfill_bad_input(tmp_path: Path) -> None:
    with simulator() as sim:
        result = run_cli(
            "backfill",
            "pirsch",
            "--start",
            "2024-01-10",
            "--end",
            "2024-01-01",
            env=env_for(sim, tmp_path),
            cwd=tmp_path,
        )
        assert result.returncode == 1 and "before --start" in result.stderr
        result = run_cli(
            "backfill",
            "pirsch",
            "--start",
            "1900-01-01",
            "--end",
            "2024-01-01",
            env=env_for(sim, tmp_path),
            cwd=tmp_path,
        )
        assert result.returncode == 1 and "windows (limit" in result.stderr
        assert sim.count("") == 0


def test_ctrl_c_ends_within_2_s_and_the_same_command_continues(tmp_path: Path) -> None:
    with simulator() as sim:
        sim.set_faults(Faults(slow_rate=1.0, slow_seconds=0.05, exempt_paths=(r"/api/v1/token$",)))
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines", *backfill_args()],
            env={**os.environ, **env_for(sim, tmp_path)}, cwd=str(ROOT),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not done_windows(tmp_path) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        ended = time.monotonic() - sent
        assert process.returncode == 130, stderr[-2000:]
        assert ended < 2.0, f"ended {ended:.1f} s after Ctrl-C"
        finished = done_windows(tmp_path)
        assert 1 <= len(finished) < 8
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("interrupted: pirsch backfill stopped after"), stderr[-2000:]
        assert "of 8 windows" in last and last.endswith("run the same command to continue")
        assert "Traceback" not in stderr
        sim.set_faults(Faults(exempt_paths=(r"/api/v1/token$",)))
        resumed = run_cli(*backfill_args(), env=env_for(sim, tmp_path), cwd=tmp_path)
        assert resumed.returncode == 0 and f"{len(finished)} already done" in resumed.stdout
