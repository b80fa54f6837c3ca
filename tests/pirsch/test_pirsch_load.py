"""The Pirsch source against its simulator over real HTTP: complete, typed, idempotent, incremental."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults
from simulators.pirsch import PirschData, PirschSimulator
from sources.common.clock import today_utc
from sources.pirsch.settings import ENDPOINTS, EVENT_METADATA_TABLE, RESOURCE_NAMES
from tests.support import Loader
from tests.support.pirsch import LAST_DAY, loader_for

START = LAST_DAY - dt.timedelta(days=4)
DAYS = [START + dt.timedelta(days=i) for i in range(5)]
TZ = "Europe/Berlin"  # the demo plan's timezone
BREAKDOWNS = [e for e in ENDPOINTS if e.kind == "breakdown" and e.selected]


def api_name(path: str) -> str:
    return path.removeprefix("/statistics/")


def test_full_load_equals_the_simulators_truth(simulator: PirschSimulator, loader: Loader) -> None:
    summary = loader.run(START, LAST_DAY)
    tables = loader.tables()
    expected_tables = set(RESOURCE_NAMES) - {"keywords"}
    assert expected_tables <= tables
    assert summary.requests > 0 and summary.rows

    for domain in simulator.domain_ids:
        for day in DAYS:
            # series: one row per day with the exact figures
            (truth,) = [
                r for r in simulator.truth("visitor", domain, day, tz=TZ) if r["day"].startswith(day.isoformat())
            ]
            row = loader.query(
                "select visitors, views, sessions, bounces, bounce_rate from pirsch.visitors "
                "where domain_id = ? and day = ?",
                [domain, day],
            )
            assert row == [
                (truth["visitors"], truth["views"], truth["sessions"], truth["bounces"], truth["bounce_rate"])
            ]
            # breakdowns: every row of the day, with the same visitor sums
            for endpoint in BREAKDOWNS:
                truth_rows = simulator.truth(api_name(endpoint.path), domain, day, tz=TZ)
                count, visitors = loader.query(
                    f"select count(*), coalesce(sum(visitors), 0) from pirsch.{endpoint.table} "
                    "where domain_id = ? and day = ?",
                    [domain, day],
                )[0]
                assert count == len(truth_rows), (endpoint.table, day)
                expected_visitors = sum(
                    (r.get("visitors") if "visitors" in r else r["stats"]["visitors"]) for r in truth_rows
                )
                assert visitors == expected_visitors, (endpoint.table, day)
            views = loader.query("select sum(views) from pirsch.pages where domain_id = ? and day = ?", [domain, day])[
                0
            ][0]
            assert views == sum(r["views"] for r in simulator.truth("page", domain, day, tz=TZ))
            # event metadata: one breakdown per event and meta key
            expected_meta = sum(
                len(simulator.truth("event/meta", domain, day, tz=TZ, event=event["name"], event_meta_key=key))
                for event in simulator.truth("events", domain, day, tz=TZ)
                for key in event["meta_keys"]
            )
            assert loader.count(EVENT_METADATA_TABLE, f"domain_id = '{domain}' and day = '{day}'") == expected_meta


def test_types_are_right(loader: Loader) -> None:
    loader.run(START, START)
    types = dict(
        loader.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'pirsch' and table_name = 'pages'"
        )
    )
    assert types["day"] == "DATE"
    assert types["visitors"] == "BIGINT" and types["views"] == "BIGINT"
    assert types["bounce_rate"] == "DOUBLE" and types["relative_views"] == "DOUBLE"
    assert types["timezone"] == "VARCHAR"
    assert loader.query("select distinct timezone from pirsch.pages") == [("Europe/Berlin",)]
    hour_types = dict(
        loader.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'pirsch' and table_name = 'hours'"
        )
    )
    assert hour_types["hour"] == "BIGINT"
    assert loader.count("hours") == 24 * 2


def test_a_day_with_more_than_100_pages_is_complete(tmp_path: Path) -> None:
    data = PirschData(domains=1, days=3, last_day=LAST_DAY, paths=400, sessions_per_day=(700, 700))
    with PirschSimulator(data) as simulator:
        loader = loader_for(simulator, tmp_path)
        loader.run(LAST_DAY, LAST_DAY, resources="pages")
        truth = simulator.truth("page", simulator.domain_ids[0], LAST_DAY, tz="Europe/Berlin")
        assert len(truth) > 250
        assert loader.count("pages") == len(truth)
        assert loader.query("select count(distinct path) from pirsch.pages")[0][0] == len(truth)
        assert simulator.count(r"/statistics/page$") == len(truth) // 100 + 1
        assert {r.query["limit"] for r in simulator.requests if r.path.endswith("/statistics/page")} == {"100"}


def test_domain_days_are_read_in_parallel_up_to_workers(tmp_path: Path) -> None:
    """Each answer waits 50 ms, as over a real network: `workers` (domain, day) chains are in flight at once, and
    never more; the table is the same as read one at a time."""
    data = PirschData(domains=2, days=8, last_day=LAST_DAY, sessions_per_day=(40, 60))
    slow = Faults(slow_rate=1.0, slow_seconds=0.05, exempt_paths=(r"/api/v1/token$",))
    tables = {}
    for workers in (1, 4):
        with PirschSimulator(data, slow) as simulator:
            loader = loader_for(simulator, tmp_path / f"workers_{workers}", SOURCES__PIRSCH__WORKERS=str(workers))
            loader.run(LAST_DAY - dt.timedelta(days=5), LAST_DAY, resources="pages")
            assert simulator.max_in_flight == workers, f"workers={workers}: {simulator.max_in_flight} at once"
            tables[workers] = loader.query("select * exclude (_dlt_load_id) from pirsch.pages order by all")
    assert tables[1] == tables[4] and len(tables[1]) > 100


def test_rerunning_a_range_adds_no_duplicates(loader: Loader) -> None:
    loader.run(START, LAST_DAY)
    first = {table: loader.count(table) for table in loader.tables()}
    loader.run(START, LAST_DAY)
    assert {table: loader.count(table) for table in loader.tables()} == first
    duplicates = loader.query(
        "select domain_id, day, path, title, count(*) from pirsch.pages group by all having count(*) > 1"
    )
    assert duplicates == []


def snapshot(loader: Loader) -> dict[str, list[tuple[Any, ...]]]:
    result = {}
    for table in sorted(loader.tables()):
        columns = [
            name
            for (name,) in loader.query(
                "select column_name from information_schema.columns where table_schema = 'pirsch' "
                "and table_name = ? and column_name not like '_dlt%' order by column_name",
                [table],
            )
        ]
        quoted = ", ".join(f'"{c}"' for c in columns)
        result[table] = loader.query(f"select {quoted} from pirsch.{table} order by all")
    return result


def test_token_expiry_mid_run_is_survived(simulator: PirschSimulator, tmp_path: Path) -> None:
    clean = loader_for(simulator, tmp_path / "clean")
    clean.run(START, LAST_DAY)

    original = simulator.statistic
    seen = {"count": 0}

    def expiring(request: Any) -> Any:
        seen["count"] += 1
        if seen["count"] == 40:
            simulator.tokens.expire_all()
        return original(request)

    simulator.route("GET", r"/api/v1/statistics/(?P<name>[a-z/]+)", expiring)
    simulator._routes.insert(0, simulator._routes.pop())  # the wrapper answers first
    simulator.clear_log()
    issued = simulator.tokens.issued
    loader = loader_for(simulator, tmp_path / "expiring")
    loader.run(START, LAST_DAY)
    assert simulator.count(r"/api/v1/statistics/", status=401) >= 1
    # the token dies once: exactly one renewal, however many parallel workers saw the 401
    assert simulator.tokens.issued - issued == 1
    assert snapshot(loader) == snapshot(clean)


def test_rate_limits_and_server_faults_give_the_same_data_as_a_clean_run(
    simulator: PirschSimulator, tmp_path: Path
) -> None:
    clean = loader_for(simulator, tmp_path / "clean")
    clean.run(START, START + dt.timedelta(days=1))
    simulator.set_faults(
        Faults(
            error_rate=0.05,
            rate_limit_rate=0.05,
            truncate_rate=0.02,
            drop_rate=0.01,
            retry_after="0",
            seed=3,
            exempt_paths=(r"/api/v1/token$",),
        )
    )
    simulator.clear_log()
    faulty = loader_for(simulator, tmp_path / "faulty")
    summary = faulty.run(START, START + dt.timedelta(days=1))
    faults = [r.fault for r in simulator.requests if r.fault]
    assert faults.count("rate_limit") >= 3 and faults.count("error") >= 3
    assert summary.retries >= len(faults)
    assert snapshot(faulty) == snapshot(clean)


@pytest.mark.calendar
def test_incremental_run_loads_only_the_lookback_window_and_new_days(tmp_path: Path) -> None:
    today = today_utc()
    data = PirschData(domains=2, days=20, last_day=today - dt.timedelta(days=3), sessions_per_day=(40, 60), paths=30)
    with PirschSimulator(data) as simulator:
        loader = loader_for(
            simulator,
            tmp_path,
            SOURCES__PIRSCH__START_DATE=(today - dt.timedelta(days=9)).isoformat(),
            SOURCES__PIRSCH__TIMEZONE="UTC",
        )
        loader.run(resources="pages,visitors")
        assert loader.query("select max(day) from pirsch.pages")[0][0] == today - dt.timedelta(days=3)
        first_days = loader.query("select count(distinct day) from pirsch.pages")[0][0]
        assert first_days == 7

        data.last_day = today  # three new days of traffic
        simulator.clear_log()
        loader.run(resources="pages,visitors")
        page_days = sorted({r.query["from"] for r in simulator.requests if r.path.endswith("/statistics/page")})
        # The first run asked every day up to today (quiet ones too): the second re-reads the 3 lookback days
        # before that watermark and today, where the new days' traffic is found.
        assert page_days == [(today - dt.timedelta(days=d)).isoformat() for d in range(3, -1, -1)]
        assert simulator.count(r"/statistics/page$") == 4 * 2  # one page per day and domain
        assert loader.query("select max(day) from pirsch.pages")[0][0] == today
        assert (
            loader.query(
                "select count(*) from (select domain_id, day, path, title from pirsch.pages group by all "
                "having count(*) > 1)"
            )[0][0]
            == 0
        )
