from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.webtrekk import ENDPOINT, WebtrekkData, WebtrekkSimulator
from tests.support import Loader

LAST_DAY = dt.date(2026, 11, 20)
# Generous limits for tests that are not about rate limiting: the client's and the server's agree.
FAST_LIMITS = [(1000, 1.0), (20000, 60.0)]


@pytest.fixture(scope="session")
def data() -> WebtrekkData:
    return WebtrekkData(days=20, last_day=LAST_DAY)


@pytest.fixture
def simulator(data: WebtrekkData) -> Iterator[WebtrekkSimulator]:
    server = WebtrekkSimulator(data, rate_limits=FAST_LIMITS)
    with server:
        yield server


def make_env(simulator: WebtrekkSimulator, limits: Any = FAST_LIMITS, **extra: Any) -> dict[str, str]:
    data = simulator.data
    env = {
        "SOURCES__WEBTREKK__BASE_URL": simulator.url + ENDPOINT,
        "SOURCES__WEBTREKK__CUSTOMER_ID": data.customer_id,
        "SOURCES__WEBTREKK__LOGIN": data.login,
        "SOURCES__WEBTREKK__PASSWORD": data.password,
        "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([list(pair) for pair in limits]),
    }
    for key, value in extra.items():
        env[f"SOURCES__WEBTREKK__{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@pytest.fixture
def loader(tmp_path: Path, simulator: WebtrekkSimulator) -> Callable[..., Loader]:
    def build(name: str = "load", limits: Any = FAST_LIMITS, **extra: Any) -> Loader:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return Loader("webtrekk", workdir, make_env(simulator, limits, **extra))

    return build


PAGES_ANALYSIS = {
    "name": "pages",
    "row_limit": 60,
    "config": {
        "analysisObjects": [{"title": "Pages"}],
        "metrics": [{"title": "Page Impressions"}, {"title": "Visitors"}],
    },
}
PIVOT_ANALYSIS = {
    "name": "browser_pages",
    "row_limit": 100,
    "config": {
        "analysisObjects": [{"title": "Browsers"}, {"title": "Pages", "alias": "Page"}],
        "metrics": [{"title": "Visits"}],
    },
}
DAYS_ANALYSIS = {
    "name": "browser_days",
    "config": {"analysisObjects": [{"title": "Days"}, {"title": "Browsers"}], "metrics": ["Page Impressions"]},
}
