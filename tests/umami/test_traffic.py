"""A month of daily stats, the pageviews series, every metric type and the row-level sessions/events, for
Umami 2 and Umami 3, compared with the simulator's truth and with each other."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from simulators.umami import UmamiSimulator
from sources.umami.settings import METRIC_TYPES, ApiVersion
from tests.support.umami import TODAY, bounds, loader, small_data, start

METRICS_PAGE = 10  # small pages, so `path` (~40 values a day) needs several


def test_month_of_stats_metrics_sessions_events_equals_truth(
    simulator: UmamiSimulator, version: ApiVersion, tmp_path: Path
) -> None:
    first, last = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=1)
    load = loader(simulator, tmp_path, SOURCES__UMAMI__METRICS_PAGE_LIMIT=str(METRICS_PAGE))
    summary = load.run(first, last, resources="website_stats,pageviews,metrics,sessions,events")
    assert summary.rows["website_stats"] == 30
    (website,) = simulator.website_ids
    days = [first + dt.timedelta(days=i) for i in range(30)]

    stats = {
        row[0]: row[1:]
        for row in load.query(
            "select day, pageviews, visitors, visits, bounces, totaltime from umami.website_stats order by day"
        )
    }
    for day in days:
        truth = simulator.stats_truth(website, *bounds(day))
        assert stats[day] == tuple(truth[k] for k in ("pageviews", "visitors", "visits", "bounces", "totaltime")), day

    # the pageviews series agrees with stats (same counting: pageviews, and sessions that viewed a page)
    series = load.query(
        "select p.day, p.pageviews, p.sessions, s.pageviews, s.visitors from umami.pageviews p "
        "join umami.website_stats s using (website_id, day)"
    )
    assert len(series) == 30 and all(row[1] == row[3] and row[2] == row[4] for row in series)

    # every metric type the version offers, every value, each day; `path` needed several pages
    offered = [m for m in METRIC_TYPES if m.api_name(version)]
    assert {row[0] for row in load.query("select distinct type from umami.metrics")} == {m.name for m in offered}
    loaded: dict[tuple[dt.date, str], set[tuple[str, int]]] = {}
    for day, kind, value, total in load.query("select day, type, value, total from umami.metrics"):
        loaded.setdefault((day, kind), set()).add((value, total))
    for day in days[::3]:
        for metric in offered:
            rows = simulator.metrics_truth(website, str(metric.v3 or metric.name), *bounds(day))
            assert loaded.get((day, metric.name), set()) == {(r["x"], r["y"]) for r in rows}, (day, metric.name)
    assert max(len(v) for (_, kind), v in loaded.items() if kind == "path") > 2 * METRICS_PAGE
    assert any(int(r.query.get("offset", 0)) >= 2 * METRICS_PAGE for r in simulator.requests if "/metrics" in r.path)

    # recompute each day's stats from the row-level events: they agree with website_stats
    recomputed = load.query(
        """
        with views as (
            select day, session_id, created_at, date_trunc('hour', created_at) as hour
            from umami.events where event_type = 1
        ), visits as (
            select day, session_id, hour, count(*) as n,
                   epoch(max(created_at)) - epoch(min(created_at)) as spent
            from views group by all
        )
        select v.day, v.pageviews, v.visitors, x.visits, x.bounces, x.totaltime
        from (select day, count(*) as pageviews, count(distinct session_id) as visitors from views group by day) v
        join (select day, count(*) as visits, count(*) filter (where n = 1) as bounces,
                     cast(sum(spent) as bigint) as totaltime from visits group by day) x using (day)
        order by v.day
        """
    )
    assert len(recomputed) == 30
    for day, *numbers in recomputed:
        assert tuple(numbers) == stats[day], day
    # custom events are in `events` but not in stats' pageviews
    assert load.count("events", "event_type = 2") > 0

    # sessions: every session with an event in a window, once (one spanning midnight lands on its later day)
    listed = {row["id"]: day for day in days for row in simulator.session_rows(website, *bounds(day))}
    assert dict(load.query("select id, day from umami.sessions")) == listed
    # what the versions mean differently is said in the column comments of the loaded schema
    (schema,) = load.query("select schema from umami._dlt_version order by inserted_at desc limit 1")[0]
    tables = json.loads(schema)["tables"]
    assert "back-dated" in tables["sessions"]["columns"]["created_at"]["description"]
    assert "laptop" in tables["sessions"]["columns"]["device"]["description"]
    assert "zeros" in tables["metrics"]["columns"]["value"]["description"]
    assert load.query("select count(*) from umami.sessions where region is null or region = ''") == [(0,)]
    assert load.query("select count(*) - count(distinct id) from umami.events") == [(0,)]


@pytest.mark.calendar  # the simulator's traffic ends today
def test_days_are_local_days_in_the_timezone_across_daylight_saving(tmp_path: Path) -> None:
    # 2026-03-29: Europe/Berlin skips 02:00-03:00, so that local day is 23 hours long
    sim = start(version="3", data=small_data(last_day=dt.date(2026, 4, 2), days=10))
    try:
        load = loader(sim, tmp_path)
        load.run("2026-03-28", "2026-03-30", resources="website_stats,events")
        spans = sorted(
            (int(r.query["startAt"]), int(r.query["endAt"]) + 1) for r in sim.requests if r.path.endswith("/stats")
        )
        spans = [s for s in spans if s[1] - s[0] > 2 * 3600 * 1000]  # leave out the version probe
        assert [(end - begin) // 3_600_000 for begin, end in spans] == [24, 23, 24]
        assert spans[1][0] == int(dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC).timestamp() * 1000)  # local midnight
        (website,) = sim.website_ids
        for day, pageviews in load.query("select day, pageviews from umami.website_stats order by day"):
            assert pageviews == sim.stats_truth(website, *bounds(day))["pageviews"]
            assert pageviews == load.count("events", f"day = '{day}' and event_type = 1")
    finally:
        sim.stop()
