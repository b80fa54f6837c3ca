"""`run --full-refresh` as dlt users know it: the source's tables and state are dropped and the run reloads from
`start_date`; on a terminal it asks first, elsewhere it needs --yes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.support import run_cli

from .terminal import run_in_terminal

LAST = dt.date(2024, 3, 31)
START_DATE = dt.date(2024, 3, 28)  # the configured first day of incremental runs


def days(database: Path) -> list[dt.date]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute("select distinct day from pirsch.visitors order by 1").fetchall()
    return [row[0] for row in rows]


def test_full_refresh_drops_tables_and_state_and_reloads_from_start_date(tmp_path: Path) -> None:
    with PirschSimulator(PirschData(days=20, last_day=LAST, sessions_per_day=(20, 30), paths=20)) as simulator:
        env = {
            **demo_plan(simulator).env,
            "SOURCES__PIRSCH__TIMEZONE": "UTC",
            "SOURCES__PIRSCH__START_DATE": START_DATE.isoformat(),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            "CLICKHAUL_TODAY": (LAST + dt.timedelta(days=1)).isoformat(),  # incremental runs end on April 1st
        }
        database = tmp_path / "clickhaul_pirsch.duckdb"
        early = ["--start", "2024-03-20", "--end", "2024-03-22"]
        assert run_cli("run", "pirsch", *early, "--resources", "visitors", env=env, cwd=tmp_path).returncode == 0
        loaded = days(database)
        assert loaded == [dt.date(2024, 3, day) for day in (20, 21, 22)]

        # no terminal to ask on: refused without --yes, nothing dropped
        refused = run_cli("run", "pirsch", "--full-refresh", "--resources", "visitors", env=env, cwd=tmp_path)
        assert refused.returncode == 1
        assert "--yes" in refused.stderr and "nothing was dropped" in refused.stderr
        assert str(database) in refused.stderr
        # on a terminal it asks; "n" keeps everything
        status, screen = run_in_terminal(
            ["run", "pirsch", "--full-refresh", "--resources", "visitors"], env, tmp_path, answer="n"
        )
        assert status == 1 and b"Continue? [y/N]" in screen and b"not confirmed" in screen
        assert days(database) == loaded

        refreshed = run_cli(
            "run", "pirsch", "--full-refresh", "--yes", "--resources", "visitors", env=env, cwd=tmp_path
        )
        assert refreshed.returncode == 0, refreshed.stderr
        expected = [START_DATE + dt.timedelta(days=offset) for offset in range(5)]  # March 28 .. April 1
        assert days(database) == expected  # the earlier days are gone with the dropped table

        # the state was reset with the tables: the next incremental run continues from the new cursor
        again = run_cli("run", "pirsch", "--resources", "visitors", env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert days(database) == expected
