"""Webtrekk / Mapp Intelligence JSON-RPC: metadata, every exportData type, configured analyses and reports; with
Analytics API credentials, the Mapp Analytics resources too (`analytics/`).

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
from typing import Any

import dlt
import pyarrow as pa
from dlt.extract.hints import make_hints
from dlt.sources import DltResource

from sources.common.config import ExplicitArguments
from sources.common.errors import ClickhaulError
from sources.common.fanout import read_ahead
from sources.common.incremental import ACCOUNT
from sources.common.lazy import SharedUse
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow, WindowUnit

from .analytics import analytics_quota, analytics_resources, check_analytics
from .client import JsonRpcError, WebtrekkClient
from .config import AnalysisEntry, ReportEntry, WebtrekkConfig
from .settings import FOOTER_IDENTIFIER, LEGACY_METHODS, TIME_WINDOW_UNIT, ExportType
from .tables import (
    TableSpec,
    analysis_extras,
    analysis_rows,
    analysis_shape,
    export_columns,
    export_table,
    snake,
    table_spec,
)

__all__ = ["WebtrekkConfig", "check_analytics_quota", "check_connection", "webtrekk_source"]

log = logging.getLogger("clickhaul.webtrekk")
_RETIRED = re.compile(r"method.*not (found|available|supported)|unknown method|retired|no longer", re.IGNORECASE)
CHECK_TIMEOUT_SECONDS = 30.0


@dlt.source(name="webtrekk", max_table_nesting=0, spec=ExplicitArguments)
def webtrekk_source(config: WebtrekkConfig | None = None, **settings: Any) -> Iterator[DltResource]:
    """Metadata (`accounts`, `analysis_objects`, `metrics`, `custom_reports`, `dynamic_time_intervals`),
    `export_<type>` per entry of `export_types`, `analysis_<name>` per entry of `analyses` and `report_<name>`
    (tables `report_<name>__<analysis>`) per entry of `reports`.

    `config` is read from `[sources.webtrekk]` (or SOURCES__WEBTREKK__*) when not given; `settings` override its
    fields by name (`start_date`/`end_date`: the CLI's --start/--end). Analyses, reports and date-bound exports are
    loaded per day from the saved day cursor minus `lookback_days`; with `start_date`..`end_date` exactly that
    range is loaded and no state moves.

    The Mapp Analytics API adds `analytics_query_objects`, `analytics_segments`, `analytics_dynamic_timefilters`,
    `analytics_<name>` per entry of `analytics_queries` and `analytics_report_<name>` (tables
    `analytics_report_<name>__<element>`) per entry of `analytics_reports`. An account with only Analytics API
    credentials gets only those.
    """
    config = config or WebtrekkConfig.from_config(**settings)
    if config.jsonrpc:
        session = Session(config.client())
        yield from metadata_resources(session)
        for export, entries in config.exports.items():
            yield export_resource(session, export, entries, config)
        for analysis in config.analysis_entries:
            yield analysis_resource(session, analysis, config)
        for report in config.report_entries:
            yield report_resource(session, report, config)
    if config.analytics.enabled:
        yield from analytics_resources(config)


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
    session: Session, export: ExportType, entries: list[dict[str, Any]], config: WebtrekkConfig
) -> DltResource:
    """Undated types replace their table; dated ones are loaded per day and merged on (day, first column)."""

    def pages(client: WebtrekkClient, params: dict[str, Any], stamp: dict[str, Any]) -> Iterator[Any]:
        reserved = list(stamp)
        rows_seen = 0
        walk = client.export_pages({"type": export.name, **params}, config.export_page_size)
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

    days = config.days

    def load_days() -> Iterator[Any]:
        plan = days.plan(export.table, config.timezone, [ACCOUNT])
        windows = plan.windows("day", config.timezone)
        current_monitor().task(export.table, len(windows) * len(entries))
        with session.use() as client:

            def window_pages(window: DateWindow) -> Iterator[Any]:
                for params in entries:
                    stamp: dict[str, Any] = {"day": window.start}
                    if export.parameter:
                        stamp["parameter_title"] = params["title"]
                    dates = {"startDate": window.start.isoformat(), "endDate": window.end.isoformat()}
                    yield from pages(client, {**params, **dates}, stamp)

            for _, window in windows:
                yield from plan.changed(ACCOUNT, window, window_pages(window))
        plan.complete()

    return days.merge_resource(load_days, export.table)


# -- analyses and reports -----------------------------------------------------------------------------------
def _time_range(start: dt.date, end: dt.date) -> tuple[str, str]:
    return f"{start.isoformat()} 00:00:00", f"{end.isoformat()} 23:59:59"


def analysis_resource(session: Session, analysis: AnalysisEntry, config: WebtrekkConfig) -> DltResource:
    """One request window per day (or per month with a time object such as "Days"), paged against
    `totalRowCount`; footer rows dropped; numbers, percentages and dates typed from `analysisTabHead`."""
    footer = str(analysis.config.get("footerIdentifier") or FOOTER_IDENTIFIER)
    days = config.days

    def load() -> Iterator[Any]:
        plan = days.plan(analysis.table, config.timezone, [ACCOUNT])
        unit: WindowUnit = TIME_WINDOW_UNIT if analysis.time_object else "day"
        windows = plan.windows(unit, config.timezone)
        monitor = current_monitor()
        monitor.task(analysis.table, len(windows))
        with session.use() as client:

            def window_pages(window: DateWindow) -> Iterator[Any]:
                start, stop = _time_range(window.start, window.end)
                request = {**analysis.config, "startTime": start, "stopTime": stop, "footerIdentifier": footer}
                try:
                    for answer in client.analysis_pages(request, analysis.row_limit):
                        shape = analysis_shape(answer, analysis.config)
                        rows = analysis_rows(shape, answer, footer, window.start)
                        if rows:
                            spec = shape.spec()
                            yield _page(spec, spec.arrow(rows), primary_key=list(spec.primary_key))
                except JsonRpcError as error:
                    if is_retired(error):
                        raise retired_hint(error) from None
                    raise

            for _, window in windows:
                yield from plan.changed(ACCOUNT, window, monitor.counted(analysis.table, window_pages(window)))
        plan.complete()

    return days.merge_resource(load, analysis.table)


def report_resource(session: Session, report: ReportEntry, config: WebtrekkConfig) -> DltResource:
    """getReportData per day; each analysis of the report lands in `report_<name>__<analysis>`."""
    days = config.days

    def load() -> Iterator[Any]:
        plan = days.plan(report.table, config.timezone, [ACCOUNT])
        windows = plan.windows("day", config.timezone)
        monitor = current_monitor()
        monitor.task(report.table, len(windows))
        with session.use() as client:

            def window_pages(window: DateWindow) -> Iterator[Any]:
                start, stop = _time_range(window.start, window.end)
                params = {
                    "report_name": report.report_name,
                    "time_start": start,
                    "time_stop": stop,
                    "language": config.language,
                    "footerIdentifier": FOOTER_IDENTIFIER,
                }
                try:
                    answer = client.call("getReportData", params) or {}
                except JsonRpcError as error:
                    if is_retired(error):
                        raise retired_hint(error) from None
                    raise
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
                        hints = make_hints(
                            table_name=f"{report.table}__{name}{suffix}",
                            write_disposition="merge",
                            primary_key=list(spec.primary_key),
                            columns=spec.hints(),
                        )
                        yield dlt.mark.with_hints(spec.arrow(rows), hints, create_table_variant=True)

            for _, window in windows:
                yield from plan.changed(ACCOUNT, window, monitor.counted(report.table, window_pages(window)))
        plan.complete()

    return days.merge_resource(load, report.table)


# -- check and quota -------------------------------------------------------------------------------------------
def check_connection() -> str:
    """`clickhaul check webtrekk`: getConnectionTest, then a login and logout prove the JSON-RPC credentials; with
    Analytics API credentials, a token and the month's usage prove those."""
    config = WebtrekkConfig.from_config()
    lines = []
    if config.jsonrpc:
        client = config.client(timeout=CHECK_TIMEOUT_SECONDS)
        try:
            answer = client.connection_test()
            client.token()
        finally:
            client.close()
        lines.append(f"webtrekk at {config.base_url}: {answer}; login accepted for customer {config.customer_id}")
    if config.analytics.enabled:
        lines.append(check_analytics(config.analytics))
    return "\n".join(lines)


def check_analytics_quota(windows: Sequence[DateWindow], resources: Sequence[str] | None, force: bool) -> str | None:
    """`VendorSpec.before_backfill`: the Mapp Analytics calculations the backfill needs against the month's
    allowance, with the settings the source will use."""
    return analytics_quota(WebtrekkConfig.from_config(), windows, resources, force)
