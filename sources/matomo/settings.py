"""Matomo as a source: the tables, their columns and keys, and the daily reports as declarations.

One resource factory in `__init__.py` turns each `Report` into a dlt resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sources.common.arrow import ColumnType, TableSpec
from sources.common.spec import VendorSpec

DEFAULT_LOOKBACK_DAYS = 2  # visits continue, back-dated hits arrive, and today's archive changes
DEFAULT_HISTORY_DAYS = 30  # first run without start_date
# Visits per Live.getLastVisitsDetails page. A site-day that fits one page is read in one request, an atomic
# snapshot; a bigger one is paged and then checked against one id listing of the day (see `VisitReader`).
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
DEFAULT_WORKERS = 4  # (site, day) windows of a resource in flight at once
MAX_WORKERS = 16
ID_CHUNK = 100  # visits fetched by id per request (a segment `visitId==a,visitId==b,...`)

SITE_KEY: dict[str, ColumnType] = {"site_id": "bigint"}
DAY_KEY: dict[str, ColumnType] = {"site_id": "bigint", "day": "date"}
TIMEZONE: dict[str, ColumnType] = {"timezone": "text"}
TRUNCATED: dict[str, ColumnType] = {"is_truncated": "bool"}

SITES = TableSpec(
    {
        **SITE_KEY,
        "name": "text",
        "main_url": "text",
        "timezone": "text",
        "currency": "text",
        "ecommerce": "bool",
        "sitesearch": "bool",
        "ts_created": "timestamp",
        "type": "text",
        "group": "text",
    },
    ("site_id",),
)
GOAL_DEFINITIONS = TableSpec(
    {
        **SITE_KEY,
        "goal_id": "bigint",
        "name": "text",
        "description": "text",
        "match_attribute": "text",
        "pattern": "text",
        "pattern_type": "text",
        "case_sensitive": "bool",
        "allow_multiple": "bool",
        "revenue": "double",
        "deleted": "bool",
    },
    ("site_id", "goal_id"),
)

# Live.getLastVisitsDetails, one row per visit (field names snake_cased); fields not declared here land as text.
VISITS = TableSpec(
    {
        **SITE_KEY,
        "id_visit": "bigint",
        "day": "date",  # of the last action, in the site's timezone (the day Matomo's reports count it on)
        **TIMEZONE,
        "first_action_time": "timestamp",
        "last_action_time": "timestamp",
        "visitor_id": "text",
        "user_id": "text",
        "visit_ip": "text",
        "fingerprint": "text",
        "visit_duration": "bigint",
        "actions": "bigint",
        "interactions": "bigint",
        "events": "bigint",
        "searches": "bigint",
        "goal_conversions": "bigint",
        "visit_converted": "bigint",
        "visit_count": "bigint",
        "visitor_type": "text",
        "visit_ecommerce_status": "text",
        "days_since_first_visit": "bigint",
        "seconds_since_first_visit": "bigint",
        "days_since_last_visit": "bigint",
        "seconds_since_last_visit": "bigint",
        "referrer_type": "text",
        "referrer_name": "text",
        "referrer_keyword": "text",
        "referrer_url": "text",
        "device_type": "text",
        "operating_system_name": "text",
        "browser_name": "text",
        "country_code": "text",
        "region_code": "text",
        "city": "text",
        "latitude": "double",
        "longitude": "double",
        "first_action_timestamp": "bigint",
        "last_action_timestamp": "bigint",
        "server_timestamp": "bigint",
        "site_currency": "text",
    },
    ("site_id", "id_visit"),
)
# Each entry of a visit's actionDetails, typed for every kind Matomo writes there.
ACTIONS = TableSpec(
    {
        **SITE_KEY,
        "id_visit": "bigint",
        "position": "bigint",  # 1-based place in the visit (pageviewPosition repeats for a page's events)
        "day": "date",  # of the action, in the site's timezone
        "timestamp": "timestamp",
        "visit_last_action_time": "timestamp",  # which reading of the visit this row comes from
        "type": "text",  # action, download, outlink, event, search, goal, ecommerceOrder, ecommerceAbandonedCart
        "url": "text",
        "page_title": "text",
        "page_id_action": "bigint",
        "idpageview": "text",
        "page_id": "bigint",
        "time_spent": "bigint",
        "pageview_position": "bigint",
        "title": "text",
        "subtitle": "text",
        "event_category": "text",
        "event_action": "text",
        "event_name": "text",
        "event_value": "double",
        "site_search_keyword": "text",
        "site_search_category": "text",
        "site_search_count": "bigint",
        "goal_id": "bigint",
        "goal_name": "text",
        "revenue": "double",
        "order_id": "text",
        "items": "bigint",
        "item_details": "json",
        "generation_time_milliseconds": "bigint",
    },
    ("site_id", "id_visit", "position"),
)
# Which reading of a visit wins when one run reads it twice (it moved to the next day while being read).
VISITS_NEWEST = "last_action_time"
ACTIONS_NEWEST = "visit_last_action_time"

VISIT_METRICS: dict[str, ColumnType] = {
    "nb_uniq_visitors": "bigint",
    "nb_visits": "bigint",
    "nb_actions": "bigint",
    "nb_users": "bigint",
    "max_actions": "bigint",
    "sum_visit_length": "bigint",
    "bounce_count": "bigint",
    "nb_visits_converted": "bigint",
}
ENTRY_METRICS: dict[str, ColumnType] = {
    "entry_nb_uniq_visitors": "bigint",
    "entry_nb_visits": "bigint",
    "entry_nb_actions": "bigint",
    "entry_sum_visit_length": "bigint",
    "entry_bounce_count": "bigint",
}
EXIT_METRICS: dict[str, ColumnType] = {"exit_nb_uniq_visitors": "bigint", "exit_nb_visits": "bigint"}
PATH: dict[str, ColumnType] = {"path": "text"}  # the page's URL path (and query): the row's key
LABEL: dict[str, ColumnType] = {"label": "text"}

Kind = Literal["rows", "object"]
ALL_ROWS = {"filter_limit": "-1"}  # the API's default is 100 rows
# Page reports are trees (folders of paths): flat=1 gives one row per page with its whole path. Events are not
# flattened: their subtables (a category's actions) would come back as "category - action" rows.
FLAT = {**ALL_ROWS, "flat": "1"}


@dataclass(frozen=True)
class Report:
    """One daily report table: each (site, day) is asked of every `methods` entry (method, constant columns)."""

    table: str
    methods: tuple[tuple[str, dict[str, str]], ...]
    dimensions: dict[str, ColumnType]
    metrics: dict[str, ColumnType]
    kind: Kind = "rows"
    params: dict[str, str] = field(default_factory=lambda: dict(ALL_ROWS))
    optional: bool = False  # its plugin may be off: "method does not exist" then means no rows, not an error

    @property
    def spec(self) -> TableSpec:
        columns = {**DAY_KEY, **self.dimensions, **TIMEZONE, **self.metrics}
        if self.kind == "rows":
            columns |= TRUNCATED
        return TableSpec(columns, (*DAY_KEY, *self.dimensions))


def _single(method: str) -> tuple[tuple[str, dict[str, str]], ...]:
    return ((method, {}),)


REPORTS: tuple[Report, ...] = (
    Report(
        "visits_summary",
        _single("VisitsSummary.get"),
        {},
        {
            **{name: kind for name, kind in VISIT_METRICS.items() if name != "nb_users"},
            "nb_users": "bigint",
            "bounce_rate": "double",
            "nb_actions_per_visit": "double",
            "avg_time_on_site": "bigint",
            "is_final": "bool",  # the archive matched the raw visits of a day before yesterday: not re-read
        },
        kind="object",
        params={},
    ),
    Report(
        "pages",
        _single("Actions.getPageUrls"),
        PATH,
        {
            **LABEL,
            "url": "text",
            "nb_visits": "bigint",
            "nb_uniq_visitors": "bigint",
            "nb_hits": "bigint",
            "sum_time_spent": "bigint",
            **ENTRY_METRICS,
            **EXIT_METRICS,
            "avg_time_on_page": "bigint",
            "avg_page_load_time": "double",
            "bounce_rate": "double",
            "exit_rate": "double",
        },
        params=FLAT,
    ),
    Report(
        "entry_pages", _single("Actions.getEntryPageUrls"), PATH, {**LABEL, "url": "text", **ENTRY_METRICS}, params=FLAT
    ),
    Report(
        "exit_pages", _single("Actions.getExitPageUrls"), PATH, {**LABEL, "url": "text", **EXIT_METRICS}, params=FLAT
    ),
    Report("referrers", _single("Referrers.getAll"), {"referrer_type": "bigint", **LABEL}, VISIT_METRICS),
    Report(
        "events",
        (
            ("Events.getCategory", {"dimension": "category"}),
            ("Events.getAction", {"dimension": "action"}),
            ("Events.getName", {"dimension": "name"}),
        ),
        {"dimension": "text", **LABEL},
        {
            "nb_uniq_visitors": "bigint",
            "nb_visits": "bigint",
            "nb_events": "bigint",
            "nb_events_with_value": "bigint",
            "sum_event_value": "double",
            "min_event_value": "double",
            "max_event_value": "double",
            "avg_event_value": "double",
        },
        optional=True,
    ),
    Report(
        "goals",
        _single("Goals.get"),
        {},
        {"nb_conversions": "bigint", "nb_visits_converted": "bigint", "revenue": "double", "conversion_rate": "double"},
        kind="object",
        params={},
        optional=True,
    ),
    Report("devices", _single("DevicesDetection.getType"), LABEL, VISIT_METRICS, optional=True),
    Report("countries", _single("UserCountry.getCountry"), LABEL, {"code": "text", **VISIT_METRICS}, optional=True),
)
SUMMARY_TABLE = "visits_summary"

RESOURCE_NAMES: tuple[str, ...] = ("sites", "goal_definitions", "visits", *(report.table for report in REPORTS))

VENDOR_SPEC = VendorSpec(
    name="matomo",
    source="sources.matomo:matomo_source",
    check="sources.matomo:check_connection",
    resources=RESOURCE_NAMES,  # `visits` writes `actions` too
    summary="Matomo: raw visits and their actions, and daily reports per site (read side of the Matomo push)",
    preflight=("sites",),
)
