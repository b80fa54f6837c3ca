"""Umami 2, Umami 3 and Umami Cloud: websites, daily stats and metrics, sessions, events, saved and declared
report results, incrementally by day."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import dlt
import pendulum
import pyarrow as pa
from dlt.sources import DltResource

from sources.common.arrow import TableSpec
from sources.common.clock import wall_time
from sources.common.config import ExplicitArguments
from sources.common.errors import ConfigError
from sources.common.incremental import DayCursor
from sources.common.lazy import Once
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow, WindowUnit

from .client import UmamiClient, ms
from .config import UmamiConfig
from .reports import calls, check_declared, declared_reports, flatten, report_type, request_body, saved_parameters
from .settings import (
    EVENT_COLUMNS,
    EVENT_DATA_COLUMNS,
    EVENT_DESCRIPTIONS,
    METRIC_TYPES,
    METRICS_COLUMNS,
    METRICS_DESCRIPTIONS,
    PAGEVIEWS_COLUMNS,
    PIN_MARGIN_SECONDS,
    REPORT_COLUMNS,
    REPORT_ROW_CONTEXT,
    REPORT_ROW_KEY,
    REPORT_TYPES,
    SERIES_WINDOW,
    SESSION_COLUMNS,
    SESSION_DESCRIPTIONS,
    STATS_COLUMNS,
    WEBSITE_COLUMNS,
    ApiVersion,
    ReportType,
)

__all__ = ["check_connection", "umami_source"]
log = logging.getLogger("clickhaul.umami")

WEBSITES = TableSpec(WEBSITE_COLUMNS, ("id",))
STATS = TableSpec(STATS_COLUMNS, ("website_id", "day"))
PAGEVIEWS = TableSpec(PAGEVIEWS_COLUMNS, ("website_id", "day"))
METRICS = TableSpec(METRICS_COLUMNS, ("website_id", "day", "type", "value"), METRICS_DESCRIPTIONS)
SESSIONS = TableSpec(SESSION_COLUMNS, ("id",), SESSION_DESCRIPTIONS)
EVENTS = TableSpec(EVENT_COLUMNS, ("id",), EVENT_DESCRIPTIONS)
EVENT_DATA = TableSpec(EVENT_DATA_COLUMNS, ("event_id", "data_key"))
REPORTS = TableSpec(REPORT_COLUMNS, ("id",))


def report_table(report: ReportType) -> TableSpec:
    return TableSpec(
        {**REPORT_ROW_KEY, **report.key, **REPORT_ROW_CONTEXT, **report.values},
        (*REPORT_ROW_KEY, *report.key),
        report.descriptions,
    )


@dlt.source(name="umami", max_table_nesting=0, spec=ExplicitArguments)
def umami_source(config: UmamiConfig | None = None, **settings: Any) -> Iterator[DltResource]:
    """Self-hosted (username/password → Bearer token) or Umami Cloud (api_key), Umami 2 or 3 (`api_version`).

    `config` is read from `[sources.umami]` when not given; `settings` override its fields by name. Without
    `end_date` each day-based resource continues from its watermark (per website), re-reading `lookback_days`;
    with `start_date`..`end_date` exactly that range is loaded and no state moves.
    """
    config = config or UmamiConfig.from_config(**settings)
    declared = declared_reports(config.reports)
    if config.api_version in ("2", "3"):  # known without asking: refuse what this version cannot run, up front
        check_declared(declared, cast(ApiVersion, config.api_version))
    days = config.days
    client = config.client()
    wanted = config.website_ids

    def resolve_websites() -> list[dict[str, Any]]:
        websites = select_websites(client, wanted)
        # A report the server's version cannot run is refused here, before any report request.
        check_declared(declared, client.detect_version(websites[0]["id"] if websites else None))
        return websites

    # Requests happen on first use during extraction, never while the source is defined (a DAG parse, a
    # backfill window); the CLI reads `websites` first, so an unknown id fails before anything is written.
    websites = Once(resolve_websites)
    reader = Reader(client, websites, config.timezone, declared)

    def website_rows() -> Iterator[pa.Table]:
        if websites():
            yield WEBSITES.arrow([website_row(w) for w in websites()])

    yield dlt.resource(
        website_rows,
        name="websites",
        write_disposition="replace",
        primary_key=WEBSITES.primary_key,
        columns=WEBSITES.hints(),
    )
    yield day_resource(reader, "website_stats", STATS, "day", reader.stats, days)
    yield day_resource(reader, "pageviews", PAGEVIEWS, SERIES_WINDOW, reader.pageviews, days)
    yield day_resource(reader, "metrics", METRICS, "day", reader.metrics, days)
    yield day_resource(reader, "sessions", SESSIONS, "day", reader.sessions, days)
    events = day_resource(reader, "events", EVENTS, "day", reader.events, days)
    yield events
    yield events | event_data_resource(reader)
    yield dlt.resource(
        reader.report_list(),
        name="reports",
        write_disposition="replace",
        primary_key=REPORTS.primary_key,
        columns=REPORTS.hints(),
    )
    window: WindowUnit = config.report_window  # type: ignore[assignment]
    for report in REPORT_TYPES:
        yield report_resource(reader, report, window, days)


def select_websites(client: UmamiClient, wanted: Sequence[str] | None) -> list[dict[str, Any]]:
    available = client.websites()
    if not wanted:
        return available
    known = {website["id"]: website for website in available}
    chosen, unknown = [], []
    for website_id in wanted:
        # A website shared through a team may be missing from the list but still readable: ask for it.
        website = known.get(website_id) or client.website(website_id)
        if website is None:
            unknown.append(website_id)
        else:
            chosen.append(website)
    if unknown:
        raise ConfigError(
            f"unknown umami website id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in "
            f"sources.umami.website_ids (Umami has no such website or these credentials cannot view it): they can "
            f"read {', '.join(sorted(known)) or 'no websites'}"
        )
    return chosen


def website_row(website: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": website.get("id"),
        "name": website.get("name"),
        "domain": website.get("domain"),
        "share_id": website.get("shareId"),
        "team_id": website.get("teamId"),
        "user_id": website.get("userId"),
        "reset_at": website.get("resetAt"),
        "created_at": website.get("createdAt"),
        "updated_at": website.get("updatedAt"),
    }


class Reader:
    """Turns Umami answers into rows keyed by website and day, for the selected websites."""

    def __init__(
        self,
        client: UmamiClient,
        websites: Callable[[], list[dict[str, Any]]],
        timezone: str,
        declared: list[dict[str, Any]],
    ):
        self.client = client
        self.websites = websites
        self.timezone = timezone
        self.declared = declared
        self._saved: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def website_ids(self) -> list[str]:
        return [website["id"] for website in self.websites()]

    @property
    def version(self) -> ApiVersion:
        self.websites()  # the version is detected with the website list
        return self.client.version

    def range_params(self, window: DateWindow, end_ms: int | None = None) -> dict[str, Any]:
        # Umami's ranges include endAt: stop one millisecond before the next local midnight.
        end = ms(window.end_at) - 1
        return {"startAt": ms(window.start_at), "endAt": min(end, end_ms) if end_ms else end, "timezone": self.timezone}

    def stats(self, website_id: str, window: DateWindow) -> Iterator[list[dict[str, Any]]]:
        stats = self.client.stats(website_id, self.range_params(window))
        yield [{"website_id": website_id, "day": window.start, "timezone": self.timezone, **stats}]

    def pageviews(self, website_id: str, window: DateWindow) -> Iterator[list[dict[str, Any]]]:
        answer = self.client.pageviews(website_id, {**self.range_params(window), "unit": "day"})
        days: dict[str, dict[str, Any]] = {}
        for series in ("pageviews", "sessions"):
            for point in answer.get(series) or []:
                day = str(point.get("x"))[:10]  # "2026-11-20 00:00:00": a label in the requested timezone
                days.setdefault(day, {"website_id": website_id, "day": day, "timezone": self.timezone})[series] = (
                    point.get("y")
                )
        yield list(days.values())

    def metrics(self, website_id: str, window: DateWindow) -> Iterator[list[dict[str, Any]]]:
        for metric in METRIC_TYPES:
            api_name = metric.api_name(self.version)
            if api_name is None:
                continue
            params = {**self.range_params(window), "type": api_name}
            for page in self.client.metrics(website_id, params):
                yield [
                    {
                        "website_id": website_id,
                        "day": window.start,
                        "type": metric.name,
                        "value": "" if row.get("x") is None else str(row.get("x")),
                        "timezone": self.timezone,
                        "total": row.get("y"),
                    }
                    for row in page
                ]

    def pinned_end(self) -> int:
        """endAt for row paging: a moment in the past, fixed for the whole run."""
        return ms(pendulum.from_timestamp(wall_time(), "UTC").subtract(seconds=PIN_MARGIN_SECONDS))

    def sessions(self, website_id: str, window: DateWindow, pin: int | None = None) -> Iterator[list[dict[str, Any]]]:
        params = self.range_params(window, pin)
        if params["endAt"] < params["startAt"]:
            return
        for page in self.client.rows(website_id, "sessions", params):
            yield [
                {
                    "id": row.get("id"),
                    "website_id": website_id,
                    "day": window.start,
                    "created_at": row.get("createdAt"),
                    "first_at": row.get("firstAt"),
                    "last_at": row.get("lastAt"),
                    "hostname": row.get("hostname"),
                    "browser": row.get("browser"),
                    "os": row.get("os"),
                    "device": row.get("device"),
                    "screen": row.get("screen"),
                    "language": row.get("language"),
                    "country": row.get("country"),
                    "region": row.get("region", row.get("subdivision1")),  # Umami 2 calls it subdivision1
                    "city": row.get("city"),
                    "visits": row.get("visits"),
                    "views": row.get("views"),
                }
                for row in page
            ]

    def events(self, website_id: str, window: DateWindow, pin: int | None = None) -> Iterator[list[dict[str, Any]]]:
        params = self.range_params(window, pin)
        if params["endAt"] < params["startAt"]:
            return
        for page in self.client.rows(website_id, "events", params):
            yield [
                {
                    "id": row.get("id"),
                    "website_id": website_id,
                    "session_id": row.get("sessionId"),
                    "day": window.start,
                    "created_at": row.get("createdAt"),
                    "event_type": row.get("eventType"),
                    "event_name": row.get("eventName"),
                    "hostname": row.get("hostname"),
                    "url_path": row.get("urlPath"),
                    "url_query": row.get("urlQuery"),
                    "page_title": row.get("pageTitle"),
                    "referrer_domain": row.get("referrerDomain"),
                    "referrer_path": row.get("referrerPath"),
                    "referrer_query": row.get("referrerQuery"),
                    "country": row.get("country"),
                    "city": row.get("city"),
                    "device": row.get("device"),
                    "os": row.get("os"),
                    "browser": row.get("browser"),
                    "has_data": row.get("hasData"),
                }
                for row in page
            ]

    # -- reports --------------------------------------------------------------------------------------
    def saved_reports(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._saved is None:
                self._saved = [r for w in self.website_ids for r in self.client.reports(w)]
            return self._saved

    def report_list(self) -> Iterator[pa.Table]:
        rows = [
            {
                "id": r.get("id"),
                "website_id": r.get("websiteId"),
                "type": r.get("type"),
                "name": r.get("name"),
                "description": r.get("description"),
                "parameters": saved_parameters(r),
                "user_id": r.get("userId"),
                "source": "saved",
                "created_at": r.get("createdAt"),
                "updated_at": r.get("updatedAt"),
            }
            for r in self.saved_reports()
        ]
        for entry in self.declared:
            for website_id in self.declared_websites(entry):
                rows.append(
                    {
                        "id": declared_id(entry, website_id),
                        "website_id": website_id,
                        "type": entry["type"],
                        "name": entry["name"],
                        "parameters": entry["parameters"],
                        "source": "config",
                    }
                )
        if rows:
            yield REPORTS.arrow(rows)

    def declared_websites(self, entry: dict[str, Any]) -> list[str]:
        website_id = entry.get("website_id")
        if website_id and website_id not in self.website_ids:
            raise ConfigError(
                f"sources.umami.reports {entry['name']!r}: website_id {website_id} is not among the selected websites"
            )
        return [website_id] if website_id else self.website_ids

    def runs(self, report: ReportType) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(report_id, report_name, website_id, parameters) of every saved and declared report of this type."""
        found = []
        for saved in self.saved_reports():
            kind = report_type(str(saved.get("type")))
            if kind is report:
                found.append((saved["id"], saved.get("name") or "", saved["websiteId"], saved_parameters(saved)))
        for entry in self.declared:
            if entry["type"] == report.name:
                for website_id in self.declared_websites(entry):
                    found.append((declared_id(entry, website_id), entry["name"], website_id, entry["parameters"]))
        return found

    def report_rows(
        self, report: ReportType, run: tuple[str, str, str, dict[str, Any]], window: DateWindow
    ) -> list[dict[str, Any]]:
        report_id, name, website_id, parameters = run
        api_name = report.api_name(self.version)
        if api_name is None:
            return []
        rows = []
        for call in calls(report, self.version, name, parameters):
            body = request_body(self.version, api_name, website_id, window, call.parameters)
            answer = self.client.run_report(api_name, body, f"report {report.name} {name!r}")
            rows += flatten(report, answer, call, self.timezone)
        context = {
            "report_id": report_id,
            "website_id": website_id,
            "window_start": window.start,
            "report_name": name,
            "window_end": window.end,
            "timezone": self.timezone,
            # The cursor is the window's last day: a week or month window starts before a backfill's first day,
            # and the cursor must not drop its rows; the next run re-reads the whole current window anyway.
            "day": window.end,
        }
        return [{**row, **context} for row in rows]


