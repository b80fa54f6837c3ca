"""Every Webtrekk setting, in one place: `[sources.webtrekk]` in .dlt/*.toml or `SOURCES__WEBTREKK__*` variables.

The JSON-RPC settings are WebtrekkConfig's own fields; the Mapp Analytics ones (`analytics_*`, same section) are
its nested `analytics` (AnalyticsConfig). Exports, analyses and reports are checked before any request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import DaysConfig, check_base_url, config_list, require
from sources.common.errors import ConfigError
from sources.common.pool import shared_client
from sources.common.windows import parse_date

from .analytics.config import AnalyticsConfig
from .client import WebtrekkClient, rate_limit_pairs
from .settings import (
    CAMPAIGN_FILTERS,
    DATA_SOURCE_TYPES,
    DATE_FILTERS,
    DEFAULT_ANALYSIS_ROW_LIMIT,
    DEFAULT_BASE_URL,
    DEFAULT_EXPORT_PAGE_SIZE,
    DEFAULT_EXPORT_TYPES,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    EXPORT_FILTERS,
    EXPORTS_BY_NAME,
    LANGUAGES,
    PAIRED_FILTERS,
    VENDOR,
    ExportType,
)
from .tables import TIME_OBJECTS, snake

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


@configspec
class WebtrekkConfig(DaysConfig):
    """The JSON-RPC settings and, as `analytics`, the Mapp Analytics ones: what the source, `check webtrekk`, the
    backfill's quota check and the write-back commands all read."""

    VENDOR: ClassVar[str] = VENDOR
    HISTORY_DAYS: ClassVar[int] = DEFAULT_HISTORY_DAYS

    customer_id: str | None = None  # JSON-RPC (required unless the account uses only the Analytics API)
    login: str | None = None
    password: TSecretStrValue | None = None
    base_url: str = DEFAULT_BASE_URL
    language: str = "en"
    rate_limits: Any | None = None  # [[requests, seconds], ...]; default: the documented 5 / 10 s and 120 / 600 s
    export_types: Any | None = None  # names or {type = ..., <filters>}; default: every type that needs no title
    export_page_size: int = DEFAULT_EXPORT_PAGE_SIZE
    analyses: Any | None = None  # [[sources.webtrekk.analyses]]: name, row_limit, config (legacy getAnalysisData)
    reports: Any | None = None  # report names or {report_name = ..., name = ...} (legacy getReportData)
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    request_timeout: float = 120.0
    analytics: AnalyticsConfig = dataclasses.field(default_factory=AnalyticsConfig)

    @classmethod
    def from_config(cls, **explicit: Any) -> Self:
        """As VendorConfig's; `analytics_*` values go to the nested AnalyticsConfig, resolved first: whether the
        JSON-RPC credentials are required depends on it."""
        nested = set(AnalyticsConfig.get_resolvable_fields())
        analytics = AnalyticsConfig.from_config(**{name: value for name, value in explicit.items() if name in nested})
        own = {name: value for name, value in explicit.items() if name not in nested}
        return super().from_config(analytics=analytics, **own)

    def on_resolved(self) -> None:
        if self.jsonrpc:
            require(self.VENDOR, customer_id=self.customer_id, login=self.login, password=self.password)
        check_base_url(self.base_url, self.key("base_url"))
        if self.language not in LANGUAGES:
            raise ConfigError(f"{self.key('language')} {self.language!r} is not one of {', '.join(LANGUAGES)}")
        self.rate_limits = rate_limit_pairs(self.rate_limits)
        if self.export_page_size < 1:
            raise ConfigError(
                f"{self.key('export_page_size')} must be a positive number of rows, not {self.export_page_size!r}"
            )
        self.exports, self.analysis_entries, self.report_entries  # noqa: B018 - they parse

    @property
    def jsonrpc(self) -> bool:
        """The account uses the JSON-RPC API: its credentials are set, or there is nothing else to use."""
        return bool(self.customer_id or self.login or self.password) or not self.analytics.enabled

    @property
    def exports(self) -> dict[ExportType, list[dict[str, Any]]]:
        return parse_exports(self.export_types)

    @property
    def analysis_entries(self) -> list[AnalysisEntry]:
        return parse_analyses(self.analyses)

    @property
    def report_entries(self) -> list[ReportEntry]:
        return parse_reports(self.reports)

    def client(self, timeout: float | None = None) -> WebtrekkClient:
        """The account's JSON-RPC client, one per process for these settings: a backfill builds the source once per
        window, and a fresh rate limiter would know nothing of the requests the previous window just made. With
        `timeout`, a one-off of its own (`check`, the admin commands)."""
        require(self.VENDOR, customer_id=self.customer_id, login=self.login, password=self.password)

        def build() -> WebtrekkClient:
            return WebtrekkClient(
                self.base_url,
                str(self.customer_id),
                str(self.login),
                str(self.password),
                language=self.language,
                rate_limits=self.rate_limits or (),  # on_resolved filled in the defaults
                timeout=timeout or self.request_timeout,
            )

        # The nested Analytics settings are not this client's (and an object, not a value, in the identity).
        return build() if timeout is not None else shared_client(build, *self.identity(*self.DAY_FIELDS, "analytics"))


