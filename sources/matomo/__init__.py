"""Matomo: raw visits and their actions (Live API), daily reports (archives) per site, sites and goals.

Visits are read per site and day (the site's timezone), the day of a visit being the day of its last action, as
Live.getLastVisitsDetails and Matomo's reports count it. A site-day that fits one page (`page_size`) is one
atomic answer. A bigger one is paged by offset (newest first), which shifts while Matomo tracks: a visit that
continues moves to the top, a new one pushes the rest down. So after the pages, one listing of the day's visit ids
(without actions, one answer) names every visit that was missed or has changed since its page, and those are read
again by id. A visit read twice in one run (it moved to the next day meanwhile) keeps its newest reading.

Scheduled runs re-read `lookback_days`, plus the days of visits Matomo stored since the last run with an older
date (back-dated hits): one listing per site of the visits with an id above the highest seen (`visitId>N`).

Reports are built by Matomo's archiver, lazily: today's archive changes all day, yesterday's may be incomplete,
and a past day's archive stays as it is until it is invalidated (and then rebuilt on the next request, or by the
cron). A report day counts as final when it is before yesterday and its archived VisitsSummary has exactly the
visits and actions the raw visit log holds for it. Days that are not final are kept in the source state and read
again by every report on each scheduled run until they are.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
from dlt.extract.hints import make_hints
from dlt.sources import DltResource

from sources.common.arrow import TableSpec, batched
from sources.common.clock import today_in
from sources.common.config import ExplicitArguments
from sources.common.errors import ConfigError
from sources.common.fanout import fan_out
from sources.common.incremental import DayCursor, DayPlan, scheduler_interval, watermark
from sources.common.lazy import Once
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow, check_timezone, parse_date

from .client import MatomoApiError, MatomoReader
from .config import MatomoSourceConfig
from .settings import (
    ACTIONS,
    ACTIONS_NEWEST,
    GOAL_DEFINITIONS,
    ID_CHUNK,
    REPORTS,
    SITES,
    SUMMARY_TABLE,
    VISITS,
    VISITS_NEWEST,
    Report,
)

__all__ = ["check_connection", "matomo_source"]

log = logging.getLogger("clickhaul.matomo")

STATE_KEY = "matomo"  # source state: {"max_id_visit": {site: N}, "pending_days": {site: [YYYY-MM-DD]}}
OTHERS = "Others"  # the row Matomo sums a truncated table's remaining rows into


@dataclass(frozen=True)
class Site:
    id: int
    timezone: str  # IANA name the site's days are calendar days in
    row: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.id)

    def day_of(self, timestamp: Any) -> dt.date | None:
        moment = instant(timestamp)
        return moment.astimezone(ZoneInfo(self.timezone)).date() if moment else None


@dlt.source(name="matomo", max_table_nesting=0, spec=ExplicitArguments)
def matomo_source(config: MatomoSourceConfig | None = None, **settings: Any) -> Iterator[DltResource]:
    """`sites`, `goal_definitions`, `visits` (with `actions`) and one resource per daily report (`REPORTS`).

    `config` is read from `[sources.matomo]` (or SOURCES__MATOMO__*) when not given; `settings` override its
    fields by name (`start_date`/`end_date`: the CLI's --start/--end, an exact range that moves no state).
    """
    config = config or MatomoSourceConfig.from_config(**settings)
    days = config.days
    reader = config.reader()
    # Listing sites is a request: made on first use during extraction, never while the source is defined.
    sites = Once(lambda: select_sites(reader.sites(), config.site_ids, config.timezone))
    fresh = Freshness(reader, sites, days)

    def site_rows() -> Iterator[pa.Table]:
        if sites():
            yield SITES.arrow([site_row(site) for site in sites()])

    def goal_rows() -> Iterator[pa.Table]:
        for site in sites():
            goals = [goal_row(site, goal) for goal in reader.goals(site.id)]
            if goals:
                yield GOAL_DEFINITIONS.arrow(goals)

    yield dlt.resource(
        site_rows, name="sites", write_disposition="replace", primary_key=SITES.primary_key, columns=SITES.hints()
    )
    yield dlt.resource(
        goal_rows,
        name="goal_definitions",
        write_disposition="replace",
        primary_key=GOAL_DEFINITIONS.primary_key,
        columns=GOAL_DEFINITIONS.hints(),
    )
    yield visits_resource(reader, sites, days, fresh, config.page_size, config.workers)
    for report in REPORTS:
        yield report_resource(report, reader, sites, days, fresh, config.workers)


# -- sites ------------------------------------------------------------------------------------------------------
def site_timezone(value: Any, fallback: str) -> str:
    """Matomo's site timezone as an IANA name: "UTC+2" (a manual offset) becomes Etc/GMT-2; a fractional offset
    ("UTC+5.5") has no IANA name and takes `fallback` (sources.matomo.timezone)."""
    text = str(value or "UTC").strip()
    match = re.fullmatch(r"UTC([+-])(\d+(?:\.\d+)?)", text)
    if match:
        sign, hours = match.groups()
        if float(hours) != int(float(hours)):
            log.warning("matomo site timezone %s has no IANA name: its days are taken in %s", text, fallback)
            return fallback
        return "UTC" if int(float(hours)) == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{int(float(hours))}"
    try:
        return check_timezone(text)
    except ConfigError:
        return fallback


def select_sites(available: list[dict[str, Any]], wanted: Sequence[int] | None, fallback_tz: str) -> list[Site]:
    known = {}
    for row in available:
        try:
            known[int(row["idsite"])] = row
        except (KeyError, TypeError, ValueError):
            continue
    if wanted:
        unknown = [str(site) for site in wanted if site not in known]
        if unknown:
            raise ConfigError(
                f"unknown matomo site id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in "
                f"sources.matomo.site_ids: this token can view {', '.join(map(str, sorted(known))) or 'no sites'}"
            )
    chosen = list(wanted) if wanted else sorted(known)
    return [Site(site, site_timezone(known[site].get("timezone"), fallback_tz), known[site]) for site in chosen]


def site_row(site: Site) -> dict[str, Any]:
    row = {snake(key): value for key, value in site.row.items() if key != "idsite"}
    return {**row, "site_id": site.id}


def goal_row(site: Site, goal: dict[str, Any]) -> dict[str, Any]:
    row = {snake(key): value for key, value in goal.items() if key not in ("idsite", "idgoal")}
    return {**row, "site_id": site.id, "goal_id": goal.get("idgoal")}


_CAMEL_RUN = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """Matomo's camelCase field names as the warehouse spells columns: `idVisit` → `id_visit`."""
    return _CAMEL.sub(r"\1_\2", _CAMEL_RUN.sub(r"\1_\2", name)).lower()


def instant(timestamp: Any) -> dt.datetime | None:
    """Matomo's unix seconds as a UTC time."""
    if timestamp is None or timestamp == "":
        return None
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC)


