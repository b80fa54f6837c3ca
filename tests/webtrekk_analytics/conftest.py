from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.mapp_analytics import API_PREFIXES, TOKEN_PATHS, AnalyticsData, MappAnalyticsSimulator
from tests.support import Loader

LAST_DAY = dt.date(2026, 10, 31)
OCTOBER = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))

# Two dimensions and three metrics, as copied from the Mapp UI: a dynamic time filter (replaced per window) and the
# UI's rank window on the first dimension.
BROWSER_OS_QUERY: dict[str, Any] = {
    "columns": [
        {"name": "browser_fullName", "scope": "OBJECT", "context": "SESSION", "variant": "NORMAL", "lowerLimit": 1,
         "upperLimit": "50", "sortDirection": "ASCENDING", "sortIndex": 0},
        {"name": "os_vendor", "scope": "OBJECT", "context": "SESSION", "variant": "NORMAL"},
        {"name": "visits", "scope": "OBJECT", "context": "SESSION", "columnPeriod": "ANALYSIS", "variant": "NORMAL"},
        {"name": "pages_pageImpressions", "scope": "OBJECT", "context": "PAGE", "variant": "NORMAL"},
        {"name": "order_value", "scope": "OBJECT", "context": "ACTION", "variant": "NORMAL"},
    ],
    "variant": "LIST",
    "predefinedContainer": {
        "filters": [{"name": "time_dynamic", "filterPredicate": "LIKE", "connector": "AND", "caseSensitive": False,
                     "context": "NONE", "intern": False, "value1": "last_7_days", "value2": ""}],
        "containers": [],
    },
}  # fmt: skip
METRICS = ["visits", "pages_pageImpressions", "order_value"]


@pytest.fixture(scope="session")
def data() -> AnalyticsData:
    return AnalyticsData(last_day=LAST_DAY, days=61, pages=8)


@pytest.fixture
def simulator(data: AnalyticsData) -> Iterator[MappAnalyticsSimulator]:
    with MappAnalyticsSimulator(data, calculation_seconds=0.05) as server:
        yield server


def make_env(simulator: MappAnalyticsSimulator, old_hosts: bool = False, **extra: Any) -> dict[str, str]:
    data = simulator.analytics
    env = {
        "SOURCES__WEBTREKK__ANALYTICS_BASE_URL": simulator.url + API_PREFIXES[1 if old_hosts else 0],
        "SOURCES__WEBTREKK__ANALYTICS_TOKEN_URL": simulator.url + TOKEN_PATHS[1 if old_hosts else 0],
        "SOURCES__WEBTREKK__ANALYTICS_CLIENT_ID": data.client_id,
        "SOURCES__WEBTREKK__ANALYTICS_CLIENT_SECRET": data.client_secret,
        "SOURCES__WEBTREKK__ANALYTICS_POLL_INITIAL_SECONDS": "0.02",
        "SOURCES__WEBTREKK__ANALYTICS_POLL_MAX_SECONDS": "0.1",
        "SOURCES__WEBTREKK__ANALYTICS_QUERIES": json.dumps([{"name": "browsers", "query": BROWSER_OS_QUERY}]),
    }
    for key, value in extra.items():
        env[f"SOURCES__WEBTREKK__{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@pytest.fixture
def loader(tmp_path: Path, simulator: MappAnalyticsSimulator) -> Callable[..., Loader]:
    def build(name: str = "load", **extra: Any) -> Loader:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return Loader("webtrekk", workdir, make_env(simulator, **extra))

    return build