@dataclass(frozen=True)
class AnalysisEntry:
    name: str
    config: dict[str, Any]
    row_limit: int
    time_object: bool

    @property
    def table(self) -> str:
        return f"analysis_{self.name}"


@dataclass(frozen=True)
class ReportEntry:
    name: str
    report_name: str

    @property
    def table(self) -> str:
        return f"report_{self.name}"


def _listed(value: Any, key: str) -> list[Any]:
    """TOML lists, or an environment variable's JSON list or `a,b`."""
    return config_list(value, f"sources.webtrekk.{key}") or []


def parse_exports(export_types: Sequence[Any] | None) -> dict[ExportType, list[dict[str, Any]]]:
    """`export_types` entries: a type name, or a table {type = ..., title = ..., <filters>}."""
    key = "sources.webtrekk.export_types"
    entries = list(DEFAULT_EXPORT_TYPES) if export_types is None else _listed(export_types, "export_types")
    exports: dict[ExportType, list[dict[str, Any]]] = {}
    for entry in entries:
        spec = {"type": entry} if isinstance(entry, str) else dict(entry) if isinstance(entry, Mapping) else None
        if spec is None or not spec.get("type"):
            raise ConfigError(f'{key} entry {entry!r} needs a type: write a name or {{type = "...", ...}}')
        name = str(spec.pop("type"))
        export = EXPORTS_BY_NAME.get(name)
        if export is None:
            raise ConfigError(f"{key}: unknown export type {name!r}: choose from {', '.join(EXPORTS_BY_NAME)}")
        params: dict[str, Any] = {}
        title = spec.pop("title", None)
        if export.parameter:
            if not title:
                raise ConfigError(
                    f"{key}: {name} is a parameter export and needs the parameter's title, e.g. "
                    f'{{type = "{name}", title = "Shipping method"}}'
                )
            params["title"] = str(title)
        elif title:
            raise ConfigError(f"{key}: `title` applies to parameter exports only, not to {name}")
        value: Any
        for option, value in spec.items():
            api_name = EXPORT_FILTERS.get(option) or (option if option in EXPORT_FILTERS.values() else None)
            if api_name is None:
                raise ConfigError(
                    f"{key}: unknown option {option!r} for {name}: use {', '.join(EXPORT_FILTERS)} (or title)"
                )
            if api_name in CAMPAIGN_FILTERS and not export.campaign:
                raise ConfigError(f"{key}: {option} applies to campaign exports only, not to {name}")
            if api_name == "filter" and not export.filterable:
                raise ConfigError(f"{key}: `filter` works for content, product and media categories only, not {name}")
            if api_name in DATE_FILTERS:
                value = parse_date(value, f"{key} {name}.{option}").isoformat()
            elif api_name in ("rowsWithoutData", "activeCampaigns"):
                if value not in (0, 1, True, False, "0", "1"):
                    raise ConfigError(f"{key}: {name}.{option} must be 0 or 1, not {value!r}")
                value = int(value in (1, True, "1"))
            elif api_name == "dataSourceTypeFilter" and value not in DATA_SOURCE_TYPES:
                raise ConfigError(f"{key}: {name}.{option} must be one of {', '.join(DATA_SOURCE_TYPES)}")
            params[api_name] = value
        for begin, end in PAIRED_FILTERS:
            if (begin in params) != (end in params):
                raise ConfigError(f"{key}: {name} sets only one of {begin}/{end}: the API needs both")
        exports.setdefault(export, []).append(params)
    return exports


