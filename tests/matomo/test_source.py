"""The Matomo source against the simulator over real HTTP: raw visits and actions exactly as Matomo holds them,
across window edges, runs, back-dated hits and offset pages that shift while reading."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulators.matomo import DEMO_VIEW_TOKEN, MatomoSimulator
from sources.common.clock import wall_time
from tests.support import Loader
from tests.support.matomo import hit, track

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
def simulator() -> MatomoSimulator:
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
    loader.run(local_day(now - 4 * 86400), local_day(now))
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
