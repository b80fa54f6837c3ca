"""Mapp Analytics settings: the `analytics_*` keys of `[sources.webtrekk]`, and the queries and reports they
declare, each checked before any request."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import VendorConfig, check_base_url, config_list, missing_config
from sources.common.errors import ConfigError
from sources.common.pool import shared_client
from sources.common.windows import WINDOW_UNITS, DateWindow, WindowUnit

from ..settings import VENDOR
from .client import AnalyticsClient, PollPolicy
from .settings import (
    ANALYTICS_LANGUAGES,
    COLUMN_PERIODS,
    COLUMN_SCOPES,
    CONNECTORS,
    CONTEXTS,
    DEFAULT_ANALYTICS_BASE_URL,
    DEFAULT_ANALYTICS_CONCURRENCY,
    DEFAULT_ANALYTICS_LANGUAGE,
    DEFAULT_ANALYTICS_TOKEN_URL,
    DEFAULT_ANALYTICS_WINDOW,
    DEFAULT_POLL_INITIAL_SECONDS,
    DEFAULT_POLL_MAX_SECONDS,
    DEFAULT_POLL_TIMEOUT_SECONDS,
    FILTER_PREDICATES,
    KPI_TYPES,
    MAX_ANALYTICS_CONCURRENCY,
    QUERY_KEYS,
    REPORT_KEYS,
    RESULT_TYPE,
    SORT_DIRECTIONS,
    TABLE_VARIANTS,
    TIME_FILTER_NAMES,
    TIME_FORMAT,
    TIME_RANGE_FILTER,
)

KEY = f"sources.{VENDOR}"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


@dataclass(frozen=True)
class AnalyticsQuery:
    name: str
    query_object: dict[str, Any]

    @property
    def table(self) -> str:
        return f"analytics_{self.name}"

    @property
    def kpi(self) -> bool:
        return "columns" not in self.query_object


@dataclass(frozen=True)
class AnalyticsReport:
    name: str
    report_id: Any
    configuration: dict[str, Any]
    element_ids: tuple[Any, ...]

    @property
    def table(self) -> str:
        return f"analytics_report_{self.name}"

    @property
    def calculations(self) -> int:
        """One calculation per analysis element the report asks for."""
        return len(self.element_ids) or max(1, len(self.configuration.get("reportElements") or []))


@configspec
class AnalyticsConfig(VendorConfig):
    """The Mapp Analytics part of `[sources.webtrekk]`, nested in WebtrekkConfig as `analytics`. Its keys keep
    their `analytics_` prefix (`sources.webtrekk.analytics_client_id`, SOURCES__WEBTREKK__ANALYTICS_CLIENT_ID):
    one section holds both APIs. Unused (`enabled` false) when neither credentials nor queries are set."""

    VENDOR: ClassVar[str] = VENDOR

    analytics_client_id: str | None = None  # Mapp Cloud > API Client IDs
    analytics_client_secret: TSecretStrValue | None = None
    analytics_base_url: str = DEFAULT_ANALYTICS_BASE_URL
    analytics_token_url: str = DEFAULT_ANALYTICS_TOKEN_URL
    analytics_scope: str | None = None  # the new token endpoint rejects a scope; the old one wanted one
    analytics_language: str = DEFAULT_ANALYTICS_LANGUAGE
    analytics_queries: Any | None = None  # [[sources.webtrekk.analytics_queries]]: name, query (the UI's JSON)
    analytics_reports: Any | None = None  # [[sources.webtrekk.analytics_reports]]: name, report, configuration
    analytics_window: str = DEFAULT_ANALYTICS_WINDOW  # one calculation per query and window
    analytics_concurrency: int = DEFAULT_ANALYTICS_CONCURRENCY  # calculations running at once
    analytics_poll_initial_seconds: float = DEFAULT_POLL_INITIAL_SECONDS
    analytics_poll_max_seconds: float = DEFAULT_POLL_MAX_SECONDS
    analytics_poll_timeout_seconds: float = DEFAULT_POLL_TIMEOUT_SECONDS

    def on_resolved(self) -> None:
        self.analytics_scope = self.analytics_scope or None
        self.queries, self.reports  # noqa: B018 - a typo in a query fails even before credentials are set
        if not self.enabled:
            return
        missing = [name for name in ("analytics_client_id", "analytics_client_secret") if not getattr(self, name)]
        if missing:
            raise missing_config(self.VENDOR, missing)
        check_base_url(self.analytics_base_url, self.key("analytics_base_url"))
        check_base_url(self.analytics_token_url, self.key("analytics_token_url"))
        if self.analytics_language not in ANALYTICS_LANGUAGES:
            raise ConfigError(
                f"{self.key('analytics_language')} {self.analytics_language!r} is not one of "
                f"{', '.join(ANALYTICS_LANGUAGES)}"
            )
        if self.analytics_window not in WINDOW_UNITS:
            raise ConfigError(
                f"{self.key('analytics_window')} {self.analytics_window!r} is unknown: use one of "
                f"{', '.join(WINDOW_UNITS)}"
            )
        for name in (
            "analytics_concurrency",
            *(f"analytics_poll_{part}_seconds" for part in ("initial", "max", "timeout")),
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{self.key(name)} must be a positive number, not {getattr(self, name)!r}")
        if self.analytics_concurrency > MAX_ANALYTICS_CONCURRENCY:
            raise ConfigError(
                f"{self.key('analytics_concurrency')} {self.analytics_concurrency} is too many: use 1 to "
                f"{MAX_ANALYTICS_CONCURRENCY}"
            )
        if self.analytics_poll_max_seconds < self.analytics_poll_initial_seconds:
            raise ConfigError(
                f"{self.key('analytics_poll_max_seconds')} must be at least analytics_poll_initial_seconds"
            )

    @property
    def enabled(self) -> bool:
        """Credentials or declared queries: the account uses the Analytics API."""
        return bool(self.analytics_client_id or self.analytics_client_secret or self.queries or self.reports)

    @property
    def queries(self) -> list[AnalyticsQuery]:
        return parse_queries(self.analytics_queries)

    @property
    def reports(self) -> list[AnalyticsReport]:
        return parse_reports(self.analytics_reports)

    @property
    def base_url(self) -> str:
        return self.analytics_base_url.rstrip("/")

    @property
    def window(self) -> WindowUnit:
        return cast(WindowUnit, self.analytics_window)

    @property
    def poll(self) -> PollPolicy:
        return PollPolicy(
            self.analytics_poll_initial_seconds, self.analytics_poll_max_seconds, self.analytics_poll_timeout_seconds
        )

    def calculations_per_window(self, resources: Sequence[str] | None = None) -> int:
        """What one window of the selected resources costs of the month's allowance."""

        def selected(table: str) -> bool:
            return resources is None or table in resources

        return sum(1 for q in self.queries if selected(q.table)) + sum(
            r.calculations for r in self.reports if selected(r.table)
        )

    def client(self, timeout: float, shared: bool = True) -> AnalyticsClient:
        """The account's client, one per process for these settings (backfill windows share its token and
        counters); `shared=False`: a one-off of its own (`check`, the quota check)."""
        assert self.analytics_client_id and self.analytics_client_secret  # on_resolved required them

        def build() -> AnalyticsClient:
            return AnalyticsClient(
                self.base_url,
                self.analytics_token_url,
                str(self.analytics_client_id),
                str(self.analytics_client_secret),
                scope=self.analytics_scope,
                poll=self.poll,
                timeout=timeout,
            )

        return shared_client(build, *self.identity(), timeout) if shared else build()