def parse_analyses(analyses: Sequence[Any] | None) -> list[AnalysisEntry]:
    """`analyses` entries: {name = "pages", row_limit = 10000, config = {<analysisConfig>}}."""
    key = "sources.webtrekk.analyses"
    found: list[AnalysisEntry] = []
    for entry in _listed(analyses, "analyses"):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key} entries are tables {{name = ..., config = {{analysisObjects = [...]}}}}")
        name = str(entry.get("name") or "")
        if not _NAME.match(name):
            raise ConfigError(f"{key}: name {name!r} must be lower-case letters, digits and _ (it names the table)")
        config = dict(entry.get("config") or entry.get("analysisConfig") or {})
        objects = config.get("analysisObjects")
        if not objects or not isinstance(objects, Sequence) or isinstance(objects, str):
            raise ConfigError(f'{key}: analysis {name!r} needs config.analysisObjects, e.g. [{{title = "Pages"}}]')
        config["analysisObjects"] = [{"title": o} if isinstance(o, str) else dict(o) for o in objects]
        if any(not o.get("title") for o in config["analysisObjects"]):
            raise ConfigError(f"{key}: every analysis object of {name!r} needs a title")
        config["metrics"] = [{"title": m} if isinstance(m, str) else dict(m) for m in config.get("metrics") or []]
        for clash in ("startTime", "stopTime", "dynamicTime", "startRow", "rowLimit"):
            if clash in config:
                raise ConfigError(
                    f"{key}: analysis {name!r} sets {clash}: clickhaul sets the time range (per day, from start_date "
                    "and the day cursor) and pages with startRow/rowLimit itself; use row_limit for the page size"
                )
        row_limit = entry.get("row_limit", DEFAULT_ANALYSIS_ROW_LIMIT)
        if not isinstance(row_limit, int) or row_limit < 1:
            raise ConfigError(f"{key}: row_limit of {name!r} must be a positive number of rows, not {row_limit!r}")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two analyses are named {name!r}: each names its own table")
        time_object = any(o["title"] in TIME_OBJECTS for o in config["analysisObjects"])
        found.append(AnalysisEntry(name, config, row_limit, time_object))
    return found


def parse_reports(reports: Sequence[Any] | None) -> list[ReportEntry]:
    """`reports` entries: a report name, or {report_name = "Overview Report", name = "overview"}."""
    key = "sources.webtrekk.reports"
    found: list[ReportEntry] = []
    for entry in _listed(reports, "reports"):
        if isinstance(entry, str):
            report_name, name = entry, snake(entry, "report")
        elif isinstance(entry, Mapping) and entry.get("report_name"):
            report_name = str(entry["report_name"])
            name = str(entry.get("name") or snake(report_name, "report"))
        else:
            raise ConfigError(f'{key} entries are report names or {{report_name = "...", name = "..."}}')
        if not _NAME.match(name):
            raise ConfigError(f"{key}: name {name!r} must be lower-case letters, digits and _ (it names the tables)")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two reports map to the name {name!r}: give one a different `name`")
        found.append(ReportEntry(name, report_name))
    return found
