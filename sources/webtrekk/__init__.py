"""Webtrekk / Mapp Intelligence JSON-RPC: metadata, every exportData type, configured analyses and reports.

One client (one login token, one rate limiter for both of the vendor's windows) serves every resource; the
token is deleted with `logout` when the last running resource ends, also when the run fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.configuration.inject import with_config
from dlt.extract.hints import make_hints
from dlt.sources import DltResource

from sources.common.config import check_base_url, config_list, require
from sources.common.errors import ClickhaulError, ConfigError
from sources.common.fanout import read_ahead
from sources.common.incremental import ACCOUNT, DayCursor, configured_days
from sources.common.lazy import SharedUse
from sources.common.monitor import current_monitor
from sources.common.pool import shared_client
from sources.common.redact import register_secrets
from sources.common.windows import WindowUnit, check_timezone, parse_date

from .analytics import analytics_resources, check_analytics, parse_analytics
from .analytics_settings import (
    DEFAULT_ANALYTICS_BASE_URL,
    DEFAULT_ANALYTICS_CONCURRENCY,
    DEFAULT_ANALYTICS_LANGUAGE,
    DEFAULT_ANALYTICS_TOKEN_URL,
    DEFAULT_ANALYTICS_WINDOW,
    DEFAULT_POLL_INITIAL_SECONDS,
    DEFAULT_POLL_MAX_SECONDS,
    DEFAULT_POLL_TIMEOUT_SECONDS,
)
from .client import JsonRpcError, WebtrekkClient, rate_limit_pairs
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
    FOOTER_IDENTIFIER,
    LANGUAGES,
    LEGACY_METHODS,
    PAIRED_FILTERS,
    TIME_WINDOW_UNIT,
    VENDOR,
    ExportType,
)
from .tables import (
    TIME_OBJECTS,
    TableSpec,
    analysis_extras,
    analysis_rows,
    analysis_shape,
    export_columns,
    export_table,
    snake,
    table_spec,
)

__all__ = ["check_connection", "webtrekk_source"]

log = logging.getLogger("clickhaul.webtrekk")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")
_RETIRED = re.compile(r"method.*not (found|available|supported)|unknown method|retired|no longer", re.IGNORECASE)


@dlt.source(name="webtrekk", section="webtrekk", max_table_nesting=0)
def webtrekk_source(
    customer_id: str | None = dlt.secrets.value,
    login: str | None = dlt.secrets.value,
    password: str | None = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    language: str = "en",
    rate_limits: Any = None,
    export_types: Any = None,
    export_page_size: int = DEFAULT_EXPORT_PAGE_SIZE,
    analyses: Any = None,
    reports: Any = None,
    start_date: dt.date | str | None = None,
    end_date: dt.date | str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    timezone: str = "UTC",
    request_timeout: float = 120.0,
    analytics_client_id: str | None = dlt.secrets.value,
    analytics_client_secret: str | None = dlt.secrets.value,
    analytics_base_url: str = DEFAULT_ANALYTICS_BASE_URL,
    analytics_token_url: str = DEFAULT_ANALYTICS_TOKEN_URL,
    analytics_scope: str | None = None,
    analytics_language: str = DEFAULT_ANALYTICS_LANGUAGE,
    analytics_queries: Any = None,
    analytics_reports: Any = None,
    analytics_window: str = DEFAULT_ANALYTICS_WINDOW,
    analytics_concurrency: int = DEFAULT_ANALYTICS_CONCURRENCY,
    analytics_poll_initial_seconds: float = DEFAULT_POLL_INITIAL_SECONDS,
    analytics_poll_max_seconds: float = DEFAULT_POLL_MAX_SECONDS,
    analytics_poll_timeout_seconds: float = DEFAULT_POLL_TIMEOUT_SECONDS,
) -> Iterator[DltResource]:
    """Metadata (`accounts`, `analysis_objects`, `metrics`, `custom_reports`, `dynamic_time_intervals`),
    `export_<type>` per entry of `export_types`, `analysis_<name>` per entry of `analyses` and `report_<name>`
    (tables `report_<name>__<analysis>`) per entry of `reports`.

    Analyses, reports and date-bound exports are loaded per day from the saved day cursor minus `lookback_days`;
    with `start_date`..`end_date` exactly that range is loaded and no state moves.

    The REST Analytics API (see docs/webtrekk_analytics.md) adds `analytics_query_objects`, `analytics_segments`,
    `analytics_dynamic_timefilters`, `analytics_<name>` per entry of `analytics_queries` and
    `analytics_report_<name>` (tables `analytics_report_<name>__<element>`) per entry of `analytics_reports`. An
    account with only Analytics API credentials gets only those.
    """
    register_secrets([password, analytics_client_secret])
    analytics = parse_analytics(
        client_id=analytics_client_id,
        client_secret=analytics_client_secret,
        base_url=analytics_base_url,
        token_url=analytics_token_url,
        scope=analytics_scope,
        language=analytics_language,
        queries=analytics_queries,
        reports=analytics_reports,
        window=analytics_window,
        concurrency=analytics_concurrency,
        poll_initial_seconds=analytics_poll_initial_seconds,
        poll_max_seconds=analytics_poll_max_seconds,
        poll_timeout_seconds=analytics_poll_timeout_seconds,
        timeout=request_timeout,
    )
    if analytics is not None:
        check_timezone(timezone)
        if not isinstance(lookback_days, int) or lookback_days < 0:
            raise ConfigError(f"sources.webtrekk.lookback_days must be 0 or more, not {lookback_days!r}")
        analytics.first_day, analytics.last_day = configured_days(start_date, end_date, timezone, DEFAULT_HISTORY_DAYS)
        analytics.lookback_days, analytics.timezone = lookback_days, timezone
        if not (customer_id or login or password):
            yield from analytics_resources(analytics)  # an Analytics-API-only account
            return
    settings = validate(
        customer_id=customer_id,
        login=login,
        password=password,
        base_url=base_url,
        language=language,
        rate_limits=rate_limits,
        export_types=export_types,
        export_page_size=export_page_size,
        analyses=analyses,
        reports=reports,
        start_date=start_date,
        end_date=end_date,
        lookback_days=lookback_days,
        timezone=timezone,
    )
    customer_id, login, password = str(customer_id), str(login), str(password)  # `validate` required them
    # One client per account for the whole process: a backfill builds this source once per window, and a fresh
    # rate limiter would know nothing of the requests the previous window just made.
    client = shared_client(
        lambda: WebtrekkClient(
            base_url,
            customer_id,
            login,
            password,
            language=language,
            rate_limits=settings.rate_limits,
            timeout=request_timeout,
        ),
        VENDOR,
        base_url,
        customer_id,
        login,
        password,
        language,
        settings.rate_limits,
        request_timeout,
    )
    session = Session(client)
    yield from metadata_resources(session)
    for export, entries in settings.exports.items():
        yield export_resource(session, export, entries, settings)
    for analysis in settings.analyses:
        yield analysis_resource(session, analysis, settings)
    for report in settings.reports:
        yield report_resource(session, report, settings)
    if analytics is not None:
        yield from analytics_resources(analytics)


# -- configuration ---------------------------------------------------------------------------------------------
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


@dataclass
class Settings:
    rate_limits: list[list[float]]
    exports: dict[ExportType, list[dict[str, Any]]]
    export_page_size: int
    analyses: list[AnalysisEntry]
    reports: list[ReportEntry]
    first_day: dt.date
    last_day: dt.date | None
    lookback_days: int
    timezone: str
    language: str

    @property
    def days(self) -> DayCursor:
        return DayCursor(self.first_day, self.last_day, self.lookback_days)


def validate(
    *,
    customer_id: str | None,
    login: str | None,
    password: str | None,
    base_url: str,
    language: str,
    rate_limits: Sequence[Sequence[float]] | None,
    export_types: Sequence[Any] | None,
    export_page_size: int,
    analyses: Sequence[Any] | None,
    reports: Sequence[Any] | None,
    start_date: dt.date | str | None,
    end_date: dt.date | str | None,
    lookback_days: int,
    timezone: str,
) -> Settings:
    """Every setting checked before the first request; each problem names its key and the fix."""
    require(VENDOR, customer_id=customer_id, login=login, password=password)
    check_base_url(base_url, "sources.webtrekk.base_url")
    check_timezone(timezone)
    if language not in LANGUAGES:
        raise ConfigError(f"sources.webtrekk.language {language!r} is not one of {', '.join(LANGUAGES)}")
    limits = rate_limit_pairs(rate_limits)
    if not isinstance(export_page_size, int) or isinstance(export_page_size, bool) or export_page_size < 1:
        raise ConfigError(
            f"sources.webtrekk.export_page_size must be a positive number of rows, not {export_page_size!r}"
        )
    if not isinstance(lookback_days, int) or lookback_days < 0:
        raise ConfigError(f"sources.webtrekk.lookback_days must be 0 or more, not {lookback_days!r}")
    first_day, last_day = configured_days(start_date, end_date, timezone, DEFAULT_HISTORY_DAYS)
    return Settings(
        rate_limits=limits,
        exports=parse_exports(export_types),
        export_page_size=export_page_size,
        analyses=parse_analyses(analyses),
        reports=parse_reports(reports),
        first_day=first_day,
        last_day=last_day,
        lookback_days=lookback_days,
        timezone=timezone,
        language=language,
    )


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


# -- the session ----------------------------------------------------------------------------------------------
class Session:
    """Shares one client among resources; the last resource to finish (or fail) logs out."""

    def __init__(self, client: WebtrekkClient) -> None:
        self.client = client
        self._users = SharedUse(on_last=client.logout)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] = {}

    @contextmanager
    def use(self) -> Iterator[WebtrekkClient]:
        with self._users.use():
            yield self.client

    def objects_and_metrics(self) -> Any:
        """One call answers both `analysis_objects` and `metrics`."""
        if "objects" not in self._metadata:
            self._metadata["objects"] = self.client.call("getAnalysisObjectsAndMetricsList") or {}
        return self._metadata["objects"]


def is_retired(error: JsonRpcError) -> bool:
    return error.method in LEGACY_METHODS and bool(_RETIRED.search(error.vendor_message))


def retired_hint(error: JsonRpcError) -> ClickhaulError:
    return ClickhaulError(
        f"{error}: Mapp retired {error.method} on its cloud on 2025-06-30; remove the analyses/reports from "
        "[sources.webtrekk] or read analyses through Mapp's Intelligence Analytics API"
    )


ACCOUNTS = TableSpec({"customer_id": "text", "title": "text"}, ("customer_id",))
ANALYSIS_OBJECTS = TableSpec({"title": "text"}, ("title",))
METRICS = TableSpec({"title": "text", "custom": "bool"}, ("title",))
CUSTOM_REPORTS = TableSpec({"report_group": "text", "title": "text"}, ("report_group", "title"))
DYNAMIC_TIME_INTERVALS = TableSpec({"code": "text", "name": "text"}, ("code",))


def metadata_resources(session: Session) -> Iterator[DltResource]:
    def listing(name: str, spec: TableSpec, fetch: Callable[[WebtrekkClient], list[dict[str, Any]]]) -> DltResource:
        def load() -> Iterator[Any]:
            with session.use() as client:
                try:
                    rows = fetch(client)
                except JsonRpcError as error:
                    if not is_retired(error):
                        raise
                    log.warning(
                        "webtrekk: %s is not offered by this account (%s); %s stays empty", error.method, error, name
                    )
                    return
                if rows:
                    yield spec.arrow(rows)

        return dlt.resource(
            load, name=name, write_disposition="replace", primary_key=spec.primary_key, columns=spec.hints()
        )

    def accounts(client: WebtrekkClient) -> list[dict[str, Any]]:
        return [{"customer_id": a.get("customerId"), "title": a.get("title")} for a in client.accounts()]

    def objects(client: WebtrekkClient) -> list[dict[str, Any]]:
        return [{"title": title} for title in session.objects_and_metrics().get("analysisObjects") or []]

    def metrics(client: WebtrekkClient) -> list[dict[str, Any]]:
        answer = session.objects_and_metrics()
        return [{"title": t, "custom": False} for t in answer.get("metrics") or []] + [
            {"title": t, "custom": True} for t in answer.get("customMetrics") or []
        ]

    def reports(client: WebtrekkClient) -> list[dict[str, Any]]:
        answer = client.call("getCustomReportsList") or []
        return [{"report_group": r.get("reportGroup") or "", "title": r.get("title")} for r in answer]

    def intervals(client: WebtrekkClient) -> list[dict[str, Any]]:
        return [{"code": i.get("code"), "name": i.get("name")} for i in client.call("getDynamicTimeIntervalList") or []]

    yield listing("accounts", ACCOUNTS, accounts)
    yield listing("analysis_objects", ANALYSIS_OBJECTS, objects)
    yield listing("metrics", METRICS, metrics)
    yield listing("custom_reports", CUSTOM_REPORTS, reports)
    yield listing("dynamic_time_intervals", DYNAMIC_TIME_INTERVALS, intervals)


# -- exports ---------------------------------------------------------------------------------------------------
def _page(spec: TableSpec, table: pa.Table, **hints: Any) -> Any:
    """An Arrow page carrying its table's column hints (names and descriptions come from the answer's header)."""
    return dlt.mark.with_hints(table, make_hints(columns=spec.hints(), **hints))


def export_resource(
    session: Session, export: ExportType, entries: list[dict[str, Any]], settings: Settings
) -> DltResource:
    """Undated types replace their table; dated ones are loaded per day and merged on (day, first column)."""

    def pages(client: WebtrekkClient, params: dict[str, Any], stamp: dict[str, Any]) -> Iterator[Any]:
        reserved = list(stamp)
        rows_seen = 0
        walk = client.export_pages({"type": export.name, **params}, settings.export_page_size)
        for header, rows in read_ahead(walk, f"webtrekk_{export.table}"):
            columns = export_columns(header, reserved)
            extra: dict[str, Any] = {"day": "date", "parameter_title": "text"} if export.dated else {}
            extra = {name: kind for name, kind in extra.items() if name in stamp}
            key = [*stamp, columns[0].name] if export.dated and columns else []
            spec = table_spec(columns, extra, key)
            rows_seen += len(rows)
            yield _page(spec, export_table(spec, columns, rows, **stamp), primary_key=key or None)
        current_monitor().advance(export.table, rows=rows_seen)

    if not export.dated:

        def load_all() -> Iterator[Any]:
            current_monitor().task(export.table, len(entries))
            with session.use() as client:
                for params in entries:
                    yield from pages(client, params, {})

        return dlt.resource(load_all, name=export.table, write_disposition="replace")

    def load_days() -> Iterator[Any]:
        plan = settings.days.plan(export.table, settings.timezone, [ACCOUNT])
        windows = plan.windows("day", settings.timezone)
        current_monitor().task(export.table, len(windows) * len(entries))
        with session.use() as client:
            for _, window in windows:
                for params in entries:
                    stamp: dict[str, Any] = {"day": window.start}
                    if export.parameter:
                        stamp["parameter_title"] = params["title"]
                    dates = {"startDate": window.start.isoformat(), "endDate": window.end.isoformat()}
                    yield from pages(client, {**params, **dates}, stamp)
        plan.complete()

    return settings.days.attach(dlt.resource(load_days, name=export.table, write_disposition="merge"))


# -- analyses and reports -----------------------------------------------------------------------------------
def _time_range(start: dt.date, end: dt.date) -> tuple[str, str]:
    return f"{start.isoformat()} 00:00:00", f"{end.isoformat()} 23:59:59"


def analysis_resource(session: Session, analysis: AnalysisEntry, settings: Settings) -> DltResource:
    """One request window per day (or per month with a time object such as "Days"), paged against
    `totalRowCount`; footer rows dropped; numbers, percentages and dates typed from `analysisTabHead`."""
    footer = str(analysis.config.get("footerIdentifier") or FOOTER_IDENTIFIER)

    def load() -> Iterator[Any]:
        plan = settings.days.plan(analysis.table, settings.timezone, [ACCOUNT])
        unit: WindowUnit = TIME_WINDOW_UNIT if analysis.time_object else "day"
        windows = plan.windows(unit, settings.timezone)
        monitor = current_monitor()
        monitor.task(analysis.table, len(windows))
        with session.use() as client:
            for _, window in windows:
                start, stop = _time_range(window.start, window.end)
                config = {**analysis.config, "startTime": start, "stopTime": stop, "footerIdentifier": footer}
                rows_seen = 0
                try:
                    for answer in client.analysis_pages(config, analysis.row_limit):
                        shape = analysis_shape(answer, analysis.config)
                        rows = analysis_rows(shape, answer, footer, window.start)
                        if rows:
                            rows_seen += len(rows)
                            spec = shape.spec()
                            yield _page(spec, spec.arrow(rows), primary_key=list(spec.primary_key))
                except JsonRpcError as error:
                    if is_retired(error):
                        raise retired_hint(error) from None
                    raise
                monitor.advance(analysis.table, rows=rows_seen)
        plan.complete()

    return settings.days.attach(dlt.resource(load, name=analysis.table, write_disposition="merge"))


def report_resource(session: Session, report: ReportEntry, settings: Settings) -> DltResource:
    """getReportData per day; each analysis of the report lands in `report_<name>__<analysis>`."""

    def load() -> Iterator[Any]:
        plan = settings.days.plan(report.table, settings.timezone, [ACCOUNT])
        windows = plan.windows("day", settings.timezone)
        monitor = current_monitor()
        monitor.task(report.table, len(windows))
        with session.use() as client:
            for _, window in windows:
                start, stop = _time_range(window.start, window.end)
                params = {
                    "report_name": report.report_name,
                    "time_start": start,
                    "time_stop": stop,
                    "language": settings.language,
                    "footerIdentifier": FOOTER_IDENTIFIER,
                }
                try:
                    answer = client.call("getReportData", params) or {}
                except JsonRpcError as error:
                    if is_retired(error):
                        raise retired_hint(error) from None
                    raise
                rows_seen = 0
                names: list[str] = []
                for index, analysis in enumerate(answer.get("analyses") or [], start=1):
                    if not isinstance(analysis, Mapping):
                        continue
                    base = snake(str(analysis.get("analysisTitle") or ""), f"analysis_{index}")
                    name = base if base not in names else f"{base}_{index}"
                    names.append(name)
                    shape = analysis_shape(analysis)
                    parts = [("", shape.spec(), analysis_rows(shape, analysis, FOOTER_IDENTIFIER, window.start))]
                    parts += [
                        (f"__{suffix}", spec, rows) for suffix, spec, rows in analysis_extras(analysis, window.start)
                    ]
                    for suffix, spec, rows in parts:
                        if not rows:
                            continue
                        rows_seen += len(rows)
                        hints = make_hints(
                            table_name=f"{report.table}__{name}{suffix}",
                            write_disposition="merge",
                            primary_key=list(spec.primary_key),
                            columns=spec.hints(),
                        )
                        yield dlt.mark.with_hints(spec.arrow(rows), hints, create_table_variant=True)
                monitor.advance(report.table, rows=rows_seen)
        plan.complete()

    return settings.days.attach(dlt.resource(load, name=report.table, write_disposition="merge"))


# -- check -----------------------------------------------------------------------------------------------------
def check_connection() -> str:
    """`clickhaul check webtrekk`: getConnectionTest, then a login and logout prove the credentials; with
    Analytics API credentials, a token and the month's usage prove those."""
    return _check()