def _json_value(value: Any, key: str) -> Any:
    """TOML tables arrive as dicts; environment variables and UI copies arrive as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(f"{key} is not valid JSON: paste the query object as copied from Mapp") from None
    return value


def _name(value: Any, key: str) -> str:
    name = str(value or "")
    if not _NAME.match(name):
        raise ConfigError(f"{key}: name {name!r} must be lower-case letters, digits and _ (it names the table)")
    return name


def _named_entries(
    value: Any, key: str, allowed: Iterable[str], shape: str, usage: str
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Each entry of an `analytics_*` list (a table, or its JSON text) with its checked table name."""
    for raw in config_list(value, key) or []:
        entry = _json_value(raw, key)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key} entries are tables {shape}")
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)} in {entry.get('name')!r}: use {usage}")
        yield entry, _name(entry.get("name"), key)


def parse_queries(queries: Any) -> list[AnalyticsQuery]:
    """`analytics_queries` entries: {name = "browsers", query = {<queryObject>}} (the query may be JSON text)."""
    key = f"{KEY}.analytics_queries"
    found: list[AnalyticsQuery] = []
    shape = '{name = "...", query = {columns = [...], ...}}'
    for entry, name in _named_entries(queries, key, QUERY_KEYS, shape, "name, query"):
        raw = _json_value(entry.get("query", entry.get("queryObject")), f"{key} {name!r}.query")
        if isinstance(raw, Mapping) and "queryObject" in raw:  # the whole request body was pasted
            if raw.get("resultType", RESULT_TYPE) != RESULT_TYPE:
                raise ConfigError(f"{key} {name!r}: resultType must be {RESULT_TYPE}")
            raw = raw["queryObject"]
        query_object = check_query_object(raw, f"{key} {name!r}")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two queries are named {name!r}: each names its own table")
        found.append(AnalyticsQuery(name, query_object))
    return found