# -- which days a run reads ----------------------------------------------------------------------------------
def site_days(
    days: DayCursor, resource: str, sites: list[Site], extra: dict[int, set[dt.date]]
) -> tuple[dict[int, DayPlan], list[tuple[Site, dt.date]]]:
    """Each site's days for `resource`: its own span (watermark, lookback, or the fixed range) plus `extra`; the
    plans by site id."""
    plans, jobs = {}, []
    for site in sites:
        plan = plans[site.id] = days.plan(resource, site.timezone, [site.key])
        wanted = {day for _, window in plan.windows("day", site.timezone) for day in window.days}
        jobs += [(site, day) for day in sorted(wanted | extra.get(site.id, set()))]
    return plans, jobs


def changed_day(plans: dict[int, DayPlan], site: Site, day: dt.date, pages: Iterable[Any]) -> Iterator[Any]:
    """A site's pages of one day, unless they are what the last scheduled run loaded (`DayPlan.changed`)."""
    return plans[site.id].changed(site.key, DateWindow(day, day, site.timezone), pages)


class Freshness:
    """What a scheduled run must read beyond each table's lookback, worked out once per run: the days of visits
    stored since the last run (back-dated hits) and the report days whose archive was not final yet. Fixed
    ranges (--start/--end, backfills, Airflow intervals) read exactly their days and leave this state alone."""

    def __init__(self, reader: MatomoReader, sites: Callable[[], list[Site]], days: DayCursor) -> None:
        self.reader = reader
        self.sites = sites
        self.days = days
        self._extra = Once(self._plan)
        self._lock = threading.Lock()
        self._summaries: dict[tuple[int, dt.date], Any] = {}
        self._final: dict[tuple[int, dt.date], bool] = {}

    @property
    def scheduled(self) -> bool:
        return self.days.end_date is None and scheduler_interval() is None

    def extra(self) -> dict[int, set[dt.date]]:
        """Call from a resource's own thread (it reads the source state)."""
        return self._extra()

    def _plan(self) -> dict[int, set[dt.date]]:
        if not self.scheduled:
            return {}
        state = dlt.current.source_state().setdefault(STATE_KEY, {})
        marks = state.setdefault("max_id_visit", {})
        pending_days = state.setdefault("pending_days", {})
        summary_state = dlt.current.resource_state(SUMMARY_TABLE)
        extra = {}
        for site in self.sites():
            earlier = {parse_date(day) for day in pending_days.get(site.key, [])}
            touched = self.touched(site, marks)
            span = self.days.span(watermark(summary_state, site.key), site.timezone)
            candidates = set(earlier | touched)
            if span is not None:
                candidates |= {span[0] + dt.timedelta(days=n) for n in range((span[1] - span[0]).days + 1)}
            pending = sorted(day for day in candidates if not self.is_final(site, day))
            pending_days[site.key] = [day.isoformat() for day in pending]
            extra[site.id] = earlier | touched
        return extra

    def touched(self, site: Site, marks: dict[str, int]) -> set[dt.date]:
        """The days of visits Matomo stored since the last run (ids only grow): one listing without actions."""
        mark = marks.get(site.key)
        if mark is None:
            return set()
        today = today_in(site.timezone)
        if today < self.days.start_date:
            return set()
        found = self.reader.visits(site.id, self.days.start_date, today, segment=f"visitId>{mark}", actions=False)
        ids = [int(visit["idVisit"]) for visit in found if visit.get("idVisit") is not None]
        if ids:
            marks[site.key] = max(mark, *ids)
        touched = {site.day_of(visit.get("lastActionTimestamp")) for visit in found}
        return {day for day in touched if day is not None and day >= self.days.start_date}

    def remember(self, highest: dict[int, int]) -> None:
        """The highest visit id read by a scheduled run, for sites without a mark yet (their first run)."""
        if not self.scheduled or not highest:
            return
        marks = dlt.current.source_state().setdefault(STATE_KEY, {}).setdefault("max_id_visit", {})
        for site, visit_id in highest.items():
            marks.setdefault(str(site), visit_id)

    def summary(self, site: Site, day: dt.date) -> Any:
        key = (site.id, day)
        with self._lock:
            if key in self._summaries:
                return self._summaries[key]
        answer = self.reader.report("VisitsSummary.get", site.id, day)
        with self._lock:
            self._summaries[key] = answer
        return answer

    def is_final(self, site: Site, day: dt.date) -> bool:
        """Before yesterday, and the archive holds the visits and actions of the raw log (one listing)."""
        if day >= today_in(site.timezone) - dt.timedelta(days=1):
            return False
        key = (site.id, day)
        with self._lock:
            if key in self._final:
                return self._final[key]
        summary = self.summary(site, day)
        figures = summary if isinstance(summary, dict) else {}
        listed = self.reader.visits(site.id, day, day, actions=False)
        final = int(figures.get("nb_visits") or 0) == len(listed) and int(figures.get("nb_actions") or 0) == sum(
            int(visit.get("actions") or 0) for visit in listed
        )
        with self._lock:
            self._final[key] = final
        return final


