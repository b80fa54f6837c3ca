"""Webtrekk JSON-RPC test helpers: the simulator's settings as SOURCES__WEBTREKK__* variables, limits generous
enough for tests that are not about rate limiting, and the analyses the tests declare."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from simulators.webtrekk import ENDPOINT, WebtrekkSimulator

LAST_DAY = dt.date(2026, 11, 20)
# Generous limits for tests that are not about rate limiting: the client's and the server's agree.
FAST_LIMITS = [(1000, 1.0), (20000, 60.0)]


def make_env(simulator: WebtrekkSimulator, limits: Any = FAST_LIMITS, **extra: Any) -> dict[str, str]:
    """The variables that point the source at `simulator`; `extra` adds settings by name (JSON unless text)."""
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