def parse_reports(reports: Any) -> list[AnalyticsReport]:
    """`analytics_reports` entries: {name = "overview", report = <id>, configuration = {<Report>}, element_ids}."""
    key = f"{KEY}.analytics_reports"
    found: list[AnalyticsReport] = []
    shape = "{name = ..., report = <id>, configuration = {...}}"
    for entry, name in _named_entries(reports, key, REPORT_KEYS, shape, "name, report, configuration, element_ids"):
        report_id = entry.get("report", entry.get("id"))
        if report_id in (None, ""):
            raise ConfigError(f"{key} {name!r} needs `report`, the report's id")
        configuration = _json_value(entry.get("configuration") or {}, f"{key} {name!r}.configuration")
        if not isinstance(configuration, Mapping):
            raise ConfigError(f"{key} {name!r}.configuration must be the report's JSON configuration")
        configuration = dict(configuration)
        for element in configuration.get("reportElements") or []:
            if not isinstance(element, Mapping) or element.get("id") in (None, ""):
                raise ConfigError(f"{key} {name!r}: every reportElements entry needs an id")
            if element.get("type", "ANALYSIS") == "ANALYSIS" and element.get("configJson") is not None:
                check_query_object(_json_value(element["configJson"], key), f"{key} {name!r} element {element['id']!r}")
        elements = entry.get("element_ids", entry.get("elementIds")) or []
        if not isinstance(elements, Sequence) or isinstance(elements, str):
            raise ConfigError(f"{key} {name!r}.element_ids must be a list of element ids")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two reports are named {name!r}: each names its own tables")
        found.append(AnalyticsReport(name, report_id, configuration, tuple(elements)))
    return found


def _one_of(container: Mapping[str, Any], field_name: str, allowed: Sequence[str], where: str) -> None:
    value = container.get(field_name)
    if value is not None and value not in allowed:
        raise ConfigError(f"{where}: {field_name} {value!r} is not one of {', '.join(allowed)}")


