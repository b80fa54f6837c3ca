"""The Analytics API resources of the webtrekk source, run into DuckDB against the simulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from simulators.webtrekk_analytics import WebtrekkAnalyticsSimulator
from sources.common.clock import today_utc
from sources.common.errors import AuthError, ClickhaulError
from tests.support import Loader, files_containing
from tests.support.retry import FAST_RETRY_ENV
from tests.support.webtrekk_analytics import BROWSER_OS_QUERY, METRICS, OCTOBER, make_env


def schema_columns(loader: Loader, table: str) -> dict[str, dict[str, Any]]:
    raw = loader.query("select schema from webtrekk._dlt_version order by inserted_at desc limit 1")[0][0]
    return json.loads(raw)["tables"][table]["columns"]  # type: ignore[no-any-return]


def expected_october(simulator: WebtrekkAnalyticsSimulator) -> list[tuple[Any, ...]]:
    rows = []
    day = OCTOBER[0]
    while day <= OCTOBER[1]:
        truth = simulator.truth(["browser_fullName", "os_vendor"], METRICS, [day])
        for (browser, os_vendor), sums in truth.items():
            figures = [None if sums[m] == 0 else round(float(sums[m]), 2) for m in METRICS]
            rows.append((day, day, browser, os_vendor, *figures))
        day += dt.timedelta(days=1)
    return sorted(rows)


def test_a_month_of_a_two_dimension_query_per_day_has_exact_figures_and_no_totals(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader()
    summary = run.run(*OCTOBER, resources="analytics_browsers")
    expected = expected_october(simulator)
    assert summary.rows == {"analytics_browsers": len(expected)} and len(expected) == 31 * 20
    rows = run.query(
        "select window_start, window_end, browser_full_name, os_vendor, visits, pages_page_impressions, "
        "round(order_value, 2) from webtrekk.analytics_browsers order by all"
    )
    assert rows == expected  # exact figures; subtotal and total rows (null dimensions) are gone
    # one calculation per day, each with a fixed time_range replacing the copied dynamic filter
    assert simulator.count("/analysis-query$", "POST") == 31
    first = sorted(simulator.created, key=lambda q: q["predefinedContainer"]["filters"][0]["value1"])[0]
    assert first["predefinedContainer"]["filters"] == [
        {"name": "time_range", "filterPredicate": "BETWEEN", "connector": "AND", "caseSensitive": False,
         "context": "NONE", "intern": False, "value1": "2026-10-01 00:00:00", "value2": "2026-10-02 00:00:00"}
    ]  # fmt: skip
    assert first["columns"] == BROWSER_OS_QUERY["columns"]  # everything else kept as copied
    columns = schema_columns(run, "analytics_browsers")
    assert {name: columns[name]["data_type"] for name in ("visits", "order_value", "os_vendor", "window_start")} == {
        "visits": "double",
        "order_value": "double",
        "os_vendor": "text",
        "window_start": "date",
    }
    assert columns["browser_full_name"]["description"] == "browser_fullName (Browser)"
    assert {n for n, c in columns.items() if c.get("primary_key")} == {
        "browser_full_name",
        "os_vendor",
        "window_start",
        "window_end",
        "account",  # every table's key carries the account (the implicit `default` here)
    }
    assert simulator.peak_running <= 2  # analytics_concurrency's default


def test_queued_calculations_are_polled_then_repeats_come_from_the_cache(
    simulator: WebtrekkAnalyticsSimulator, tmp_path: Any
) -> None:
    simulator.calculation_seconds = 0.4
    # the old hosts: the server's statusUrl/resultUrl name another host (localhost, /api/analytics); followed as is
    env = make_env(simulator, old_hosts=True)
    run = Loader("webtrekk", tmp_path, env)
    run.run("2026-10-05", "2026-10-06", resources="analytics_browsers")
    assert simulator.count("/analysis-query$", "POST", status=201) == 2
    assert {"INITIATED", "RUNNING", "SUCCESS"} <= set(simulator.served_states)
    assert simulator.served_states.count("SUCCESS") == 2  # each calculation polled until done, then fetched
    assert simulator.count("^/api/analytics/analysis-query/", "GET") == len(simulator.served_states)
    assert simulator.count("^/api/analytics/analysis-result/", "GET") == 2
    used = simulator.calculations_count
    polls = len(simulator.served_states)
    again = run.run("2026-10-05", "2026-10-06", resources="analytics_browsers")
    assert simulator.count("/analysis-query$", "POST", status=200) == 2  # answered from the cache at once
    assert simulator.calculations_count == used and len(simulator.served_states) == polls
    assert again.rows == {"analytics_browsers": 40} and run.count("analytics_browsers") == 40


def test_a_failed_calculation_ends_with_a_message_naming_query_and_window(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    simulator.fail_next(1)
    with pytest.raises(ClickhaulError) as raised:
        loader(analytics_concurrency=1).run("2026-10-03", "2026-10-04", resources="analytics_browsers")
    message = str(raised.value)
    assert "query 'browsers' for 2026-10-03" in message and "ended FAILED" in message


def test_an_unknown_object_name_is_named_in_the_error(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    query = json.loads(json.dumps(BROWSER_OS_QUERY))
    query["columns"][1]["name"] = "os_vendr"
    run = loader(analytics_queries=[{"name": "typo", "query": query}])
    with pytest.raises(ClickhaulError) as raised:
        run.run("2026-10-03", "2026-10-03", resources="analytics_typo")
    message = str(raised.value)
    assert "query 'typo' for 2026-10-03" in message and "UnmappedName (os_vendr)" in message
    assert simulator.calculations_count == 0


def test_token_expiry_mid_run_is_survived(simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]) -> None:
    simulator.expire_analytics_tokens_after(6)
    summary = loader().run("2026-10-01", "2026-10-06", resources="analytics_browsers")
    assert summary.rows == {"analytics_browsers": 120}
    assert simulator.count(status=403) >= 1  # INVALID_TOKEN, answered with 403 as the API does
    assert len(simulator.token_requests) == 2  # one new token, not one per failed request
    assert all(r == {"grant_type": "client_credentials"} for r in simulator.token_requests)  # no scope by default


def test_reruns_and_lookback_add_no_duplicates(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader()
    run.run("2026-10-01", "2026-10-05", resources="analytics_browsers")
    run.run("2026-10-03", "2026-10-08", resources="analytics_browsers")
    run.run("2026-10-01", "2026-10-08", resources="analytics_browsers")
    assert run.count("analytics_browsers") == 8 * 20
    assert (
        run.query("select count(*) from (select distinct * exclude (_dlt_load_id) from webtrekk.analytics_browsers)")[
            0
        ][0]
        == 8 * 20
    )


@pytest.mark.calendar
def test_incremental_runs_reload_the_lookback_days(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    today = today_utc()
    simulator.analytics.last_day = today  # traffic up to today for this test
    run = loader(start_date=(today - dt.timedelta(days=4)).isoformat(), lookback_days="2")
    try:
        run.run(resources="analytics_browsers")
        assert simulator.count("/analysis-query$", "POST") == 5
        rows = run.count("analytics_browsers")
        run.run(resources="analytics_browsers")
        assert simulator.count("/analysis-query$", "POST") == 5 + 3  # today and the 2 lookback days again
        assert run.count("analytics_browsers") == rows
    finally:
        simulator.analytics.last_day = dt.date(2026, 10, 31)


def test_metadata_and_report_resources(simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]) -> None:
    run = loader(analytics_reports=[{"name": "overview", "report": 1001}], analytics_language="de")
    summary = run.run("2026-10-02", "2026-10-03")
    assert summary.rows["analytics_query_objects"] == 9 and summary.rows["analytics_segments"] == 2
    assert summary.rows["analytics_dynamic_timefilters"] == 6
    assert run.query(
        "select data_type, title, mapping from webtrekk.analytics_query_objects where name = 'device_deviceClass'"
    ) == [("STRING", "Device Class", '{"0": "PC / Laptop", "1": "Smartphone", "2": "Tablet"}')]
    assert run.query("select title from webtrekk.analytics_query_objects where name = 'visits'") == [("Besuche",)]
    browsers = run.query(
        "select window_start, browser_full_name, visits from webtrekk.analytics_report_overview__element_11 "
        "order by all"
    )
    expected = sorted(
        (day, key[0], float(sums["visits"]))
        for day in (dt.date(2026, 10, 2), dt.date(2026, 10, 3))
        for key, sums in simulator.truth(["browser_fullName"], ["visits"], [day]).items()
    )
    assert browsers == expected
    kpi = run.query("select window_start, pages_page_impressions from webtrekk.analytics_report_overview__element_12")
    assert sorted(kpi) == [
        (day, float(simulator.truth([], ["pages_pageImpressions"], [day])[()]["pages_pageImpressions"]))
        for day in (dt.date(2026, 10, 2), dt.date(2026, 10, 3))
    ]


def test_scope_is_sent_only_when_configured(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    simulator.scope_policy = "reject"  # the new token endpoint
    with pytest.raises(AuthError) as raised:
        loader(analytics_scope="mapp.intelligence-api").run("2026-10-03", "2026-10-03", resources="analytics_browsers")
    assert "leave analytics_scope empty" in str(raised.value)
    simulator.scope_policy = "require"  # the old one
    loader("old", analytics_scope="mapp.intelligence-api").run(
        "2026-10-03", "2026-10-03", resources="analytics_browsers"
    )
    assert simulator.token_requests[-1] == {"grant_type": "client_credentials", "scope": "mapp.intelligence-api"}


def test_secrets_stay_out_of_logs_urls_and_the_database(
    simulator: WebtrekkAnalyticsSimulator,
    loader: Callable[..., Loader],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.expire_analytics_tokens_after(3)
    loader().run("2026-10-03", "2026-10-04")
    secret = simulator.analytics.client_secret
    tokens = list(simulator.tokens_api._tokens)
    assert len(tokens) == 2
    assert files_containing(tmp_path, [secret, *tokens]) == []
    assert not any(secret in record.getMessage() or any(t in record.getMessage() for t in tokens)
                   for record in caplog.records)  # fmt: skip
    assert all(secret not in json.dumps(r.query) for r in simulator.requests)
    assert "usage" in caplog.text and "calculations this month" in caplog.text  # the run reports its usage


def test_defining_the_source_makes_no_request(simulator: WebtrekkAnalyticsSimulator) -> None:
    from sources.common.config import environment
    from sources.webtrekk import webtrekk_source

    with environment(make_env(simulator)):
        source = webtrekk_source(start_date="2026-10-01", end_date="2026-10-02")
    assert set(source.resources) == {
        "analytics_query_objects",
        "analytics_segments",
        "analytics_dynamic_timefilters",
        "analytics_browsers",
    }
    assert simulator.requests == []


def test_a_month_survives_server_faults_with_the_same_figures(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    from simulators.harness import Faults

    simulator.set_faults(Faults.chaos(0.15, seed=11))
    run = loader(analytics_concurrency="4")
    run.env = {**run.env, **FAST_RETRY_ENV}
    run.run(*OCTOBER, resources="analytics_browsers")
    assert sum(1 for r in simulator.requests if r.fault) > 10
    rows = run.query(
        "select window_start, window_end, browser_full_name, os_vendor, visits, pages_page_impressions, "
        "round(order_value, 2) from webtrekk.analytics_browsers order by all"
    )
    assert rows == expected_october(simulator)


def test_a_failure_cancels_the_calculations_still_running(
    simulator: WebtrekkAnalyticsSimulator, loader: Callable[..., Loader]
) -> None:
    simulator.calculation_seconds, simulator.failing_seconds = 300.0, 0.05
    simulator.fail_next(1)  # the first window fails quickly while the second is still calculating
    # which of the two windows running at once gets the failing calculation is up to thread scheduling
    with pytest.raises(ClickhaulError, match=r"query 'browsers' for 2026-10-0[12]: calculation .* ended FAILED"):
        loader().run("2026-10-01", "2026-10-05", resources="analytics_browsers")
    assert simulator.calculations_count == 2 and len(simulator.cancelled) == 1
    assert simulator.running() == []


def test_the_token_is_renewed_shortly_before_it_expires(simulator: WebtrekkAnalyticsSimulator) -> None:
    from sources.common.clock import FakeClock
    from sources.webtrekk.analytics import AnalyticsClient

    clock = FakeClock(start=2_000_000_000.0)
    env = make_env(simulator)
    client = AnalyticsClient(
        env["SOURCES__WEBTREKK__ANALYTICS_BASE_URL"],
        env["SOURCES__WEBTREKK__ANALYTICS_TOKEN_URL"],
        simulator.analytics.client_id,
        simulator.analytics.client_secret,
        clock=clock,
    )
    try:
        client.usage()
        clock.advance(3000)  # 10 minutes left of the hour: the token is kept
        client.usage()
        assert len(simulator.token_requests) == 1
        clock.advance(541)  # less than a minute left: renewed before the API would refuse it
        client.usage()
        assert len(simulator.token_requests) == 2 and simulator.count(status=403) == 0
    finally:
        client.close()
