"""A DuckDB file another process holds: every command that reads or writes the warehouse, in every mode (an
incremental run too), waits the configured time, then ends with the same one line naming the file and its holder;
`status` says it in whole words."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.support import run_cli

from .test_duckdb_files import hold

LAST = dt.date(2024, 3, 31)
DAY = LAST.isoformat()
WAIT = 1.5

COMMANDS: dict[str, list[str]] = {
    "run incremental": ["run", "pirsch", "--resources", "visitors", "--progress", "off"],
    "run range": ["run", "pirsch", "--start", DAY, "--end", DAY, "--resources", "visitors", "--progress", "off"],
    "backfill": ["backfill", "pirsch", "--start", DAY, "--end", DAY, "--resources", "visitors", "--progress", "off"],
    "compact": ["compact", "pirsch"],
    "dbt build": ["dbt", "build"],
    "report": ["report", "--out", "report.html"],
    "push matomo": ["push", "matomo", "--table", "pirsch.visitors", "--progress", "off"],
    "push webtrekk": ["push", "webtrekk", "--table", "pirsch.visitors", "--upload-type", "content_categories"],
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """One warehouse with a first load in it: `clickhaul run` through the configured credentials."""
    folder = tmp_path_factory.mktemp("locked")
    simulator = PirschSimulator(PirschData(days=10, last_day=LAST, sessions_per_day=(20, 30), paths=20))
    simulator.start()
    env = {
        **demo_plan(simulator).env,
        "DLT_DATA_DIR": str(folder / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": "warehouse.duckdb",
        "CLICKHAUL__LOCK_TIMEOUT": str(WAIT),
        "DESTINATION__MATOMO__TRACKING_URL": "http://127.0.0.1:9/matomo.php",
        "SOURCES__WEBTREKK__CUSTOMER_ID": "1",
        "SOURCES__WEBTREKK__LOGIN": "l",
        "SOURCES__WEBTREKK__PASSWORD": "p",
        "SOURCES__WEBTREKK__BASE_URL": "http://127.0.0.1:9/cgi-bin/wt/JSONRPC.cgi",
    }
    first = run_cli("run", "pirsch", "--start", DAY, "--end", DAY, "--resources", "visitors", env=env, cwd=folder)
    assert first.returncode == 0, first.stderr
    yield folder, env
    simulator.stop()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_waits_then_names_the_holder_in_one_line(
    command: str, loaded: tuple[Path, dict[str, str]]
) -> None:
    folder, env = loaded
    database = folder / "warehouse.duckdb"
    holder = hold(database, 120)
    try:
        began = time.monotonic()
        result = run_cli(*COMMANDS[command], env=env, cwd=folder, timeout=120)
        took = time.monotonic() - began
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1, result.stdout + result.stderr
    assert took >= WAIT
    assert "Traceback" not in result.stderr
    waiting, *rest = result.stderr.strip().splitlines()
    assert f"{database} is locked by process {holder.pid}" in waiting and "waiting up to 1.5 s" in waiting
    assert len(rest) == 1, result.stderr  # then one line: no traceback, no second message
    assert rest[0].startswith(f"error: {database} is locked by process {holder.pid}"), rest[0]
    assert rest[0].endswith("wait longer with CLICKHAUL__LOCK_TIMEOUT"), rest[0]


def test_status_says_the_lock_in_whole_words(loaded: tuple[Path, dict[str, str]]) -> None:
    folder, env = loaded
    database = folder / "warehouse.duckdb"
    holder = hold(database, 120)
    try:
        result = run_cli("status", "pirsch", env=env, cwd=folder, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("rows:"))
    assert f"{database} is locked by process {holder.pid}" in line
    assert line.endswith("wait longer with CLICKHAUL__LOCK_TIMEOUT)"), line


def test_a_holder_that_lets_go_in_time_only_delays_the_run(loaded: tuple[Path, dict[str, str]]) -> None:
    folder, env = loaded
    holder = hold(folder / "warehouse.duckdb", 1.0)
    result = run_cli(*COMMANDS["run range"], env={**env, "CLICKHAUL__LOCK_TIMEOUT": "60"}, cwd=folder, timeout=120)
    holder.wait()
    assert result.returncode == 0, result.stderr
