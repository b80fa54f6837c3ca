"""Mapp Analytics test helpers: the simulator's settings as SOURCES__WEBTREKK__ANALYTICS_* variables (fast polls),
and the two-dimension query the tests load, shaped as the Mapp UI copies it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from simulators.webtrekk_analytics import API_PREFIXES, TOKEN_PATHS, WebtrekkAnalyticsSimulator

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


def make_env(simulator: WebtrekkAnalyticsSimulator, old_hosts: bool = False, **extra: Any) -> dict[str, str]:
    """The variables that point the Analytics API part of the source at `simulator` (the old hosts' paths with
    `old_hosts`), with one query: `analytics_browsers`; `extra` adds settings by name (JSON unless text)."""
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
