"""Webtrekk (Mapp Intelligence) JSON-RPC API: its methods, the 13 export types as declarations, defaults.

The export types are data, not code: one resource factory in `__init__.py` turns each selected type into the
table `export_<type>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sources.common.spec import VendorSpec
from sources.common.windows import WindowUnit

from .analytics.settings import ANALYTICS_METADATA_RESOURCES, ANALYTICS_PREFIX

VENDOR = "webtrekk"
DEFAULT_BASE_URL = "https://report2.webtrekk.de/cgi-bin/wt/JSONRPC.cgi"
JSONRPC_VERSION = "1.1"
LANGUAGES = ("de", "en", "fr", "es", "cn")
# The documented limits: 5 requests / 10 s short-term and 120 requests / 600 s long-term, both at once.
DEFAULT_RATE_LIMITS: tuple[tuple[int, int], ...] = ((5, 10), (120, 600))
DEFAULT_EXPORT_PAGE_SIZE = 10_000  # the API's default limit of rows per exportData call
DEFAULT_ANALYSIS_ROW_LIMIT = 10_000
DEFAULT_LOOKBACK_DAYS = 3
DEFAULT_HISTORY_DAYS = 30  # first run without start_date
TIME_WINDOW_UNIT: WindowUnit = "month"  # analyses with a time object ("Days") get one request per month, not per day
# Sent to getAnalysisData/getReportData instead of the default "-", so a real "-" in the data is not a footer.
FOOTER_IDENTIFIER = "\u2211clickhaul-footer"

# Mapp retired these on its cloud on 2025-06-30 (see docs/webtrekk.md); older and on-premise accounts keep them.
LEGACY_METHODS = frozenset(
    {
        "getAnalysisData",
        "getReportData",
        "getAnalysisObjectsAndMetricsList",
        "getCustomReportsList",
        "getDynamicTimeIntervalList",
    }
)

# Filters exportData accepts, by their config spelling → the API's parameter name.
EXPORT_FILTERS: dict[str, str] = {
    "filter": "filter",
    "rows_without_data": "rowsWithoutData",
    "active_campaigns": "activeCampaigns",
    "data_source_type_filter": "dataSourceTypeFilter",
    "record_interval_begin": "recordIntervalBegin",
    "record_interval_end": "recordIntervalEnd",
    "campaigns_start_time_interval_begin": "campaignsStartTimeIntervalBegin",
    "campaigns_start_time_interval_end": "campaignsStartTimeIntervalEnd",
    "campaigns_stop_time_interval_begin": "campaignsStopTimeIntervalBegin",
    "campaigns_stop_time_interval_end": "campaignsStopTimeIntervalEnd",
}
CAMPAIGN_FILTERS = frozenset(
    {
        "activeCampaigns",
        "dataSourceTypeFilter",
        "campaignsStartTimeIntervalBegin",
        "campaignsStartTimeIntervalEnd",
        "campaignsStopTimeIntervalBegin",
        "campaignsStopTimeIntervalEnd",
    }
)
DATE_FILTERS = frozenset(name for name in EXPORT_FILTERS.values() if "Interval" in name)
PAIRED_FILTERS: tuple[tuple[str, str], ...] = (
    ("recordIntervalBegin", "recordIntervalEnd"),
    ("campaignsStartTimeIntervalBegin", "campaignsStartTimeIntervalEnd"),
    ("campaignsStopTimeIntervalBegin", "campaignsStopTimeIntervalEnd"),
)
DATA_SOURCE_TYPES = ("all", "interfaces", "regular", "secondary")


@dataclass(frozen=True)
class ExportType:
    """One `exportData` type. `dated`: needs startDate/endDate, so it is loaded per day and merged on
    (day, first column); `parameter`: needs `title` too; `filterable`: accepts `filter` on its first column."""

    name: str
    dated: bool = False
    parameter: bool = False
    campaign: bool = False
    filterable: bool = False

    @property
    def table(self) -> str:
        return f"export_{self.name}"

    @property
    def needs_extra_parameters(self) -> bool:
        return self.parameter


EXPORT_TYPES: tuple[ExportType, ...] = (
    ExportType("content_categories", filterable=True),
    ExportType("content_categories_time", dated=True, filterable=True),
    ExportType("customer_categories"),
    ExportType("page_urls"),
    ExportType("media_categories", filterable=True),
    ExportType("media_playtime"),
    ExportType("basket_categories", filterable=True),
    ExportType("basket_categories_time", dated=True, filterable=True),
    ExportType("product_urls"),
    ExportType("campaigns", campaign=True),
    ExportType("campaigns_time", dated=True, campaign=True),
    ExportType("ecommerce_parameters", dated=True, parameter=True),
    ExportType("time_categories", dated=True),
)
EXPORTS_BY_NAME = {export.name: export for export in EXPORT_TYPES}
DEFAULT_EXPORT_TYPES: tuple[str, ...] = tuple(e.name for e in EXPORT_TYPES if not e.needs_extra_parameters)

METADATA_RESOURCES: tuple[str, ...] = (
    "accounts",
    "analysis_objects",
    "metrics",
    "custom_reports",
    "dynamic_time_intervals",
)

# Names the CLI's --resources accepts without config; analyses and reports add `analysis_<name>` and
# `report_<name>` from config, which `--resources` does not know in advance.
# The Analytics API adds `analytics_<query>` and `analytics_report_<report>` from config the same way.
RESOURCE_NAMES: tuple[str, ...] = (
    *METADATA_RESOURCES,
    *(export.table for export in EXPORT_TYPES),
    *ANALYTICS_METADATA_RESOURCES,
)

VENDOR_SPEC = VendorSpec(
    name=VENDOR,
    source="sources.webtrekk:webtrekk_source",
    check="sources.webtrekk:check_connection",
    resources=RESOURCE_NAMES,
    summary=(
        "Webtrekk / Mapp Intelligence: JSON-RPC exports, analyses and reports under the vendor's rate limits; "
        "REST Analytics API queries and reports"
    ),
    resource_prefixes=("analysis_", "report_", ANALYTICS_PREFIX),
    before_backfill="sources.webtrekk:check_analytics_quota",
)
