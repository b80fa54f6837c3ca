"""Mapp Analytics (the Mapp Intelligence REST Analytics API): hosts, enums of the query object, statuses, defaults.

See docs/webtrekk_analytics.md and the vendor note (mapp-analytics-api-notes.md) for where each value comes from.
"""

from __future__ import annotations

from sources.common.windows import WindowUnit

# Since 2026-06 the API answers on api.mapp.com and tokens come from auth.mapp.com; the old host
# (intelligence.eu.mapp.com/analytics/api, token at .../oauth/token) still works and redirects.
DEFAULT_ANALYTICS_BASE_URL = "https://api.mapp.com/api/analytics"
DEFAULT_ANALYTICS_TOKEN_URL = "https://auth.mapp.com/oauth2/token"
OLD_ANALYTICS_BASE_URL = "https://intelligence.eu.mapp.com/analytics/api"
OLD_ANALYTICS_TOKEN_URL = "https://intelligence.eu.mapp.com/analytics/api/oauth/token"
# The old token endpoint wanted this scope; the new one is said to reject any scope, so none is sent by default.
LEGACY_SCOPE = "mapp.intelligence-api"
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600.0  # when the token answer has no expires_in
LABEL = "webtrekk analytics"  # how messages and logs name the API

DEFAULT_ANALYTICS_WINDOW: WindowUnit = "day"
DEFAULT_ANALYTICS_CONCURRENCY = 2
MAX_ANALYTICS_CONCURRENCY = 16
# Polling a queued calculation: first wait, growth factor, longest wait, and the bound on the whole wait.
DEFAULT_POLL_INITIAL_SECONDS = 1.0
DEFAULT_POLL_MAX_SECONDS = 30.0
DEFAULT_POLL_TIMEOUT_SECONDS = 1800.0
POLL_FACTOR = 1.5
DEFAULT_ANALYTICS_LANGUAGE = "en"
ANALYTICS_LANGUAGES = ("en", "de")

# The fixed time filter clickhaul puts in every query: value1 inclusive, value2 exclusive.
TIME_RANGE_FILTER = "time_range"
TIME_FILTER_NAMES = frozenset({"time_range", "time_dynamic"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

RESULT_TYPE = "DATA_ONLY"
TABLE_VARIANTS = ("LIST", "PIVOT", "PIVOT_AS_LIST", "COMPARISON")
COLUMN_SCOPES = ("OBJECT", "NONE")
CONTEXTS = ("VISITOR", "SESSION", "PAGE", "ACTION", "ATOMIC", "NONE")
SORT_DIRECTIONS = ("ASCENDING", "DESCENDING")
COLUMN_PERIODS = ("ANALYSIS", "COLUMN", "ELEMENT")
FILTER_PREDICATES = (
    "EQUAL",
    "UNEQUAL",
    "LESS",
    "LESSEQUAL",
    "GREATER",
    "GREATEREQUAL",
    "BETWEEN",
    "LIKE",
    "NOT_LIKE",
)
CONNECTORS = ("AND", "OR")
KPI_TYPES = ("KPI", "SPARKLINE")

# Query states: INITIATED and RUNNING are polled; SUCCESS has a result; FAILED and ABORTED end the run.
PENDING_STATES = frozenset({"INITIATED", "RUNNING"})
SUCCESS_STATE = "SUCCESS"
FAILED_STATES = frozenset({"FAILED", "ABORTED"})

INVALID_TOKEN = "INVALID_TOKEN"
TOTAL_MARKER = "0000000000"  # the dimension value of a KPI's Total row

ANALYTICS_PREFIX = "analytics_"
ANALYTICS_METADATA_RESOURCES: tuple[str, ...] = (
    "analytics_query_objects",
    "analytics_segments",
    "analytics_dynamic_timefilters",
)
# Keys an `analytics_queries` / `analytics_reports` entry may have; anything else is a typo.
QUERY_KEYS = frozenset({"name", "query", "queryObject"})
REPORT_KEYS = frozenset({"name", "report", "id", "configuration", "element_ids", "elementIds"})