# -- visits and actions -------------------------------------------------------------------------------------
def read_day(reader: MatomoReader, site: int, day: dt.date, page_size: int) -> list[dict[str, Any]]:
    """Every visit whose last action is on `day`, exactly, however Matomo tracks meanwhile (see the module)."""
    seen: dict[int, dict[str, Any]] = {}
    pages = 0
    for page in reader.visit_pages(site, day, page_size):
        pages += 1
        for visit in page:
            keep_newest(seen, visit)
    if pages > 1:  # offsets may have shifted between pages: one atomic listing says what was missed or changed
        listing = reader.visits(site, day, day, actions=False)
        stale = [int(visit["idVisit"]) for visit in listing if is_newer(visit, seen)]
        for start in range(0, len(stale), ID_CHUNK):
            for visit in reader.visits_by_id(site, day, stale[start : start + ID_CHUNK]):
                keep_newest(seen, visit)
    return list(seen.values())


def _reading(visit: dict[str, Any]) -> tuple[int, int]:
    return int(visit.get("lastActionTimestamp") or 0), int(visit.get("actions") or 0)


def is_newer(visit: dict[str, Any], seen: dict[int, dict[str, Any]]) -> bool:
    known = seen.get(int(visit["idVisit"]))
    return known is None or _reading(visit) > _reading(known)