def declared_id(entry: dict[str, Any], website_id: str) -> str:
    return f"config:{entry['name']}:{website_id}"


def day_resource(
    reader: Reader,
    name: str,
    table: TableSpec,
    unit: WindowUnit,
    read: Callable[..., Iterator[list[dict[str, Any]]]],
    days: DayCursor,
) -> DltResource:
    """One resource over (website, window) pairs; `read` yields pages of rows for one website and window."""
    timezone = reader.timezone
    row_level = name in ("sessions", "events")

    def load() -> Iterator[pa.Table]:
        plan = days.plan(name, timezone, reader.website_ids)
        jobs = plan.windows(unit, timezone)
        pin = reader.pinned_end() if row_level else None
        monitor = current_monitor()
        monitor.task(name, len(jobs))
        for website_id, window in jobs:
            pages = read(website_id, window, pin) if row_level else read(website_id, window)
            tables = monitor.counted(name, (table.arrow(page) for page in pages if page))
            # A session with events on two days is listed in both windows and the later day's row wins within a
            # load: its windows are loaded together, never some of them left out as unchanged.
            yield from tables if name == "sessions" else plan.changed(website_id, window, tables)
        plan.complete()

    columns = table.hints()
    if name == "sessions":
        # A session with events on two days is listed in both windows: of one load's rows, keep the later day's.
        columns["day"]["dedup_sort"] = "desc"
    return days.merge_resource(load, name, table.primary_key, columns, parallelized=True)


