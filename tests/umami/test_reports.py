"""Every report type, saved in Umami or declared in config, lands in its own typed table with its window."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from simulators.umami import UmamiSimulator
from sources.umami.settings import REPORT_TYPES, ApiVersion
from tests.support.umami import TODAY, TZ, bounds, loader, start


def test_every_report_type_lands_typed_with_its_window(
    simulator: UmamiSimulator, version: ApiVersion, tmp_path: Path
) -> None:
    step = "url" if version == "2" else "path"
    declared: list[dict[str, Any]] = [
        {
            "type": "funnel",
            "name": "Docs funnel",
            "parameters": {"window": 30, "steps": [{"type": step, "value": "/"}, {"type": step, "value": "/docs"}]},
        }
    ]
    first, last = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)
    tables = ["reports", *(r.table for r in REPORT_TYPES)]
    load = loader(simulator, tmp_path, SOURCES__UMAMI__REPORTS=json.dumps(declared))
    load.run(first, last, resources=",".join(tables))
    (website,) = simulator.website_ids
    saved = simulator.saved_reports(website)

    expected = {r.table for r in REPORT_TYPES if r.api_name(version)}  # Umami 2 has no performance report
    assert expected <= load.tables()
    assert ("report_performance" in load.tables()) == (version == "3")
    assert load.count("reports") == len(saved) + 1
    assert load.count("reports", "source = 'config' and type = 'funnel'") == 1

    for table in expected:
        windows = load.query(f"select distinct window_start, window_end, timezone from umami.{table} order by 1")
        assert windows == [(first, first, TZ), (last, last, TZ)], table
        assert load.count(table, "report_id is null or report_name is null or website_id is null") == 0

    types = dict(
        load.query(
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_schema = 'umami' and table_name like 'report_%'"
        )
    )
    assert types["report_funnel.visitors"] == "BIGINT" and types["report_funnel.dropoff"] == "DOUBLE"
    assert types["report_retention.date"] == "DATE" and types["report_revenue.t"].startswith("TIMESTAMP")
    assert types["report_breakdown.views"] == "BIGINT"  # Umami 3.1 sends these counts as strings
    assert types["report_attribution.value"] == "BIGINT" and types["report_utm.views"] == "BIGINT"

    # the saved funnel and the declared one, for one day, as the server computes them
    begin, end = bounds(first)
    from zoneinfo import ZoneInfo

    funnel = next(r for r in saved if r["type"] == "funnel")
    parameters = json.loads(funnel["parameters"]) if version == "2" else funnel["parameters"]
    truth = simulator.report_truth("funnel", website, begin, end, ZoneInfo(TZ), parameters)
    rows = load.query(
        "select step, step_value, visitors, dropped from umami.report_funnel where report_id = ? and day = ? "
        "order by step",
        [funnel["id"], first],
    )
    assert rows == [(i + 1, t["value"], t["visitors"], t["dropped"]) for i, t in enumerate(truth)]
    declared_rows = load.query(
        "select step_value, visitors from umami.report_funnel where report_name = 'Docs funnel' and day = ? "
        "order by step",
        [first],
    )
    truth = simulator.report_truth("funnel", website, begin, end, ZoneInfo(TZ), declared[0]["parameters"])
    assert declared_rows == [(t["value"], t["visitors"]) for t in truth]

    # attribution's per-channel lists became rows with a channel column; its totals are rows too
    channels = {row[0] for row in load.query("select distinct channel from umami.report_attribution")}
    assert {"referrer", "total"} <= channels
    attribution = next(r for r in saved if r["type"] == "attribution")
    parameters = json.loads(attribution["parameters"]) if version == "2" else attribution["parameters"]
    truth = simulator.report_truth("attribution", website, begin, end, ZoneInfo(TZ), parameters)
    assert load.query(
        "select value from umami.report_attribution where channel = 'total' and label = 'pageviews' and day = ?",
        [first],
    ) == [(truth["total"]["pageviews"],)]
    # breakdown rows carry their dimension values; goal rows their goal
    assert load.count("report_breakdown", "dimensions like '%country%'") == load.count("report_breakdown")
    assert load.count("report_goal", "goal_value = 'signup'") == 2
    assert load.count("report_journey", "step_1 is not null") == load.count("report_journey")


@pytest.mark.calendar  # the simulator's traffic ends today
def test_month_report_windows_cover_whole_months(tmp_path: Path) -> None:
    sim = start(version="3")
    try:
        first, last = TODAY - dt.timedelta(days=20), TODAY - dt.timedelta(days=1)
        load = loader(sim, tmp_path, SOURCES__UMAMI__REPORT_WINDOW="month")
        load.run(first, last, resources="report_retention,report_funnel")
        windows = load.query("select distinct window_start, window_end, day from umami.report_funnel order by 1")
        assert windows and windows[0][0] == first.replace(day=1) <= first  # whole months, from the 1st
        assert all(start.day == 1 and end >= start and day == end for start, end, day in windows)
        assert windows[-1][1] == last  # the current month so far
        assert load.count("report_retention") > 0
    finally:
        sim.stop()