def keep_newest(seen: dict[int, dict[str, Any]], visit: dict[str, Any]) -> None:
    if visit.get("idVisit") is not None and is_newer(visit, seen):
        seen[int(visit["idVisit"])] = visit


def visit_row(site: Site, visit: dict[str, Any]) -> dict[str, Any]:
    row = {snake(key): value for key, value in visit.items() if key not in ("actionDetails", "idSite", "idVisit")}
    last = instant(visit.get("lastActionTimestamp"))
    row |= {
        "site_id": site.id,
        "id_visit": visit["idVisit"],
        "day": site.day_of(visit.get("lastActionTimestamp")),
        "timezone": site.timezone,
        "first_action_time": instant(visit.get("firstActionTimestamp")),
        "last_action_time": last,
    }
    return row


def action_rows(site: Site, visit: dict[str, Any]) -> list[dict[str, Any]]:
    last = instant(visit.get("lastActionTimestamp"))
    rows = []
    for position, action in enumerate(visit.get("actionDetails") or [], start=1):
        if not isinstance(action, dict):
            continue
        row = {snake(key): value for key, value in action.items()}
        row |= {
            "site_id": site.id,
            "id_visit": visit["idVisit"],
            "position": position,
            "timestamp": instant(action.get("timestamp")),
            "day": site.day_of(action.get("timestamp")),
            "visit_last_action_time": last,
        }
        rows.append(row)
    return rows


def newest_first(spec: TableSpec, column: str) -> Any:
    """The table's hints with `column` as dlt's dedup sort: of two rows with one key in a load, the newest wins."""
    hints = spec.hints()
    hints[column]["dedup_sort"] = "desc"
    return hints


def visits_resource(
    reader: MatomoReader,
    sites: Callable[[], list[Site]],
    days: DayCursor,
    fresh: Freshness,
    page_size: int,
    workers: int,
) -> DltResource:
    # Both tables' pages carry their own hints: a table variant would also take the resource's columns.
    visits_hints, actions_hints = (
        make_hints(
            table_name=name,
            write_disposition="merge",
            primary_key=list(spec.primary_key),
            columns=newest_first(spec, newest),
        )
        for name, spec, newest in (("visits", VISITS, VISITS_NEWEST), ("actions", ACTIONS, ACTIONS_NEWEST))
    )

    def load() -> Iterator[Any]:
        extra = fresh.extra()
        plans, jobs = site_days(days, "visits", sites(), extra)
        monitor = current_monitor()
        monitor.task("visits", len(jobs))
        highest: dict[int, int] = {}
        lock = threading.Lock()

        def pages(site: Site, day: dt.date) -> Iterator[Any]:
            visits = read_day(reader, site.id, day, page_size)
            monitor.advance("visits", rows=len(visits))
            if visits:
                with lock:
                    highest[site.id] = max(highest.get(site.id, 0), *(int(visit["idVisit"]) for visit in visits))
                rows = [visit_row(site, visit) for visit in visits]
                yield dlt.mark.with_hints(VISITS.arrow(rows), visits_hints, create_table_variant=True)
                actions = [row for visit in visits for row in action_rows(site, visit)]
                if actions:
                    yield dlt.mark.with_hints(ACTIONS.arrow(actions), actions_hints, create_table_variant=True)

        def read(job: tuple[Site, dt.date]) -> Iterator[Any]:
            site, day = job
            yield from changed_day(plans, site, day, pages(site, day))

        yield from fan_out(jobs, read, workers, "matomo_visits")
        fresh.remember(highest)
        for plan in plans.values():
            plan.complete()

    return days.merge_resource(load, "visits", VISITS.primary_key, parallelized=True)


