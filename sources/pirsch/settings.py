"""Pirsch API v1: what each statistics endpoint answers and which table it lands in.

Endpoints are declarations, not code: one resource factory in `__init__.py` turns each into a dlt resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sources.common.arrow import ColumnType
from sources.common.spec import VendorSpec
from sources.common.windows import WindowUnit

DEFAULT_BASE_URL = "https://api.pirsch.io"
API_PREFIX = "/api/v1"
TOKEN_CALLS_PER_MINUTE = 10  # per client: Pirsch refuses the 11th token request within a minute
PAGE_LIMIT = 100  # the API's hard maximum for `limit`
DEFAULT_LOOKBACK_DAYS = 3  # Pirsch restates today and yesterday
DEFAULT_HISTORY_DAYS = 30  # first run without start_date
# (domain, day) requests of one resource in flight at once: statistics endpoints have no documented rate limit,
# and one request waits ~100 ms on the network for ~10 ms of work (8: what a browser opens per host).
DEFAULT_WORKERS = 8
MAX_WORKERS = 16
SERIES_WINDOW: WindowUnit = "month"  # series endpoints answer one row per day, so one call covers a month

# Series answer one row per day for a whole range; breakdowns aggregate over from..to, so they are asked one
# day at a time and paged; objects answer one object per request (one per day).
Kind = Literal["series", "breakdown", "object"]

COUNTS: dict[str, ColumnType] = {"visitors": "bigint", "views": "bigint", "sessions": "bigint", "bounces": "bigint"}
VISITOR_SHARE: dict[str, ColumnType] = {"visitors": "bigint", "relative_visitors": "double"}


@dataclass(frozen=True)
class Endpoint:
    table: str
    path: str
    kind: Kind
    dimensions: dict[str, ColumnType] = field(default_factory=dict)
    metrics: dict[str, ColumnType] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    selected: bool = True  # False: loaded only when asked for (keywords need Search Console)


def _breakdown(table: str, path: str, dimensions: dict[str, ColumnType], metrics: dict[str, ColumnType]) -> Endpoint:
    return Endpoint(table, path, "breakdown", dimensions, metrics)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("visitors", "/statistics/visitor", "series", {}, {**COUNTS, "bounce_rate": "double"}),
    Endpoint(
        "session_durations", "/statistics/duration/session", "series", {}, {"average_time_spent_seconds": "bigint"}
    ),
    Endpoint("page_durations", "/statistics/duration/page", "series", {}, {"average_time_spent_seconds": "bigint"}),
    Endpoint(
        "pages",
        "/statistics/page",
        "breakdown",
        {"path": "text", "title": "text"},
        {
            **COUNTS,
            "relative_visitors": "double",
            "relative_views": "double",
            "bounce_rate": "double",
            "average_time_spent_seconds": "bigint",
        },
        params={"include_avg_time_on_page": "true"},
    ),
    _breakdown(
        "entry_pages",
        "/statistics/page/entry",
        {"path": "text", "title": "text"},
        {
            "visitors": "bigint",
            "sessions": "bigint",
            "entries": "bigint",
            "entry_rate": "double",
            "average_time_spent_seconds": "bigint",
        },
    ),
    _breakdown(
        "exit_pages",
        "/statistics/page/exit",
        {"path": "text", "title": "text"},
        {"visitors": "bigint", "sessions": "bigint", "exits": "bigint", "exit_rate": "double"},
    ),
    _breakdown(
        "referrers",
        "/statistics/referrer",
        {"referrer": "text", "referrer_name": "text"},
        {
            "referrer_icon": "text",
            "visitors": "bigint",
            "sessions": "bigint",
            "relative_visitors": "double",
            "bounces": "bigint",
            "bounce_rate": "double",
        },
    ),
    *(
        _breakdown(
            f"utm_{plural}",
            f"/statistics/utm/{name}",
            {f"utm_{name}": "text"},
            {"visitors": "bigint", "relative_visitors": "double"},
        )
        for name, plural in (
            ("source", "sources"),
            ("medium", "mediums"),
            ("campaign", "campaigns"),
            ("content", "contents"),
            ("term", "terms"),
        )
    ),
    _breakdown("languages", "/statistics/language", {"language": "text"}, VISITOR_SHARE),
    _breakdown("countries", "/statistics/country", {"country": "text"}, VISITOR_SHARE),
    _breakdown("cities", "/statistics/city", {"city": "text"}, VISITOR_SHARE),
    _breakdown("operating_systems", "/statistics/os", {"os": "text"}, VISITOR_SHARE),
    _breakdown("os_versions", "/statistics/os/version", {"os": "text", "os_version": "text"}, VISITOR_SHARE),
    _breakdown("browsers", "/statistics/browser", {"browser": "text"}, VISITOR_SHARE),
    _breakdown(
        "browser_versions", "/statistics/browser/version", {"browser": "text", "browser_version": "text"}, VISITOR_SHARE
    ),
    _breakdown("screen_classes", "/statistics/screen", {"screen_class": "text"}, VISITOR_SHARE),
    Endpoint(
        "platforms",
        "/statistics/platform",
        "object",
        {},
        {
            "platform_desktop": "bigint",
            "platform_mobile": "bigint",
            "platform_unknown": "bigint",
            "relative_platform_desktop": "double",
            "relative_platform_mobile": "double",
            "relative_platform_unknown": "double",
        },
    ),
    _breakdown("hours", "/statistics/hours", {"hour": "bigint"}, {**COUNTS, "bounce_rate": "double"}),
    _breakdown(
        "events",
        "/statistics/events",
        {"name": "text"},
        {
            "visitors": "bigint",
            "views": "bigint",
            "cr": "double",
            "average_duration_seconds": "bigint",
            "meta_keys": "json",
        },
    ),
    _breakdown(
        "event_list_entries",
        "/statistics/event/list",
        {"name": "text", "meta": "json"},
        {"visitors": "bigint", "count": "bigint"},
    ),
    _breakdown(
        "conversion_goals",
        "/statistics/goals",
        {"goal_id": "text"},
        {
            "name": "text",
            "path_pattern": "text",
            "pattern": "text",
            "visitors": "bigint",
            "views": "bigint",
            "cr": "double",
        },
    ),
    Endpoint(
        "keywords",
        "/statistics/keywords",
        "breakdown",
        {"keys": "json"},
        {"clicks": "bigint", "impressions": "bigint", "ctr": "double", "position": "double"},
        selected=False,
    ),
)

# Event metadata needs one request per event and meta key, so it is a transformer of `events`.
EVENT_METADATA_TABLE = "event_metadata"
EVENT_METADATA_PATH = "/statistics/event/meta"
EVENT_METADATA_DIMENSIONS: dict[str, ColumnType] = {"event_name": "text", "meta_key": "text", "meta_value": "text"}
EVENT_METADATA_METRICS: dict[str, ColumnType] = {
    "visitors": "bigint",
    "views": "bigint",
    "cr": "double",
    "average_duration_seconds": "bigint",
}

DOMAIN_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "hostname": "text",
    "subdomain": "text",
    "timezone": "text",
    "public": "bool",
    "group_by_title": "bool",
    "user_role": "text",
    "def_time": "timestamp",
    "mod_time": "timestamp",
}
GOAL_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "domain_id": "text",
    "name": "text",
    "path_pattern": "text",
    "pattern": "text",
    "visitor_goal": "bigint",
    "cr_goal": "double",
    "delete_reached": "bool",
    "email_reached": "bool",
    "def_time": "timestamp",
    "mod_time": "timestamp",
}

# Every statistics row carries these before its dimensions: the merge key is (domain_id, day, dimensions).
ROW_KEY: dict[str, ColumnType] = {"domain_id": "text", "day": "date"}
ROW_TIMEZONE: dict[str, ColumnType] = {"timezone": "text"}

RESOURCE_NAMES: tuple[str, ...] = (
    "domains",
    "goals",
    *(endpoint.table for endpoint in ENDPOINTS),
    EVENT_METADATA_TABLE,
)

VENDOR_SPEC = VendorSpec(
    name="pirsch",
    source="sources.pirsch:pirsch_source",
    check="sources.pirsch:check_connection",
    resources=RESOURCE_NAMES,
    summary="Pirsch date-range statistics per domain and day",
    preflight=("domains",),
)