@with_config(sections=("sources", "webtrekk"))
def _check(
    customer_id: str | None = dlt.secrets.value,
    login: str | None = dlt.secrets.value,
    password: str | None = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    language: str = "en",
    rate_limits: Any = None,
    analytics_client_id: str | None = dlt.secrets.value,
    analytics_client_secret: str | None = dlt.secrets.value,
    analytics_base_url: str = DEFAULT_ANALYTICS_BASE_URL,
    analytics_token_url: str = DEFAULT_ANALYTICS_TOKEN_URL,
    analytics_scope: str | None = None,
) -> str:
    register_secrets([password, analytics_client_secret])
    lines = []
    analytics = analytics_client_id or analytics_client_secret
    if not analytics or customer_id or login or password:
        require(VENDOR, customer_id=customer_id, login=login, password=password)
        check_base_url(base_url, "sources.webtrekk.base_url")
        limits = rate_limit_pairs(rate_limits)
        client = WebtrekkClient(
            base_url, str(customer_id), str(login), str(password), language=language, rate_limits=limits, timeout=30.0
        )
        try:
            answer = client.connection_test()
            client.token()
        finally:
            client.close()
        lines.append(f"webtrekk at {base_url}: {answer}; login accepted for customer {customer_id}")
    if analytics:
        lines.append(
            check_analytics(analytics_client_id, analytics_client_secret, analytics_base_url, analytics_token_url,
                            analytics_scope)
        )  # fmt: skip
    return "\n".join(lines)
