"""Parallel extraction in a backfill shares one rate limiter per vendor account: Webtrekk never refuses a request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dlt

from pipelines.backfill import run_backfill
from pipelines.registry import vendor
from simulators.webtrekk import WebtrekkData, WebtrekkSimulator
from tests.support import environment
from tests.support.webtrekk import PAGES_ANALYSIS, make_env

LIMITS = [(5, 0.3), (12, 1.5)]  # the documented 5 / 10 s and 120 / 600 s, scaled down
LAST = dt.date(2026, 11, 20)


def test_parallel_backfill_windows_never_exceed_the_vendor_limits(tmp_path: Path) -> None:
    with WebtrekkSimulator(WebtrekkData(days=10, last_day=LAST), rate_limits=LIMITS) as simulator:
        env = make_env(
            simulator,
            LIMITS,
            export_types=["content_categories_time", "page_urls"],
            export_page_size=4000,
            analyses=[PAGES_ANALYSIS],
        )
        with environment(env):
            summary = run_backfill(
                vendor("webtrekk"),
                start=LAST - dt.timedelta(days=3),
                end=LAST,
                chunk="day",
                workers=4,
                resources="export_content_categories_time,analysis_pages,accounts",
                pipeline_name="limits",
                pipelines_dir=str(tmp_path / "pipelines"),
                progress="off",
                destination_config=dlt.destinations.duckdb(str(tmp_path / "load.duckdb")),
            )
        assert not summary.interrupted and summary.loaded == 4
        assert summary.rows["analysis_pages"] > 0 and summary.rows["export_content_categories_time"] > 0
        assert simulator.refusals == 0
        times = simulator.accepted_times()
        assert len(times) > 20  # enough requests that both windows were binding
        for requests, seconds in LIMITS:
            assert all(later - earlier >= seconds for earlier, later in zip(times, times[requests:], strict=False))
