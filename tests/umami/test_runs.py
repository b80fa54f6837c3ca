"""How runs behave: re-login on 401, unknown websites, Umami Cloud's key and rate limit, idempotent and
incremental re-runs, faults, secrets, bad configuration, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipelines.registry import VENDORS
from simulators.harness import Faults
from simulators.registry import VENDORS as SIMULATED
from simulators.umami import DEMO_API_KEY, DEMO_PASSWORD, UmamiSimulator
from sources.common.clock import FakeClock, today_in
from sources.common.errors import AuthError, ConfigError, TransientError
from sources.common.http import RetryPolicy
from sources.umami.client import UmamiClient
from tests.support import files_containing, run_cli
from tests.support.retry import FAST_RETRY_ENV
from tests.support.umami import TODAY, TZ, bounds, loader, small_data, start

DAYS = (TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=2))


def stats_match_truth(sim: UmamiSimulator, rows: list[tuple[Any, ...]]) -> bool:
    (website,) = sim.website_ids
    return all(tuple(row[1:]) == tuple(sim.stats_truth(website, *bounds(row[0])).values()) for row in rows)


STATS_SQL = "select day, pageviews, visitors, visits, bounces, totaltime from umami.website_stats order by day"


def test_401_mid_run_logs_in_again_once(simulator: UmamiSimulator, tmp_path: Path) -> None:
    simulator.expire_tokens_after = 12  # every token dies once, while parallel resources are reading
    load = loader(simulator, tmp_path)
    load.run(*DAYS, resources="website_stats,metrics,sessions")
    assert simulator.logins == 2
    assert simulator.count("", status=401) >= 1
    assert load.count("website_stats") == 3 and stats_match_truth(simulator, load.query(STATS_SQL))


def test_unknown_website_id_is_a_clear_error_before_any_data_request(tmp_path: Path) -> None:
    viewer = "viewer-password-5d2e"
    sim = start(users={"admin": DEMO_PASSWORD, "viewer": viewer}, roles={"viewer": "user"})
    unknown = "0d431edf-c33f-40a1-adf6-32da1b020a69"
    try:
        # an admin asks: Umami answers `null` for a website it does not have
        with pytest.raises(ConfigError, match=rf"unknown umami website id {unknown} in sources\.umami\.website_ids"):
            loader(sim, tmp_path, SOURCES__UMAMI__WEBSITE_IDS=unknown).run(*DAYS)
        assert sim.count(r"/stats|/metrics|/events|/sessions|/reports") == 0
        # not a UUID: refused before any request (Umami itself would fail with HTTP 500)
        sim.clear_log()
        with pytest.raises(ConfigError, match=r"'0000-nope' is not an Umami website id"):
            loader(sim, tmp_path / "other", SOURCES__UMAMI__WEBSITE_IDS="0000-nope").run(*DAYS)
        assert sim.requests == []
        # a user who may not view it reads it directly: an AuthError naming endpoint, website and version
        client = UmamiClient(sim.url, username="viewer", password=viewer, api_version="3")
        with pytest.raises(AuthError, match=rf"refused stats for website {unknown} on Umami 3"):
            client.stats(unknown, {"startAt": 0, "endAt": 1})
        client.close()
    finally:
        sim.stop()


def test_cloud_mode_sends_the_key_and_stays_under_the_rate_limit(tmp_path: Path) -> None:
    # the real limit is 50 calls / 15 s; scaled down here so the test is quick, enforced by the simulator
    sim = start(version="3", cloud=True, rate_limit=(20, 1.0))
    try:
        load = loader(sim, tmp_path, SOURCES__UMAMI__RATE_LIMITS="[[20, 1.0]]")
        summary = load.run(*DAYS, resources="websites,website_stats,pageviews,metrics")
        assert summary.requests > 60  # well over one window's worth
        assert sim.rate_refusals == 0 and sim.count("", status=429) == 0
        assert sim.count("", status=401) == 0 and sim.count(r"/auth/login") == 0  # the key, never a login
        assert all(r.path.startswith("/v1/") for r in sim.requests)
        assert stats_match_truth(sim, load.query(STATS_SQL))
        assert files_containing(tmp_path, [DEMO_API_KEY]) == []
    finally:
        sim.stop()


def test_cloud_limiter_keeps_the_real_50_per_15_seconds() -> None:
    clock = FakeClock()
    sim = start(version="3", cloud=True, monotonic=clock.monotonic)  # the real 50 / 15 s, on a fake clock
    try:
        client = UmamiClient(
            sim.url + "/v1", api_key=DEMO_API_KEY, api_version="3", clock=clock, retry=RetryPolicy(max_attempts=1)
        )
        (website,) = sim.website_ids
        for _ in range(160):
            client.stats(website, {"startAt": 0, "endAt": 1})
        client.close()
        assert sim.rate_refusals == 0
        assert sum(clock.sleeps) >= 3 * 15  # 160 calls need at least four windows
    finally:
        sim.stop()


@pytest.mark.calendar  # the simulator's traffic ends today
def test_reruns_add_no_duplicates_and_incremental_runs_continue(
    simulator: UmamiSimulator, version: str, tmp_path: Path
) -> None:
    resources = "websites,website_stats,pageviews,metrics,sessions,events,event_data,reports,report_funnel"
    load = loader(simulator, tmp_path)
    load.run(*DAYS, resources=resources)
    tables = ["websites", "website_stats", "pageviews", "metrics", "sessions", "events", "reports", "report_funnel"]
    if version == "3":
        tables.append("event_data")
    first = {table: load.count(table) for table in tables}
    assert all(first.values()), first
    load.run(*DAYS, resources=resources)
    assert {table: load.count(table) for table in tables} == first

    # incremental: from start_date to today, then again (the lookback re-reads, merge keeps one row each)
    incremental = loader(simulator, tmp_path / "inc", SOURCES__UMAMI__START_DATE=DAYS[0].isoformat())
    incremental.run(resources="website_stats,metrics,events")
    again = incremental.run(resources="website_stats,metrics,events")
    assert incremental.count("website_stats") == (today_in(TZ) - DAYS[0]).days + 1
    assert set(again.rows) <= {"website_stats", "metrics", "events"}
    assert incremental.query("select min(day) from umami.website_stats where day >= ?", [DAYS[0]]) == [(DAYS[0],)]
    assert incremental.query("select count(*) - count(distinct id) from umami.events") == [(0,)]
    assert incremental.count("website_stats", f"day <= '{DAYS[1]}'") == 3

    token_values = list(simulator.tokens._tokens)
    assert files_containing(tmp_path, [DEMO_PASSWORD, *token_values]) == []


def test_survives_faults(tmp_path: Path) -> None:
    sim = start(version="3", faults=Faults.chaos(0.15, seed=3, exempt_paths=(r"/auth/login$",)))
    try:
        load = loader(sim, tmp_path)
        summary = load.run(*DAYS, resources="website_stats,metrics,events,report_retention")
        assert summary.retries > 0
        assert stats_match_truth(sim, load.query(STATS_SQL))
        (website,) = sim.website_ids
        truth = sum(len(sim.event_rows(website, *bounds(DAYS[0] + dt.timedelta(days=i)))) for i in range(3))
        assert load.count("events") == truth
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SOURCES__UMAMI__BASE_URL": ""}, "base_url is not set"),
        ({"SOURCES__UMAMI__PASSWORD": ""}, "password not set"),
        ({"SOURCES__UMAMI__API_KEY": "some-cloud-key"}, "either api_key"),
        ({"SOURCES__UMAMI__API_VERSION": "4"}, "api_version '4' is invalid"),
        ({"SOURCES__UMAMI__TIMEZONE": "Mars/Olympus"}, "not an IANA timezone"),
        ({"SOURCES__UMAMI__REPORT_WINDOW": "year"}, "report_window 'year'"),
        ({"SOURCES__UMAMI__REPORTS": json.dumps([{"type": "heatmap", "name": "x"}])}, "unknown report type"),
        ({"SOURCES__UMAMI__RATE_LIMITS": "[[50]]"}, "rate_limits entry"),
        ({"SOURCES__UMAMI__BASE_URL": "http://umami.example.com"}, "plain HTTP"),
    ],
)
def test_bad_configuration_is_one_clear_error_before_any_request(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    sim = start()
    try:
        with pytest.raises(ConfigError, match=message):
            loader(sim, tmp_path, **env).run(*DAYS)
        assert sim.requests == []
    finally:
        sim.stop()


def test_wrong_password_is_an_auth_error(tmp_path: Path) -> None:
    sim = start()
    try:
        with pytest.raises(AuthError, match=r"refused sources\.umami\.username/password") as caught:
            loader(sim, tmp_path, SOURCES__UMAMI__PASSWORD="wrong-password-123").run(*DAYS)
        assert "wrong-password-123" not in str(caught.value)
        assert sim.count(r"/auth/login") == 1
    finally:
        sim.stop()


def test_cli_check_detects_the_version_and_umami_joins_the_demo(version: str) -> None:
    sim = start(version=version, data=small_data(websites=2))
    try:
        env = {**loader(sim, Path(".")).env, **FAST_RETRY_ENV}
        result = run_cli("check", "umami", env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"umami {version} at {sim.url}" in result.stdout and "2 website(s)" in result.stdout
        assert DEMO_PASSWORD not in result.stdout + result.stderr
    finally:
        sim.stop()
    spec = VENDORS["umami"]
    assert "umami" in SIMULATED and "report_funnel" in spec.resources


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("2", "steps: Array must contain at least 2 element(s)"),
        ("3", "Bad request: parameters.steps: Too small: expected array to have >=2 items (bad-request)"),
    ],
)
def test_an_error_from_umami_is_one_line_naming_report_website_and_version(
    version: str, said: str, tmp_path: Path
) -> None:
    sim = start(version=version)
    try:
        (website,) = sim.website_ids
        declared = [
            {
                "type": "funnel",
                "name": "One step",
                "parameters": {"window": 60, "steps": [{"type": "event", "value": "signup"}]},
            }
        ]
        env = {
            **loader(sim, tmp_path).env,
            "SOURCES__UMAMI__REPORTS": json.dumps(declared),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
        }
        result = run_cli(
            "run", "umami", "--start", DAYS[0].isoformat(), "--end", DAYS[0].isoformat(),
            "--resources", "report_funnel", "--progress", "off", env=env, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"error: umami error: report funnel 'One step' for website {website} on Umami {version}: {said} (HTTP 400)"
        ]
        assert sim.count(r"/reports/funnel$", status=400) == 1  # said once: a 400 is not retried
    finally:
        sim.stop()


def test_an_endpoint_that_keeps_failing_is_one_line_naming_it(tmp_path: Path) -> None:
    sim = start(version="3", faults=Faults(error_rate=1.0, exempt_paths=(r"/auth/login$", r"/websites$")))
    try:
        (website,) = sim.website_ids
        load = loader(sim, tmp_path, SOURCES__UMAMI__API_VERSION="3", CLICKHAUL_RETRY_MAX_ATTEMPTS="2")
        with pytest.raises(TransientError) as failed:
            load.run(*DAYS, resources="website_stats")
        message = str(failed.value)
        assert re.fullmatch(
            rf"umami: stats for website {website} on Umami 3: gave up on http://127\.0\.0\.1:\d+ after \d+ s of "
            r"retries \(HTTP 50\d: simulated server error\); CLICKHAUL_RETRY_MAX_ELAPSED_SECONDS and "
            r"CLICKHAUL_RETRY_MAX_ATTEMPTS set the patience",
            message,
        ), message
    finally:
        sim.stop()
