"""The real `clickhaul` commands: a backfill interrupted with Ctrl-C, the quota check, validation, the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.webtrekk_analytics import WebtrekkAnalyticsSimulator
from sources.common.errors import ConfigError
from tests.support import ROOT, Loader, run_cli
from tests.support.webtrekk_analytics import BROWSER_OS_QUERY, make_env


def cli_env(simulator: WebtrekkAnalyticsSimulator, tmp_path: Path, **extra: Any) -> dict[str, str]:
    return {
        **make_env(simulator, **extra),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "load.duckdb"),
    }


def backfill(*extra: str) -> list[str]:
    return ["backfill", "webtrekk", "--resources", "analytics_browsers", "--progress", "log", *extra]


def test_ctrl_c_during_a_backfill_cancels_the_running_calculations(
    simulator: WebtrekkAnalyticsSimulator, tmp_path: Path
) -> None:
    simulator.calculation_seconds = 300.0  # nothing finishes on its own during this test
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines",
            *backfill("--start", "2026-10-01", "--end", "2026-10-10", "--chunk", "month"),
        ],
        env={**os.environ, **cli_env(simulator, tmp_path)},
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(simulator.running()) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    running = simulator.running()
    assert len(running) == 2, "two windows calculate at once (analytics_concurrency = 2)"
    # Ctrl-C: the first asks the backfill to stop after the window, the next aborts the window in flight
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    assert sorted(simulator.cancelled) == sorted(running), stderr
    assert simulator.running() == []
    assert simulator.count("/analysis-query/", "DELETE") == 2
    assert "cancelled 2 running calculation(s)" in stderr


def test_a_backfill_that_would_exceed_the_quota_is_refused_before_any_calculation(
    simulator: WebtrekkAnalyticsSimulator, tmp_path: Path
) -> None:
    simulator.max_calculations, simulator.calculations_count = 12, 5
    refused = run_cli(*backfill("--start", "2026-10-01", "--end", "2026-10-10"), env=cli_env(simulator, tmp_path))
    assert refused.returncode == 1
    assert "needs up to 10 calculations" in refused.stderr and "only 7 of the month's 12 remain" in refused.stderr
    assert "--force" in refused.stderr
    assert simulator.count("/analysis-query") == 0 and simulator.calculations_count == 5

    fits = run_cli(*backfill("--start", "2026-10-01", "--end", "2026-10-03"), env=cli_env(simulator, tmp_path))
    assert fits.returncode == 0, fits.stderr
    assert "5 of 12 calculations this month; this backfill needs up to 3 (7 remain)" in fits.stderr
    assert "8 of 12 calculations this month" in fits.stderr  # the usage after the run
    assert simulator.calculations_count == 8

    forced = run_cli(
        *backfill("--start", "2026-10-04", "--end", "2026-10-10", "--force"), env=cli_env(simulator, tmp_path / "f")
    )
    # --force skips the check; the server then stops at its own limit, and the error says so
    assert forced.returncode == 1 and "Monthly analysis limit reached" in forced.stderr
    assert simulator.calculations_count == 12


BAD_QUERIES: list[tuple[Any, str]] = [
    ({"name": "q", "query": {"variant": "LIST"}}, "has no columns"),
    ({"name": "q", "query": {"columns": [{"scope": "OBJECT"}]}}, "every column needs a name"),
    ({"name": "q", "query": {"columns": [{"name": "visits"}], "variant": "TABLE"}}, "variant 'TABLE' is not one of"),
    ({"name": "q", "query": {"columns": [{"name": "visits", "upperLimit": "ten"}]}}, "upperLimit must be a whole"),
    (
        {"name": "q", "query": {"columns": [{"name": "visits"}], "predefinedContainer": {"filters": [{"name": "x"}]}}},
        "filterPredicate must be one of",
    ),
    ({"name": "q", "query": "{not json"}, "is not valid JSON"),
    ({"name": "q", "querry": {"columns": [{"name": "visits"}]}}, "unknown key(s) querry"),
    ({"name": "Bad Name", "query": {"columns": [{"name": "visits"}]}}, "must be lower-case"),
]


@pytest.mark.parametrize(("entry", "message"), BAD_QUERIES)
def test_bad_queries_are_refused_before_any_request(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader], entry: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        loader(analytics_queries=[entry]).run("2026-10-01", "2026-10-01")
    assert message in str(raised.value) and "analytics_queries" in str(raised.value)
    assert simulator.requests == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"analytics_client_secret": ""}, "analytics_client_secret is not set"),
        ({"analytics_concurrency": "0"}, "analytics_concurrency must be a positive number"),
        ({"analytics_window": "hour"}, "analytics_window 'hour' is unknown"),
        ({"analytics_reports": [{"name": "r", "report": 1, "element": [1]}]}, "unknown key(s) element"),
        ({"analytics_base_url": "http://api.mapp.com/api/analytics"}, "uses plain HTTP"),
    ],
)
def test_bad_settings_are_refused_before_any_request(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        loader(**extra).run("2026-10-01", "2026-10-01")
    assert message in str(raised.value)
    assert simulator.requests == []


def test_demo_runs_both_apis_on_one_simulator(tmp_path: Path) -> None:
    from simulators.webtrekk_analytics import WebtrekkDemoSimulator, demo_plan

    with WebtrekkDemoSimulator() as simulator:
        simulator.set_rate_limits([(1000, 1.0), (20000, 60.0)])
        simulator.calculation_seconds = 0.05
        plan = demo_plan(simulator)
        env = {**plan.env, "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([[1000, 1.0], [20000, 60.0]])}
        summary = Loader("webtrekk", tmp_path, env).run(plan.start, plan.end, source_kwargs=plan.source_kwargs)
    assert summary.rows["export_content_categories"] == 25_500  # JSON-RPC
    assert summary.rows["analytics_browsers_daily"] == 5  # Analytics API: one day x 5 browsers
    assert BROWSER_OS_QUERY  # the conftest query is the UI-shaped one the docs show


def test_check_proves_the_analytics_credentials(simulator: WebtrekkAnalyticsSimulator, tmp_path: Path) -> None:
    result = run_cli("check", "webtrekk", env=cli_env(simulator, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "token accepted for client clickhaul-demo-client" in result.stdout
    assert "0 of 310,000 calculations this month" in result.stdout
    bad = run_cli(
        "check",
        "webtrekk",
        env={**cli_env(simulator, tmp_path), "SOURCES__WEBTREKK__ANALYTICS_CLIENT_SECRET": "wrong-secret-4711"},
    )
    assert bad.returncode == 1 and "refused client id 'clickhaul-demo-client'" in bad.stderr
    assert "wrong-secret-4711" not in bad.stderr + bad.stdout
