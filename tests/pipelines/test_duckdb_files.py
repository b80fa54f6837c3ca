"""Living with a DuckDB file: a reader holding the lock, readers on a published copy, a file grown by merges."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.duckdb_files import compact
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.errors import ClickhaulError
from tests.support import Loader

LAST = dt.date(2024, 3, 31)


def simulator() -> PirschSimulator:
    return PirschSimulator(PirschData(days=45, last_day=LAST, sessions_per_day=(40, 50), paths=40))


def hold(database: Path, seconds: float, read_only: bool = False) -> subprocess.Popen[bytes]:
    """Another process with the file open (a notebook, a dashboard) for `seconds`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}, read_only={read_only}); "
            f"print('held', flush=True); time.sleep({seconds})",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    return holder


def test_a_locked_file_is_waited_for_then_named_with_its_holder(tmp_path: Path) -> None:
    with simulator() as sim:
        loader = Loader("pirsch", tmp_path, {**demo_plan(sim).env, "CLICKHAUL__LOCK_TIMEOUT": "1.5"})
        loader.run(LAST, LAST, resources="visitors")
        holder = hold(loader.database, 120)
        try:
            began = time.monotonic()
            with pytest.raises(ClickhaulError) as raised:
                loader.run(LAST - dt.timedelta(days=1), LAST - dt.timedelta(days=1), resources="visitors")
            assert time.monotonic() - began >= 1.5
            message = str(raised.value)
            assert str(loader.database) in message and f"process {holder.pid}" in message
            assert "--publish" in message
        finally:
            holder.kill()
            holder.wait()
        # a holder that lets go within the timeout only delays the load
        loader.env = {**loader.env, "CLICKHAUL__LOCK_TIMEOUT": "60"}
        short = hold(loader.database, 1.0)
        loader.run(LAST - dt.timedelta(days=1), LAST - dt.timedelta(days=1), resources="visitors")
        short.wait()
        assert loader.count("visitors") == 4


def test_readers_of_the_published_copy_never_block_a_load(tmp_path: Path) -> None:
    published = tmp_path / "published.duckdb"
    with simulator() as sim:
        loader = Loader("pirsch", tmp_path, demo_plan(sim).env)
        loader.run(LAST, LAST, resources="visitors", publish=str(published))
        reader = hold(published, 120, read_only=True)  # a dashboard keeps the published copy open
        try:
            loader.run(
                LAST - dt.timedelta(days=1), LAST - dt.timedelta(days=1), resources="visitors", publish=str(published)
            )
        finally:
            reader.kill()
            reader.wait()
        with duckdb.connect(str(published), read_only=True) as connection:
            assert connection.execute("select count(*) from pirsch.visitors").fetchone() == (4,)


def test_compact_keeps_a_file_of_daily_lookback_runs_near_a_fresh_load(tmp_path: Path) -> None:
    with simulator() as sim:
        daily = Loader("pirsch", tmp_path / "daily", demo_plan(sim).env)
        first = LAST - dt.timedelta(days=32)
        for day in range(30):  # 30 nightly runs, each re-reading a 3-day lookback
            end = first + dt.timedelta(days=day + 3)
            daily.run(end - dt.timedelta(days=3), end, resources="pages")
        fresh = Loader("pirsch", tmp_path / "fresh", demo_plan(sim).env)
        fresh.run(first, first + dt.timedelta(days=32), resources="pages")
        grown = daily.database.stat().st_size
        before, after = compact(daily.database)
        assert before >= grown
        assert daily.count("pages") == fresh.count("pages")
        assert after < grown  # merges left space behind, and the rewrite gave it back
        assert after <= 1.5 * fresh.database.stat().st_size, (grown, after, fresh.database.stat().st_size)