# -- daily reports ------------------------------------------------------------------------------------------
def path_of(row: dict[str, Any]) -> str:
    """A page row's key: the URL's path and query (as flat=1 labels show it), the label where there is no URL."""
    url = row.get("url")
    if url:
        parts = urlsplit(str(url))
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return str(row.get("label") or "")


def report_rows(report: Report, answer: Any, constants: dict[str, str]) -> list[dict[str, Any]]:
    """One report answer as rows with the table's dimensions filled (never null: they are key columns)."""
    if report.kind == "object":
        figures = answer if isinstance(answer, dict) else {}  # Matomo answers [] for a day without visits
        zeros = {name: 0 for name, kind in report.metrics.items() if kind == "bigint" and name != "is_final"}
        return [{**zeros, **figures}]
    rows = [dict(row) for row in answer or [] if isinstance(row, dict)]
    truncated = any(row.get("label") == OTHERS for row in rows)
    for row in rows:
        row |= constants
        row["is_truncated"] = truncated
        if "path" in report.dimensions:
            row["path"] = path_of(row)
        if "referrer_type" in report.dimensions:
            row["referrer_type"] = row.pop("referer_type", None) or 0
        row["label"] = str(row.get("label") or "")
    return rows


def report_resource(
    report: Report,
    reader: MatomoReader,
    sites: Callable[[], list[Site]],
    days: DayCursor,
    fresh: Freshness,
    workers: int,
) -> DltResource:
    spec = report.spec
    missing: set[str] = set()

    def answer_of(method: str, site: Site, day: dt.date) -> Any:
        if report.table == SUMMARY_TABLE:
            return fresh.summary(site, day)
        return reader.report(method, site.id, day, **report.params)

    def load() -> Iterator[pa.Table]:
        extra = fresh.extra()
        plans, jobs = site_days(days, report.table, sites(), extra)
        monitor = current_monitor()
        monitor.task(report.table, len(jobs))

        def read(job: tuple[Site, dt.date]) -> Iterator[pa.Table]:
            site, day = job
            rows: list[dict[str, Any]] = []
            for method, constants in report.methods:
                if method in missing:
                    continue
                try:
                    answer = answer_of(method, site, day)
                except MatomoApiError as error:
                    if not (report.optional and error.plugin_missing):
                        raise
                    missing.add(method)  # the plugin is off: no rows, and no more requests for it
                    log.info("matomo: %s is not available (%s): %s stays empty", method, error, report.table)
                    continue
                rows += report_rows(report, answer, constants)
            for row in rows:
                row |= {"site_id": site.id, "day": day, "timezone": site.timezone}
                if report.table == SUMMARY_TABLE:
                    row["is_final"] = fresh.is_final(site, day)
            monitor.advance(report.table, rows=len(rows))
            yield from changed_day(plans, site, day, [spec.arrow(rows)] if rows else [])

        yield from batched(fan_out(jobs, read, workers, f"matomo_{report.table}"))
        for plan in plans.values():
            plan.complete()

    return days.merge_resource(load, report.table, spec.primary_key, spec.hints(), parallelized=True)


def check_connection() -> str:
    """`clickhaul check matomo`: the version and the site list prove the address and the token."""
    config = MatomoSourceConfig.from_config()
    reader = config.reader(timeout=30.0)
    try:
        version = reader.version()
        sites = select_sites(reader.sites(), config.site_ids, config.timezone)
    finally:
        reader.close()
    names = ", ".join(f"{site.row.get('name')} ({site.id}, {site.timezone})" for site in sites) or "none"
    return f"matomo {version} at {reader.url}: token accepted, {len(sites)} site(s): {names}"