def event_data_resource(reader: Reader) -> DltResource:
    """Umami 3: the properties of every event that has some (one request per such event). Umami 2 has no
    per-event endpoint, so this table stays empty there."""

    def load(events: pa.Table) -> Iterator[pa.Table]:
        if reader.version == "2":
            return
        for event in events.select(["id", "website_id", "day", "has_data"]).to_pylist():
            if not event["has_data"]:
                continue
            data = reader.client.event_data(event["website_id"], event["id"])
            rows = [
                {
                    "event_id": event["id"],
                    "data_key": item.get("dataKey"),
                    "website_id": event["website_id"],
                    "day": event["day"],
                    "data_type": item.get("dataType"),
                    "string_value": item.get("stringValue"),
                    "number_value": item.get("numberValue"),
                    "date_value": item.get("dateValue"),
                    "created_at": item.get("createdAt"),
                }
                for item in data
            ]
            if rows:
                yield EVENT_DATA.arrow(rows)

    return dlt.transformer(
        load,
        name="event_data",
        write_disposition="merge",
        primary_key=EVENT_DATA.primary_key,
        columns=EVENT_DATA.hints(),
    )


def report_resource(
    reader: Reader,
    report: ReportType,
    unit: WindowUnit,
    days: DayCursor,
) -> DltResource:
    """Every saved and declared report of one type, run once per window (day, or whole weeks/months); each report
    (saved or declared, per website) keeps its own watermark, so one added later gets its history."""
    table = report_table(report)

    def load() -> Iterator[pa.Table]:
        if report.api_name(reader.version) is None:
            return
        runs = {run[0]: run for run in reader.runs(report)}
        plan = days.plan(report.table, reader.timezone, runs)
        jobs = plan.windows(unit, reader.timezone, align=True)  # whole weeks/months: a window's rows are never partial
        monitor = current_monitor()
        monitor.task(report.table, len(jobs))
        for report_id, window in jobs:
            rows = reader.report_rows(report, runs[report_id], window)
            pages = monitor.counted(report.table, [table.arrow(rows)] if rows else [])
            yield from plan.changed(report_id, window, pages)
        plan.complete()

    return days.merge_resource(load, report.table, table.primary_key, table.hints(), parallelized=True)


def check_connection() -> str:
    """`clickhaul check umami`: a login (or the API key), the website list and the detected API version."""
    config = UmamiConfig.from_config()
    client = config.client(timeout=30.0)
    try:
        websites = client.websites()
        version = client.detect_version(websites[0]["id"] if websites else None)
    finally:
        client.close()
    names = ", ".join(f"{w.get('domain')} ({w.get('id')})" for w in websites) or "none"
    mode = "Umami Cloud (API key)" if config.api_key else "self-hosted (login)"
    return f"umami {version} at {config.base_url}, {mode}: {len(websites)} website(s): {names}"
