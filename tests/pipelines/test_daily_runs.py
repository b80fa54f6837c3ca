"""Sixty days of daily runs per vendor on a moved clock (CLICKHAUL_TODAY): a table that never has rows, a last week
of quiet days and an entity (or table) added on day 30. Each run asks the lookback window and nothing more, every
day the same number of statistics requests; the tables equal a clean load of the whole range."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from simulators.harness import LoggedRequest, SimulatorServer
from sources.common.clock import TODAY_ENV
from tests.chaos.vendors import snapshot
from tests.support import Loader
from tests.support.retry import FAST_RETRY_ENV

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out

FIRST = dt.date(2027, 3, 1)  # 60 days through Europe's spring DST change and two month ends
DAYS = 60
ADDED = 30  # the day an entity (or a table) joins the configuration
QUIET_FROM = 53  # traffic ends the day before: the last week is quiet
LOOKBACK = 3
LAST_TRAFFIC = FIRST + dt.timedelta(days=QUIET_FROM - 1)


@dataclass
class Daily:
    vendor: str
    start: Callable[[], SimulatorServer]
    env: Callable[[Any, bool], dict[str, str]]  # the configuration before / from day ADDED
    resources: Callable[[bool], str]
    counted: Callable[[LoggedRequest], bool]  # a statistics request
    units: tuple[int, int]  # (resource, entity) pairs asked from day 0, and those added on day ADDED
    truth: Callable[[Any, Loader], None] | None = None


def form(request: LoggedRequest) -> dict[str, str]:
    fields = {**request.query}
    if request.body and not request.body.startswith(b"{"):
        fields |= {key: values[-1] for key, values in parse_qs(request.body.decode()).items()}
    return fields


def days_asked(first_run: int, run: int) -> int:
    """Days one (resource, entity) pair asks on day `run`: all of history on its first run, then the lookback
    window before the previous run's watermark up to today."""
    if run == first_run:
        return run + 1
    return run - max(0, run - 1 - LOOKBACK) + 1


# -- pirsch: conversion_goals never has rows (no goals), a third domain on day 30 ---------------------------------
def _pirsch() -> SimulatorServer:
    from simulators.pirsch import PirschData, PirschSimulator

    data = PirschData(
        domains=3, days=QUIET_FROM, last_day=LAST_TRAFFIC, paths=20, sessions_per_day=(20, 40), goals_per_domain=0
    )
    # Every run is a day later, minutes apart: a 15-minute token would need renewing at every run, and the client
    # paces its token calls at Pirsch's 10 a minute (5 minutes of waiting over 60 runs). The token outlives them.
    return PirschSimulator(data, token_ttl=100 * 86400.0)


def _pirsch_env(server: Any, added: bool) -> dict[str, str]:
    from simulators.pirsch import demo_plan

    domains = server.domain_ids if added else server.domain_ids[:2]
    return {**demo_plan(server).env, "SOURCES__PIRSCH__DOMAIN_IDS": json.dumps(domains)}


def _pirsch_truth(server: Any, loader: Loader) -> None:
    for domain in server.domain_ids:
        for day in (FIRST, FIRST + dt.timedelta(days=27), LAST_TRAFFIC):  # first day, the DST day, last day
            views = loader.query("select sum(views) from pirsch.pages where domain_id = ? and day = ?", [domain, day])
            assert views[0][0] == sum(r["views"] for r in server.truth("page", domain, day, tz="Europe/Berlin"))
    assert "conversion_goals" not in loader.tables()


# -- umami: an idle website that never has rows, a second website with traffic on day 30 ------------------------
def _umami() -> SimulatorServer:
    from simulators.umami import UmamiData, UmamiSimulator

    data = UmamiData(websites=2, idle_websites=1, days=QUIET_FROM, last_day=LAST_TRAFFIC, sessions_per_day=(5, 10))
    return UmamiSimulator(data, version="3")


def _umami_env(server: Any, added: bool) -> dict[str, str]:
    from simulators.umami import demo_plan

    busy, second, idle = (website["id"] for website in server.data.website_list())
    websites = [busy, idle, second] if added else [busy, idle]
    return {
        **demo_plan(server).env,
        "SOURCES__UMAMI__API_VERSION": "3",
        "SOURCES__UMAMI__WEBSITE_IDS": json.dumps(websites),
    }


# -- opentracker: an idle site that never has sessions, a second site on day 30 -----------------------------------
IDLE_SITE = "idle.example.com"


def _opentracker() -> SimulatorServer:
    from simulators.opentracker import DEMO_LOGIN, DEMO_PASSWORD, OpentrackerData, OpentrackerSimulator

    data = OpentrackerData(
        days=QUIET_FROM, last_day=LAST_TRAFFIC, sessions_per_day=(5, 10), max_hours_per_page=24, cut_share=0.0
    )
    return OpentrackerSimulator(data, accounts={DEMO_LOGIN: (DEMO_PASSWORD, (*data.sites, IDLE_SITE))})


def _opentracker_env(server: Any, added: bool) -> dict[str, str]:
    from simulators.opentracker import demo_plan

    first, second = server.data.sites
    sites = [first, IDLE_SITE, second] if added else [first, IDLE_SITE]
    return {**demo_plan(server).env, "SOURCES__OPENTRACKER__SITES": ",".join(sites)}


