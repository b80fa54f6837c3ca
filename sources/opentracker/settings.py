"""Opentracker sessions API: the endpoints, the ~70 session fields with their column names and types, and the
documented filters with their API names. Declarations only; `client.py` and `__init__.py` use them."""

from __future__ import annotations

from sources.common.arrow import ColumnType
from sources.common.spec import VendorSpec

DEFAULT_BASE_URL = "https://api.opentracker.net/api/views/"
SESSIONS_PATH = "c_view_session.jsp"
SESSIONS_BY_USER_PATH = "c_view_sessions_by_user.jsp"
# The ticket endpoint lives beside `views/`: https://api.opentracker.net/api/management/login_user.jsp
TICKET_PATH = "../management/login_user.jsp"

PAGE_LIMIT = 1000  # the API's maximum `limit` for sessions
BY_USER_LIMIT = 10000  # ... and for sessions by user
DATA_TYPE = "jsondatatable"  # the only format that carries `nextToken`
DEFAULT_LOOKBACK_DAYS = 2  # sessions still open at the last run get their final end, pages and status
DEFAULT_HISTORY_DAYS = 7  # first run without start_date
DEFAULT_TICKET_SECONDS = 3600  # the API's own default is 60 s
DEFAULT_WORKERS = 4  # windows fetched at once

TABLE = "sessions"
BY_USER_TABLE = "sessions_by_user"
DAY_COLUMN = "day"  # local day (in `timezone`) of the session start: the incremental cursor
SESSION_ID = "session_id"
SESSION_START = "session_start_unix_timestamp"

# (API field, column, type), in the order the API documents them. Every cell arrives as a string: the
# `*_unix_timestamp` fields (epoch ms) become UTC timestamps; the display strings (`lastEvent`, `duration`,
# `firstMeasurement`) follow `timeZone`/`locale` and stay text with a `_label` suffix.
FIELDS: tuple[tuple[str, str, ColumnType], ...] = (
    ("lastEvent", "last_event_label", "text"),
    ("duration", "duration_label", "text"),
    ("status", "status", "text"),
    ("flag", "flag", "text"),
    ("country", "country", "text"),
    ("visits_pageviews", "visits_pageviews", "text"),  # "16 (2)": visits (pageviews), a label
    ("currentPage", "current_page", "text"),
    ("area", "area", "text"),
    ("area_code", "area_code", "text"),
    ("browser", "browser", "text"),
    ("browser_version", "browser_version", "text"),
    ("city", "city", "text"),
    ("company_org", "company_org", "text"),
    ("connection", "connection", "text"),
    ("country_code", "country_code", "text"),
    ("country_name", "country_name", "text"),
    ("currentTitle", "current_title", "text"),
    ("currentVisitDuration", "current_visit_duration_label", "text"),
    ("dma_code", "dma_code", "text"),
    ("email", "email", "text"),
    ("entryPage", "entry_page", "text"),
    ("entry_query", "entry_query", "text"),
    ("entry_root_url", "entry_root_url", "text"),
    ("entry_title", "entry_title", "text"),
    ("eventUnixTimestamp", "last_event", "timestamp"),
    ("event_id", "event_id", "text"),
    ("exit_query_id", "exit_query_id", "text"),
    ("exit_root_url", "exit_root_url", "text"),
    ("exit_title", "exit_title", "text"),
    ("firstMeasurement", "first_measurement_label", "text"),
    ("first_session_unix_timestamp", "first_session", "timestamp"),
    ("inet_aton", "inet_aton", "bigint"),  # the IPv4 address as a number
    ("ip_number", "ip_number", "text"),
    ("isp", "isp", "text"),
    ("isp_org", "isp_org", "text"),
    ("latitude", "latitude", "double"),
    ("longitude", "longitude", "double"),
    ("machine_id", "machine_id", "text"),
    ("machine_idx", "machine_idx", "text"),
    ("number_of_pages_viewed", "number_of_pages_viewed", "bigint"),
    ("number_visits", "number_visits", "bigint"),
    ("pages_viewed", "pages_viewed", "bigint"),
    ("platform", "platform", "text"),
    ("postal_code", "postal_code", "text"),
    ("provider", "provider", "text"),
    ("referrer", "referrer", "text"),
    ("referrersLogo", "referrers_logo", "text"),
    ("region", "region", "text"),
    ("region_code", "region_code", "text"),
    ("resolution", "resolution", "text"),
    ("rnd", "rnd", "text"),
    ("search", "search", "text"),
    ("session_end_unix_timestamp", "session_end", "timestamp"),
    ("session_id", "session_id", "text"),
    ("session_referrer", "session_referrer", "text"),
    ("session_referrer_hostname", "session_referrer_hostname", "text"),
    ("session_referrer_unix_timestamp", "session_referrer_time", "timestamp"),
    ("session_search", "session_search", "text"),
    ("session_start_unix_timestamp", "session_start", "timestamp"),
    ("site", "site", "text"),
    ("timezone", "timezone", "text"),
    ("total_duration", "total_duration", "text"),  # empty in every sample; kept as the API's text
    ("total_number_visits", "total_number_visits", "bigint"),
    ("total_pages_viewed", "total_pages_viewed", "bigint"),
    ("type", "type", "text"),
    ("use_id", "use_id", "text"),
    ("user_status", "user_status", "text"),
    ("visit_id", "visit_id", "text"),
    ("zipCode", "zip_code", "text"),
    # Added by the API when excludeInFilteredCompany, includeCountryCode, excludeInUrl or maxEventThreshold is set.
    ("filtered_company", "filtered_company", "text"),
)
API_FIELDS: frozenset[str] = frozenset(api for api, _, _ in FIELDS)

# The table: the day cursor first, then every field. Fields the API adds that are not listed here are kept
# as text columns (snake_case names) rather than dropped.
SESSION_COLUMNS: dict[str, ColumnType] = {DAY_COLUMN: "date", **{column: kind for _, column, kind in FIELDS}}

# Documented filters and display options: snake_case config key -> API parameter.
FILTERS: dict[str, str] = {
    "include_country_code": "includeCountryCode",
    "exclude_in_url": "excludeInUrl",
    "exclude_in_filtered_company": "excludeInFilteredCompany",
    "max_event_threshold": "maxEventThreshold",
    "max_duration": "maxDuration",
    "remove_isp": "removeIsp",
    "unknown_city": "unknownCity",
    "unknown_region": "unknownRegion",
    "map_eu_to_country_domain": "mapEuToCountryDomain",
    "gb_country_code": "gbCountryCode",
    "show_columns": "showColumns",
    "filter_by_current_title": "filterByCurrentTitle",
    "order_criteria": "orderCriteria",
    "search": "search",
    "use_or": "useOr",
    "locale": "locale",
    "ignore_locale": "ignoreLocale",
    "date_format": "dateFormat",
}
# Columns the loader cannot do without, added to `show_columns` when a user leaves them out.
REQUIRED_COLUMNS: tuple[str, ...] = (SESSION_ID, SESSION_START)

# `site_access` loads nothing: it checks each site with one small request, before a pipeline exists (preflight).
RESOURCE_NAMES: tuple[str, ...] = (TABLE, BY_USER_TABLE, "site_access")

VENDOR_SPEC = VendorSpec(
    name="opentracker",
    source="sources.opentracker:opentracker_source",
    check="sources.opentracker:check_connection",
    resources=RESOURCE_NAMES,
    summary="Opentracker sessions (one row per visit, ~70 fields) through nextToken paging",
    preflight=("site_access",),
)
