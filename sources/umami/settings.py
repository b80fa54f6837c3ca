"""Umami (self-hosted 2.x and 3.x, and Umami Cloud): metric types, report types and tables as declarations.

One resource factory in `__init__.py` turns the metric types into rows of one `metrics` table and each report
type into its own `report_<type>` table; the API names that differ between Umami 2 and 3 live here, not in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sources.common.arrow import ColumnType
from sources.common.spec import VendorSpec
from sources.common.windows import WindowUnit

CLOUD_BASE_URL = "https://api.umami.is/v1"
SELF_HOSTED_PREFIX = "/api"  # self-hosted paths are /api/...; Cloud's base already ends in /v1
CLOUD_API_KEY_HEADER = "x-umami-api-key"
CLOUD_RATE_LIMITS: list[list[float]] = [[50, 15]]  # 50 calls per 15 s per key
API_VERSIONS = ("auto", "2", "3")
ApiVersion = Literal["2", "3"]

DEFAULT_LOOKBACK_DAYS = 2  # today is still filling up; yesterday's last hour lands late
DEFAULT_HISTORY_DAYS = 30  # first run without start_date
WEBSITES_PAGE_SIZE = 100
REPORTS_PAGE_SIZE = 100
METRICS_PAGE_LIMIT = 500  # Umami's default limit for metrics
ROWS_PAGE_SIZE = 200  # sessions / events
# `unit=day` is silently replaced by a coarser unit for spans longer than about 7 months: month windows are safe.
SERIES_WINDOW: WindowUnit = "month"
# endAt of row-level paging is pinned this far in the past, so events still being written cannot shift pages.
PIN_MARGIN_SECONDS = 60
REPORT_WINDOWS: tuple[WindowUnit, ...] = ("day", "week", "month")


@dataclass(frozen=True)
class MetricType:
    """One `metrics?type=` value. `name` is what lands in the `type` column whatever the server version."""

    name: str
    v2: str | None  # the API's name in Umami 2 (None: not offered there)
    v3: str | None

    def api_name(self, version: ApiVersion) -> str | None:
        return self.v2 if version == "2" else self.v3


def _same(*names: str) -> tuple[MetricType, ...]:
    return tuple(MetricType(name, name, name) for name in names)


METRIC_TYPES: tuple[MetricType, ...] = (
    MetricType("path", "url", "path"),  # Umami 3 renamed url → path
    *_same("entry", "exit", "referrer"),
    MetricType("domain", None, "domain"),
    *_same("title", "query", "event", "tag"),
    MetricType("hostname", "host", "hostname"),
    *_same("browser", "os", "device", "screen", "language", "country", "region", "city"),
    *_same("channel"),  # Umami 2 lists every channel, zeros included, and `direct`; Umami 3 neither
    # Umami 2 has no UTM metric types: its `utm` report (table report_utm) carries the same numbers.
    MetricType("utm_source", None, "utmSource"),
    MetricType("utm_medium", None, "utmMedium"),
    MetricType("utm_campaign", None, "utmCampaign"),
    MetricType("utm_content", None, "utmContent"),
    MetricType("utm_term", None, "utmTerm"),
)


# -- tables ------------------------------------------------------------------------------------------------
WEBSITE_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "name": "text",
    "domain": "text",
    "share_id": "text",
    "team_id": "text",
    "user_id": "text",
    "reset_at": "timestamp",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
DAY_KEY: dict[str, ColumnType] = {"website_id": "text", "day": "date"}
STATS_COLUMNS: dict[str, ColumnType] = {
    **DAY_KEY,
    "timezone": "text",
    "pageviews": "bigint",
    "visitors": "bigint",
    "visits": "bigint",
    "bounces": "bigint",
    "totaltime": "bigint",
}
PAGEVIEWS_COLUMNS: dict[str, ColumnType] = {**DAY_KEY, "timezone": "text", "pageviews": "bigint", "sessions": "bigint"}
METRICS_COLUMNS: dict[str, ColumnType] = {
    **DAY_KEY,
    "type": "text",
    "value": "text",
    "timezone": "text",
    "total": "bigint",
}
SESSION_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "website_id": "text",
    "day": "date",
    "created_at": "timestamp",
    "first_at": "timestamp",
    "last_at": "timestamp",
    "hostname": "text",
    "browser": "text",
    "os": "text",
    "device": "text",
    "screen": "text",
    "language": "text",
    "country": "text",
    "region": "text",
    "city": "text",
    "visits": "bigint",
    "views": "bigint",
}
EVENT_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "website_id": "text",
    "session_id": "text",
    "day": "date",
    "created_at": "timestamp",
    "event_type": "bigint",
    "event_name": "text",
    "hostname": "text",
    "url_path": "text",
    "url_query": "text",
    "page_title": "text",
    "referrer_domain": "text",
    "referrer_path": "text",
    "referrer_query": "text",
    "country": "text",
    "city": "text",
    "device": "text",
    "os": "text",
    "browser": "text",
    "has_data": "bool",
}
EVENT_DATA_COLUMNS: dict[str, ColumnType] = {
    "event_id": "text",
    "data_key": "text",
    "website_id": "text",
    "day": "date",
    "data_type": "bigint",
    "string_value": "text",
    "number_value": "double",
    "date_value": "timestamp",
    "created_at": "timestamp",
}
# Column comments (dlt `description` hints) where Umami 2 and Umami 3 mean different things by the same column.
DEVICE = (
    "desktop or laptop: Umami 2 tells them apart by screen width (1920 px and wider: desktop), Umami 3.1 calls "
    "every desktop 'laptop'; mobile, tablet"
)
SESSION_DESCRIPTIONS = {
    "created_at": (
        "Umami's createdAt of the session list: the session's latest event in the window, on Umami 2 and 3 alike. "
        "Umami 2 stores the session itself at the moment its first hit arrived, even for back-dated hits (so its "
        "retention report has no cohort for them); Umami 3 back-dates the session too"
    ),
    "first_at": "the session's first event in the window",
    "last_at": "the session's latest event in the window",
    "day": "the window the session was read in: a session with events on two days lands on the later one",
    "device": DEVICE,
    "views": "pageviews in the window",
}
EVENT_DESCRIPTIONS = {"device": DEVICE + " (Umami 3 only)"}
METRICS_DESCRIPTIONS = {
    "value": (
        "the metric's value. type query: Umami 2 adds a '' row for pages seen without a query string, Umami 3 does "
        "not. type channel: Umami 2 lists all 14 channels, zeros included, and counts `direct`; Umami 3 leaves out "
        "zeros and `direct`. type device: " + DEVICE
    ),
    "total": "distinct sessions (type event: custom events); 0 only in Umami 2's channel list",
}
REPORT_COLUMNS: dict[str, ColumnType] = {
    "id": "text",
    "website_id": "text",
    "type": "text",
    "name": "text",
    "description": "text",
    "parameters": "json",
    "user_id": "text",
    "source": "text",  # "saved" (from Umami) or "config" (declared in sources.umami.reports)
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
# Every report result row starts with these; the key is (report_id, website_id, window_start, <row key>).
REPORT_ROW_KEY: dict[str, ColumnType] = {"report_id": "text", "website_id": "text", "window_start": "date"}
REPORT_ROW_CONTEXT: dict[str, ColumnType] = {
    "report_name": "text",
    "window_end": "date",
    "timezone": "text",
    "day": "date",  # = window_end: the incremental cursor
}


@dataclass(frozen=True)
class ReportType:
    """One report type: its API names per version, its table and how its answer becomes rows (`shape`)."""

    name: str  # the table is report_<name>; Umami 3's name
    v2: str | None
    v3: str | None
    key: dict[str, ColumnType]
    values: dict[str, ColumnType] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)  # column comments

    @property
    def table(self) -> str:
        return f"report_{self.name}"

    def api_name(self, version: ApiVersion) -> str | None:
        return self.v2 if version == "2" else self.v3


PERCENTILES: dict[str, ColumnType] = {"metric": "text", "p50": "double", "p75": "double", "p95": "double"}
VITALS: dict[str, ColumnType] = {
    "lcp": "double",
    "inp": "double",
    "cls": "double",
    "fcp": "double",
    "ttfb": "double",
    "count": "bigint",
    **PERCENTILES,
}
STEPS: dict[str, ColumnType] = {f"step_{i}": "text" for i in range(1, 8)}
REPORT_TYPES: tuple[ReportType, ...] = (
    ReportType(
        "utm",
        "utm",
        "utm",
        {"parameter": "text", "value": "text"},
        {"views": "bigint"},
        {"views": "pageviews; Umami 2 answers raw query strings, summed here per value as its dashboard does"},
    ),
    ReportType(
        "revenue",
        "revenue",
        "revenue",
        {"section": "text", "label": "text", "currency": "text"},
        {
            "t": "timestamp",
            "event_name": "text",
            "sum": "double",
            "count": "bigint",
            "unique_count": "bigint",
            "total_sessions": "bigint",
            "average": "double",
            "arpu": "double",
        },
        {
            "section": (
                "chart, country, total, table (Umami 2); chart, country, region, referrer, channel, total and "
                "comparison (the previous period's total; Umami 3)"
            ),
            "label": "chart: bucket and event name; table: currency; else the country, region, referrer or channel",
            "total_sessions": "Umami 3 only: sessions in the window, the base of arpu",
        },
    ),
    ReportType(
        "journey",
        "journey",
        "journey",
        {"items": "json"},
        {**STEPS, "count": "bigint"},
    ),
    ReportType(
        "retention",
        "retention",
        "retention",
        {"date": "date", "day_number": "bigint"},
        {"visitors": "bigint", "return_visitors": "bigint", "percentage": "double"},
        {"date": "cohort day; Umami 2 files back-dated visitors under the day their first hit arrived"},
    ),
    ReportType(
        "breakdown",
        "insights",  # Umami 2's name
        "breakdown",
        {"dimensions": "json"},
        {"views": "bigint", "visitors": "bigint", "visits": "bigint", "bounces": "bigint", "totaltime": "bigint"},
        {"dimensions": "the field values of the row, named as Umami 3 names them (path, hostname)"},
    ),
    ReportType(
        "goal",
        "goals",  # Umami 2: several goals per report, each with a target; Umami 3: one goal, {num, total}
        "goal",
        {"goal_type": "text", "goal_value": "text"},
        {"goal": "bigint", "result": "bigint", "total": "bigint"},
        {
            "goal_type": "path (Umami 2 says url), event, or event-data",
            "goal": "the target declared with the goal (Umami 3 keeps none)",
            "result": (
                "Umami 2: matching events (a path goal counts pageviews and custom events on the path); "
                "Umami 3: sessions that reached the goal"
            ),
            "total": "Umami 3 only: sessions in the window",
        },
    ),
    ReportType(
        "funnel",
        "funnel",
        "funnel",
        {"step": "bigint"},
        {
            "step_type": "text",
            "step_value": "text",
            "visitors": "bigint",
            "previous": "bigint",
            "dropped": "bigint",
            "dropoff": "double",
            "remaining": "double",
        },
        {"step_type": "path (Umami 2 says url) or event"},
    ),
    ReportType(
        "attribution",
        "attribution",
        "attribution",
        {"channel": "text", "label": "text"},
        {"value": "bigint", "revenue": "double"},
        {
            "label": "the referrer, ad network or UTM value; '' (Umami 2 only): conversions without one",
            "value": "converting sessions (empty where Umami 2 answered revenue)",
            "revenue": "Umami 2 with a currency: the revenue of the conversions; Umami 3 answers sessions instead",
        },
    ),
    ReportType(
        "performance",
        None,
        "performance",
        {"section": "text", "label": "text"},
        VITALS,
        {
            "section": "chart, summary, pages, pageTitles, devices, browsers",
            "label": "chart: the bucket; summary: the vital; otherwise the page, title, device or browser",
            "metric": "the vital p50, p75 and p95 describe (chart and breakdowns: the report's metric, lcp by default)",
            "lcp": "on a summary row of that vital: its 75th percentile (likewise inp, cls, fcp, ttfb)",
        },
    ),
)
REPORT_TYPE_BY_API_NAME = {
    api: report for report in REPORT_TYPES for api in (report.v2, report.v3, report.name) if api is not None
}

RESOURCE_NAMES: tuple[str, ...] = (
    "websites",
    "website_stats",
    "pageviews",
    "metrics",
    "sessions",
    "events",
    "event_data",
    "reports",
    *(report.table for report in REPORT_TYPES),
)

VENDOR_SPEC = VendorSpec(
    name="umami",
    source="sources.umami:umami_source",
    check="sources.umami:check_connection",
    resources=RESOURCE_NAMES,
    summary="Umami 2/3 and Umami Cloud: daily stats, metrics, sessions, events and report results per website",
    preflight=("websites",),
)
