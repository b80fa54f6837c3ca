"""The Matomo source against the simulator over real HTTP: raw visits and actions exactly as Matomo holds them,
across window edges, runs, back-dated hits and offset pages that shift while reading."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulators.matomo import DEMO_VIEW_TOKEN, MatomoSimulator
from sources.common.clock import wall_time
from tests.support import Loader
from tests.support.matomo import hit, invalidate, track

TZ = "America/New_York"


def loader_for(simulator: MatomoSimulator, workdir: Path, **env: str) -> Loader:
    return Loader(
        "matomo",
        workdir,
        {
            "SOURCES__MATOMO__BASE_URL": simulator.url,
            "SOURCES__MATOMO__TOKEN_AUTH": DEMO_VIEW_TOKEN,
            **env,
        },
    )


def local_day(moment: float, tz: str = TZ) -> dt.date:
    return dt.datetime.fromtimestamp(moment, ZoneInfo(tz)).date()


def truth(simulator: MatomoSimulator, site: int) -> dict[int, tuple[int, int]]:
    """idVisit -> (actions, last action) of every visit the simulator holds for `site`."""
    return {visit.idvisit: (len(visit.actions), int(visit.last)) for visit in simulator.visits if visit.site == site}


def loaded(loader: Loader, site: int) -> dict[int, tuple[int, int]]:
    rows = loader.query(
        "select v.id_visit, count(a.position), epoch(v.last_action_time)::bigint from matomo.visits v "
        "left join matomo.actions a using (site_id, id_visit) where v.site_id = ? group by all",
        [site],
    )
    return {visit: (actions, last) for visit, actions, last in rows}


@pytest.fixture
def simulator() -> Iterator[MatomoSimulator]:
    with MatomoSimulator(sites=(1, 2), timezones={1: TZ, 2: "UTC"}) as server:
        yield server  # type: ignore[misc]


def seed_days(simulator: MatomoSimulator, site: int, days_back: int, visitors: int, now: float) -> None:
    """`visitors` visits a day over the last `days_back` days (3 pages and an event each), at times before now."""
    hits = []
    for back in range(days_back, -1, -1):
        for n in range(visitors):
            start = now - back * 86400 - 3600 - n * 97
            visitor = site * 1000 + back * 100 + n
            hits += [
                hit(site, visitor, start, f"https://site{site}.example/"),
                hit(site, visitor, start + 30, f"https://site{site}.example/p/{n % 4}"),
                hit(site, visitor, start + 45, f"https://site{site}.example/p/{n % 4}", e_c="cta", e_a="click", e_v=2),
                hit(site, visitor, start + 90, f"https://site{site}.example/docs"),
            ]
    track(simulator, hits)


def test_visits_and_actions_equal_what_matomo_holds(simulator: MatomoSimulator, tmp_path: Path) -> None:
    now = wall_time()
    seed_days(simulator, 1, 3, 5, now)
    seed_days(simulator, 2, 3, 4, now)
    loader = loader_for(simulator, tmp_path)
    # Days are each site's own: up to today in UTC (site 2), which is tomorrow in New York (site 1) from 19:00.
    loader.run(local_day(now - 4 * 86400), max(local_day(now), local_day(now, "UTC")))
    for site in (1, 2):
        assert loaded(loader, site) == truth(simulator, site)
    # typed, UTC times, days in the site's timezone, actions in order with their kinds
    (row,) = loader.query(
        "select day, timezone, typeof(last_action_time), visitor_id, actions from matomo.visits "
        "where site_id = 1 order by last_action_time desc limit 1"
    )
    newest = max((visit for visit in simulator.visits if visit.site == 1), key=lambda visit: visit.last)
    assert row == (local_day(newest.last), TZ, "TIMESTAMP WITH TIME ZONE", newest.visitor_id, 4)
    kinds = loader.query(
        "select list(type order by position), list(event_value order by position) from matomo.actions "
        "where site_id = 1 and id_visit = ?",
        [newest.idvisit],
    )
    assert kinds == [(["action", "action", "event", "action"], [None, None, 2.0, None])]
    assert loader.query("select count(*) from matomo.sites") == [(2,)]
    assert loader.query("select timezone from matomo.sites where site_id = 1") == [(TZ,)]


def test_offset_pages_that_shift_while_reading_lose_and_double_nothing(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    """Pages of 7 visits, newest first: while the second page is asked, 5 new visits arrive (pushing the rest down)
    and the oldest visit continues (jumping to the top, out of the pages still to come)."""
    day = local_day(wall_time(), "UTC") - dt.timedelta(days=1)
    noon = dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp()
    track(simulator, [hit(2, n, noon - n * 300, f"https://site2.example/p/{n}") for n in range(30)])
    oldest = min((visit for visit in simulator.visits if visit.site == 2), key=lambda visit: visit.last)
    inserted: list[bool] = []

    def meanwhile(method: str, params: dict[str, str]) -> None:
        if method == "Live.getLastVisitsDetails" and params.get("filter_offset") == "7" and not inserted:
            inserted.append(True)
            track(simulator, [hit(2, 500 + n, noon + 3600 + n, "https://site2.example/new") for n in range(5)])
            track(simulator, [hit(2, int(oldest.visitor_id, 16), oldest.last + 600, "https://site2.example/more")])

    simulator.before_reporting = meanwhile
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__PAGE_SIZE="7", SOURCES__MATOMO__SITE_IDS="2")
    loader.run(day, day, resources="visits")
    assert inserted
    assert loaded(loader, 2) == truth(simulator, 2)
    assert len(truth(simulator, 2)) == 35
    assert loaded(loader, 2)[oldest.idvisit][0] == 2  # the continued visit, read again with its new action


def test_visits_that_continue_and_span_midnight_are_exact_across_runs(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    now = wall_time()
    zone = ZoneInfo(TZ)
    today = local_day(now)
    midnight = dt.datetime.combine(today - dt.timedelta(days=2), dt.time(), zone).timestamp()
    # a visit across the midnight that starts day -2 (local), and one still going on now
    track(
        simulator,
        [hit(1, 7, midnight - 600, "https://site1.example/"), hit(1, 7, midnight + 300, "https://site1.example/a")],
    )
    track(simulator, [hit(1, 8, now - 1200, "https://site1.example/"), hit(1, 8, now - 900, "https://site1.example/b")])
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__START_DATE=(today - dt.timedelta(days=5)).isoformat())
    loader.run()
    assert loaded(loader, 1) == truth(simulator, 1)
    spanning = loader.query(
        "select v.day, list(a.day order by a.position) from matomo.visits v join matomo.actions a "
        "using (site_id, id_visit) where v.visitor_id = ? group by v.day",
        [f"{7:016x}"],
    )
    assert spanning == [(today - dt.timedelta(days=2), [today - dt.timedelta(days=3), today - dt.timedelta(days=2)])]
    # the open visit continues; the next run re-reads it whole
    track(simulator, [hit(1, 8, now - 300, "https://site1.example/c")])
    loader.run()
    assert loaded(loader, 1) == truth(simulator, 1)
    assert loaded(loader, 1)[max(truth(simulator, 1))][0] == 3
    assert loader.count("visits") == 2 and loader.count("actions") == 5


def test_backdated_visits_beyond_the_lookback_are_found_by_the_next_run(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    now = wall_time()
    today = local_day(now)
    seed_days(simulator, 1, 1, 3, now)
    loader = loader_for(
        simulator,
        tmp_path,
        SOURCES__MATOMO__START_DATE=(today - dt.timedelta(days=10)).isoformat(),
        SOURCES__MATOMO__SITE_IDS="1",
    )
    loader.run()
    before = loader.query(
        "select nb_visits from matomo.visits_summary where site_id = 1 and day = ?", [today - dt.timedelta(days=6)]
    )
    assert before == [(0,)]
    # a push of day -6 (local noon) arrives, then its archive is invalidated, as `clickhaul push matomo` does
    noon = dt.datetime.combine(today - dt.timedelta(days=6), dt.time(12), ZoneInfo(TZ)).timestamp()
    old_day = today - dt.timedelta(days=6)
    track(simulator, [hit(1, 900 + n, noon + n * 60, "https://site1.example/old") for n in range(4)])
    loader.run()
    assert loaded(loader, 1) == truth(simulator, 1)
    summary = "select nb_visits, is_final from matomo.visits_summary where site_id = 1 and day = ?"
    pages = "select sum(nb_hits) from matomo.pages where site_id = 1 and day = ?"
    # the archive of day -6 was built before the hits came: stale until invalidated, so not final, read again
    assert loader.query(summary, [old_day]) == [(0, False)]
    invalidate(simulator, 1, [old_day])
    loader.run()
    assert loader.query(summary, [old_day]) == [(4, True)]
    assert loader.query(pages, [old_day]) == [(4,)]
    # final now: the next run leaves that day alone
    dates: list[str] = []
    simulator.before_reporting = lambda method, params: dates.append(params.get("date", ""))
    loader.run()
    assert dates and not any(old_day.isoformat() in date for date in dates)


REPORT_METHODS = {
    "pages": "Actions.getPageUrls",
    "entry_pages": "Actions.getEntryPageUrls",
    "exit_pages": "Actions.getExitPageUrls",
    "devices": "DevicesDetection.getType",
    "countries": "UserCountry.getCountry",
}


def test_daily_reports_equal_matomos_archives(simulator: MatomoSimulator, tmp_path: Path) -> None:
    now = wall_time()
    seed_days(simulator, 1, 3, 6, now)
    track(simulator, [hit(1, 77, now - 7200, "https://site1.example/in", urlref="https://news.example/story")])
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="1")
    first, last = local_day(now - 3 * 86400), local_day(now)
    loader.run(first, last)
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        archive = simulator.archive(1, day).reports
        summary = archive["VisitsSummary.get"] or {}
        row = loader.query(
            "select nb_visits, nb_actions, sum_visit_length, bounce_rate from matomo.visits_summary "
            "where site_id = 1 and day = ?",
            [day],
        )
        expected_rate = int(summary["bounce_rate"].rstrip("%")) / 100 if summary else None
        assert row == [
            (
                summary.get("nb_visits", 0),
                summary.get("nb_actions", 0),
                summary.get("sum_visit_length", 0),
                expected_rate,
            )
        ], day
        for table, method in REPORT_METHODS.items():
            count_column = (
                "nb_hits" if table == "pages" else f"{table.split('_')[0]}_nb_visits" if "_" in table else "nb_visits"
            )
            rows = loader.query(
                f"select label, {count_column} from matomo.{table} where site_id = 1 and day = ?", [day]
            )
            expected = [(r["label"], int(r[count_column])) for r in archive[method]]
            assert sorted(rows) == sorted(expected), (table, day)
        events = loader.query(
            "select dimension, label, nb_events from matomo.events where site_id = 1 and day = ?", [day]
        )
        expected_events = [
            (dimension, r["label"], r["nb_events"])
            for dimension, method in (
                ("category", "Events.getCategory"),
                ("action", "Events.getAction"),
                ("name", "Events.getName"),
            )
            for r in archive[method]
        ]
        assert sorted(events) == sorted(expected_events)
    # the referred visit's own day: two hours back is yesterday in the site's timezone until 02:00 there
    referred = local_day(now - 7200)
    referrers = loader.query("select referrer_type, label, nb_visits from matomo.referrers where day = ?", [referred])
    assert (3, "news.example", 1) in referrers
    seeded = local_day(now - 3600 - 97 + 30)  # today's /p/1 (seed_days' visitor 1), yesterday there until 01:00
    paths = loader.query("select path, url from matomo.pages where day = ? and label = '/p/1'", [seeded])
    assert paths == [("/p/1", "https://site1.example/p/1")]


def test_truncated_reports_are_flagged(tmp_path: Path) -> None:
    with MatomoSimulator(sites=(1,), report_max_rows=3) as simulator:
        # yesterday's afternoon (site 1 keeps UTC): the 8 visits of the hour before it fall on that day at any
        # hour the test runs (an hour before now was yesterday between 00:00 and 01:15)
        day = local_day(wall_time(), "UTC") - dt.timedelta(days=1)
        afternoon = dt.datetime.combine(day, dt.time(15), dt.UTC).timestamp()
        seed_days(simulator, 1, 0, 8, afternoon)
        loader = loader_for(simulator, tmp_path)
        loader.run(day, day, resources="pages,visits_summary")
        rows = loader.query("select label, is_truncated from matomo.pages order by nb_visits desc, label")
        assert len(rows) == 3 and ("Others", True) in rows and all(flag for _, flag in rows)
        assert loader.query("select nb_visits from matomo.visits_summary") == [(8,)]


def test_today_and_yesterday_are_read_again_until_final(simulator: MatomoSimulator, tmp_path: Path) -> None:
    simulator.today_archive_ttl = 0.0  # a Matomo whose today-archive is rebuilt on every request
    now = wall_time()
    today = local_day(now)
    loader = loader_for(
        simulator, tmp_path, SOURCES__MATOMO__START_DATE=today.isoformat(), SOURCES__MATOMO__LOOKBACK_DAYS="0"
    )
    # both hits today in New York, also in its first ten minutes
    first = max(now - 600, dt.datetime.combine(today, dt.time(), ZoneInfo(TZ)).timestamp())
    track(simulator, [hit(1, 1, first, "https://site1.example/")])
    loader.run()
    query = "select nb_visits, is_final from matomo.visits_summary where site_id = 1 and day = ?"
    assert loader.query(query, [today]) == [(1, False)]
    track(simulator, [hit(1, 2, (first + now) / 2, "https://site1.example/")])
    loader.run()
    assert loader.query(query, [today]) == [(2, False)]


def test_a_wrong_token_is_one_clear_line(simulator: MatomoSimulator, tmp_path: Path) -> None:
    from sources.common.errors import AuthError

    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__TOKEN_AUTH="f" * 32)
    day = local_day(wall_time())
    with pytest.raises(AuthError) as caught:
        loader.run(day, day)
    message = str(caught.value)
    assert "sources.matomo.token_auth" in message and "SOURCES__MATOMO__TOKEN_AUTH" in message
    assert "\n" not in message and "f" * 32 not in message and "<html" not in message.lower()


def test_unknown_site_ids_are_refused_before_any_data_request(simulator: MatomoSimulator, tmp_path: Path) -> None:
    from sources.common.errors import ConfigError

    methods: list[str] = []
    simulator.before_reporting = lambda method, params: methods.append(method)
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="1,7")
    day = local_day(wall_time())
    with pytest.raises(ConfigError, match=r"unknown matomo site id 7 .*can view 1, 2"):
        loader.run(day, day)
    assert methods == ["SitesManager.getSitesWithAtLeastViewAccess"]
    assert not loader.database.exists() or "visits" not in loader.tables()


def test_errors_in_http_200_bodies_are_typed_with_matomos_message(simulator: MatomoSimulator, tmp_path: Path) -> None:
    from sources.matomo.client import MatomoApiError, MatomoReader

    reader = MatomoReader(simulator.url, DEMO_VIEW_TOKEN)
    with pytest.raises(MatomoApiError, match="An unexpected website was found in the request"):
        reader.report("VisitsSummary.get", 99, dt.date(2026, 1, 1))
    with pytest.raises(MatomoApiError) as caught:
        reader.call("Nope.nothing")
    assert caught.value.plugin_missing and caught.value.name == "Nope.nothing"


def test_every_kind_of_action_is_typed(simulator: MatomoSimulator, tmp_path: Path) -> None:
    now = wall_time() - 3600
    base = "https://site2.example"
    track(
        simulator,
        [
            hit(2, 5, now, f"{base}/"),
            hit(2, 5, now + 10, f"{base}/", download=f"{base}/file.pdf"),
            hit(2, 5, now + 20, f"{base}/", link="https://other.example/"),
            hit(2, 5, now + 30, f"{base}/search", search="shoes", search_cat="all", search_count=12),
            hit(2, 5, now + 40, f"{base}/", e_c="video", e_a="play", e_n="intro", e_v=1.5),
            hit(2, 5, now + 50, f"{base}/signup", idgoal=3, revenue=5),
            hit(
                2,
                5,
                now + 60,
                f"{base}/thanks",
                idgoal=0,
                ec_id="A-17",
                revenue=42.5,
                ec_items='[["SKU1","Shoe","",40.0,1]]',
            ),
        ],
    )
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="2")
    day = local_day(now, "UTC")
    loader.run(day, day, resources="visits")
    rows = loader.query(
        "select type, url, site_search_keyword, site_search_count, event_value, goal_id, revenue, order_id, items, "
        "json_extract_string(item_details, '$[0].itemSKU') from matomo.actions order by position"
    )
    assert rows == [
        ("action", f"{base}/", None, None, None, None, None, None, None, None),
        ("download", f"{base}/file.pdf", None, None, None, None, None, None, None, None),
        ("outlink", "https://other.example/", None, None, None, None, None, None, None, None),
        ("search", f"{base}/search", "shoes", 12, None, None, None, None, None, None),
        ("event", f"{base}/", None, None, 1.5, None, None, None, None, None),
        ("goal", f"{base}/signup", None, None, None, 3, 5.0, None, None, None),
        ("ecommerceOrder", f"{base}/thanks", None, None, None, None, 42.5, "A-17", 1, "SKU1"),
    ]
    assert loader.query("select searches, events, actions from matomo.visits") == [(1, 1, 7)]


def test_schema_drift_lands_new_fields_and_keeps_misfits(simulator: MatomoSimulator, tmp_path: Path) -> None:
    """A Matomo that adds a field and changes a value's type: the field becomes a column, the misfit is kept as
    text beside the typed column, and the run goes on."""
    now = wall_time() - 3600
    track(simulator, [hit(2, 1, now, "https://site2.example/"), hit(2, 1, now + 5, "https://site2.example/x")])
    read_visits = simulator.api_methods["Live.getLastVisitsDetails"]

    def drifted(params: dict[str, str], role: str | None) -> Any:
        visits = read_visits(params, role)
        for visit in visits:
            visit["experimentVariant"] = {"name": "B"}
            visit["visitDuration"] = "6 s"
        return visits

    simulator.api_methods["Live.getLastVisitsDetails"] = drifted
    loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="2")
    day = local_day(now, "UTC")
    loader.run(day, day, resources="visits")
    assert loader.query("select experiment_variant, visit_duration, visit_duration__v_text from matomo.visits") == [
        ('{"name": "B"}', None, "6 s")
    ]


def test_without_browser_archiving_an_invalidated_day_waits_for_the_cron(tmp_path: Path) -> None:
    """Matomo with browser-triggered archiving off serves the old archive of an invalidated day until `core:archive`
    runs: the day stays not final and is read on every run, and the run after the cron gets the new figures."""
    with MatomoSimulator(sites=(1,), browser_archiving=False) as simulator:
        now = wall_time()
        today = local_day(now, "UTC")
        old_day = today - dt.timedelta(days=5)
        noon = dt.datetime.combine(old_day, dt.time(12), dt.UTC).timestamp()
        track(simulator, [hit(1, 1, noon, "https://site1.example/")])
        loader = loader_for(simulator, tmp_path, SOURCES__MATOMO__START_DATE=(today - dt.timedelta(days=8)).isoformat())
        loader.run()
        query = "select nb_visits, is_final from matomo.visits_summary where day = ?"
        assert loader.query(query, [old_day]) == [(1, True)]
        track(simulator, [hit(1, 2, noon + 60, "https://site1.example/late")])
        invalidate(simulator, 1, [old_day])
        loader.run()
        assert loader.query(query, [old_day]) == [(1, False)]  # the old archive, and the raw log says 2
        loader.run()
        assert loader.query(query, [old_day]) == [(1, False)]  # still waiting, still read
        assert simulator.run_archiving() == 1
        loader.run()
        assert loader.query(query, [old_day]) == [(2, True)]
        assert loader.count("visits", f"day = '{old_day}'") == 2


def test_reports_are_read_whole_beyond_the_apis_default_100_rows(tmp_path: Path) -> None:
    with MatomoSimulator(sites=(1,)) as simulator:
        # yesterday's afternoon in site 1's UTC: the 130 s of hits stay on one day at any hour the test runs
        day = local_day(wall_time(), "UTC") - dt.timedelta(days=1)
        afternoon = dt.datetime.combine(day, dt.time(15), dt.UTC).timestamp()
        track(simulator, [hit(1, n, afternoon + n, f"https://site1.example/page/{n}") for n in range(130)])
        loader = loader_for(simulator, tmp_path)
        loader.run(day, day, resources="pages,entry_pages")
        assert loader.count("pages") == loader.count("entry_pages") == 130
        assert loader.query("select bool_or(is_truncated) from matomo.pages") == [(False,)]