def check_query_object(raw: Any, where: str) -> dict[str, Any]:
    """A TableQuery (columns, variant, predefinedContainer) or a KpiQuery (type, metricName), as the API wants."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: the query must be a JSON object (Mapp UI: Copy JSON configuration)")
    query = copy.deepcopy(dict(raw))
    if "columns" not in query and query.get("type") in KPI_TYPES:
        if not query.get("metricName"):
            raise ConfigError(f"{where}: a {query['type']} query needs metricName")
        query.setdefault("predefinedContainer", {"filters": [], "containers": []})
        _check_container(query["predefinedContainer"], f"{where} predefinedContainer")
        return query
    columns = query.get("columns")
    if not columns or not isinstance(columns, list):
        raise ConfigError(f"{where} has no columns: a table query needs columns = [{{name = ...}}, ...]")
    for index, column in enumerate(columns):
        spot = f"{where} column {index + 1}"
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str) or not column["name"]:
            raise ConfigError(f"{spot}: every column needs a name (the API name, e.g. browser_fullName)")
        spot = f"{where} column {column['name']!r}"
        _one_of(column, "scope", COLUMN_SCOPES, spot)
        _one_of(column, "context", CONTEXTS, spot)
        _one_of(column, "sortDirection", SORT_DIRECTIONS, spot)
        _one_of(column, "columnPeriod", COLUMN_PERIODS, spot)
        for limit in ("lowerLimit", "upperLimit", "sortIndex"):
            value = column.get(limit)
            if value is not None and not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
                raise ConfigError(f"{spot}: {limit} must be a whole number, not {value!r}")
        if column.get("predefinedContainer") is not None:
            _check_container(column["predefinedContainer"], f"{spot} predefinedContainer")
    query.setdefault("variant", "LIST")
    _one_of(query, "variant", TABLE_VARIANTS, where)
    query.setdefault("predefinedContainer", {"filters": [], "containers": []})
    _check_container(query["predefinedContainer"], f"{where} predefinedContainer")
    return query


def _check_container(container: Any, where: str) -> None:
    if not isinstance(container, Mapping):
        raise ConfigError(f"{where} must be an object with filters and containers")
    for key_name in ("filters", "containers"):
        if not isinstance(container.get(key_name) or [], list):
            raise ConfigError(f"{where}.{key_name} must be a list")
    _one_of(container, "connector", CONNECTORS, where)
    for item in container.get("filters") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ConfigError(f"{where}: every filter needs a name")
        spot = f"{where} filter {item['name']!r}"
        if item.get("filterPredicate") not in FILTER_PREDICATES:
            raise ConfigError(f"{spot}: filterPredicate must be one of {', '.join(FILTER_PREDICATES)}")
        _one_of(item, "connector", CONNECTORS, spot)
    for index, inner in enumerate(container.get("containers") or []):
        _check_container(inner, f"{where}.containers[{index}]")


def with_time_range(query_object: Mapping[str, Any], window: DateWindow) -> dict[str, Any]:
    """The query for one window: every time filter the user copied is replaced by a fixed `time_range`
    (value1 inclusive, value2 exclusive, in the account's local time)."""
    query = copy.deepcopy(dict(query_object))

    def strip(container: dict[str, Any]) -> None:
        container["filters"] = [f for f in container.get("filters") or [] if f.get("name") not in TIME_FILTER_NAMES]
        for inner in container.get("containers") or []:
            strip(inner)

    container = query.setdefault("predefinedContainer", {"filters": [], "containers": []})
    strip(container)
    container.setdefault("containers", [])
    container.setdefault("connector", "AND")
    container["filters"].insert(0, time_filter(window))
    return query


def time_filter(window: DateWindow) -> dict[str, Any]:
    return {
        "name": TIME_RANGE_FILTER,
        "filterPredicate": "BETWEEN",
        "connector": "AND",
        "caseSensitive": False,
        "context": "NONE",
        "intern": False,
        "value1": window.start_at.strftime(TIME_FORMAT),
        "value2": window.end_at.strftime(TIME_FORMAT),
    }