def _opentracker_truth(server: Any, loader: Loader) -> None:
    expected = set()
    for site in server.data.sites:
        expected |= set(server.truth(site, FIRST, FIRST + dt.timedelta(days=DAYS - 1), "UTC"))
    assert {sid for (sid,) in loader.query("select session_id from opentracker.sessions")} == expected


# -- webtrekk: campaigns_time never has rows (no campaigns), an analysis goes quiet, a table added on day 30 -------
def _webtrekk() -> SimulatorServer:
    from simulators.webtrekk import WebtrekkData, WebtrekkSimulator

    data = WebtrekkData(
        days=QUIET_FROM, last_day=LAST_TRAFFIC, campaigns=0, pages=300, traffic_pages=30, pages_per_day=(20, 30)
    )
    return WebtrekkSimulator(data, rate_limits=[(1000, 1.0), (20000, 60.0)])


def _webtrekk_env(server: Any, added: bool) -> dict[str, str]:
    from simulators.webtrekk import ENDPOINT

    data = server.data
    analysis = {"name": "pages", "row_limit": 100, "config": {"analysisObjects": [{"title": "Pages"}],
                                                              "metrics": [{"title": "Page Impressions"}]}}  # fmt: skip
    return {
        "SOURCES__WEBTREKK__BASE_URL": server.url + ENDPOINT,
        "SOURCES__WEBTREKK__CUSTOMER_ID": data.customer_id,
        "SOURCES__WEBTREKK__LOGIN": data.login,
        "SOURCES__WEBTREKK__PASSWORD": data.password,
        "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([[1000, 1.0], [20000, 60.0]]),
        "SOURCES__WEBTREKK__EXPORT_TYPES": json.dumps(["campaigns_time", *(["time_categories"] if added else [])]),
        "SOURCES__WEBTREKK__ANALYSES": json.dumps([analysis]),
    }


def _webtrekk_method(request: LoggedRequest) -> str:
    return str(json.loads(request.body or b"{}").get("method"))


SCENARIOS = {
    "pirsch": Daily(
        "pirsch", _pirsch, _pirsch_env, lambda added: "pages,conversion_goals",
        lambda r: "/statistics/" in r.path, units=(2 * 2, 2), truth=_pirsch_truth,
    ),
    "umami": Daily(
        "umami", _umami, _umami_env, lambda added: "website_stats,events",
        lambda r: re.search(r"/websites/[^/]+/(stats|events)$", r.path) is not None, units=(2 * 2, 2),
    ),
    "opentracker": Daily(
        "opentracker", _opentracker, _opentracker_env, lambda added: "sessions",
        lambda r: r.path.endswith("c_view_session.jsp") and form(r).get("limit") != "1",  # not the site probe
        units=(2, 1), truth=_opentracker_truth,
    ),
    "webtrekk": Daily(
        "webtrekk", _webtrekk, _webtrekk_env,
        lambda added: "export_campaigns_time,analysis_pages" + (",export_time_categories" if added else ""),
        lambda r: _webtrekk_method(r) in ("exportData", "getAnalysisData"), units=(2, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sixty_daily_runs_ask_the_lookback_window_every_day(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SCENARIOS[name]
    counts = []
    with scenario.start() as server:
        for run in range(DAYS):
            added = run >= ADDED
            monkeypatch.setenv(TODAY_ENV, (FIRST + dt.timedelta(days=run)).isoformat())
            env = {
                **scenario.env(server, added),
                **FAST_RETRY_ENV,
                f"SOURCES__{name.upper()}__START_DATE": FIRST.isoformat(),
                f"SOURCES__{name.upper()}__LOOKBACK_DAYS": str(LOOKBACK),
            }
            loader = Loader(name, tmp_path / "daily", env, pipeline_name="daily")
            server.clear_log()
            loader.run(resources=scenario.resources(added))
            counts.append(sum(1 for request in list(server.requests) if scenario.counted(request)))

        before, joined = scenario.units
        expected = [
            before * days_asked(0, run) + (joined * days_asked(ADDED, run) if run >= ADDED else 0)
            for run in range(DAYS)
        ]
        assert counts == expected
        steady = (LOOKBACK + 2) * before  # the lookback window, the previous run's day and today
        assert set(counts[LOOKBACK + 1 : ADDED]) == {steady}
        assert counts[ADDED] == steady + joined * (ADDED + 1)  # the new entity's history, once
        assert set(counts[ADDED + 1 :]) == {(LOOKBACK + 2) * (before + joined)}  # the quiet week included

        # The tables equal one clean read of the whole range (and, where the simulator tells, its truth).
        monkeypatch.setenv(TODAY_ENV, (FIRST + dt.timedelta(days=DAYS - 1)).isoformat())
        clean = Loader(name, tmp_path / "clean", {**scenario.env(server, True), **FAST_RETRY_ENV})
        clean.run(FIRST, FIRST + dt.timedelta(days=DAYS - 1), resources=scenario.resources(True))
        assert snapshot(loader.database, name) == snapshot(clean.database, name)
        if scenario.truth:
            scenario.truth(server, loader)
