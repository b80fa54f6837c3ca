"""Pirsch: domains, conversion goals and every statistics endpoint per domain and day, incrementally."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
from dlt.sources import DltResource

from sources.common.arrow import ColumnType, TableSpec, batched
from sources.common.config import ExplicitArguments
from sources.common.errors import ConfigError
from sources.common.fanout import fan_out
from sources.common.incremental import DayCursor
from sources.common.lazy import Once
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow, WindowUnit

from .client import PirschClient
from .config import PirschConfig
from .settings import (
    DOMAIN_COLUMNS,
    ENDPOINTS,
    EVENT_METADATA_DIMENSIONS,
    EVENT_METADATA_METRICS,
    EVENT_METADATA_PATH,
    EVENT_METADATA_TABLE,
    GOAL_COLUMNS,
    ROW_KEY,
    ROW_TIMEZONE,
    SERIES_WINDOW,
    Endpoint,
)

__all__ = ["check_connection", "pirsch_source"]


@dlt.source(name="pirsch", max_table_nesting=0, spec=ExplicitArguments)
def pirsch_source(config: PirschConfig | None = None, **settings: Any) -> Iterator[DltResource]:
    """One resource per statistics endpoint (see `settings.ENDPOINTS`), plus `domains` and `goals`.

    `config` is read from `[sources.pirsch]` (or SOURCES__PIRSCH__*) when not given; `settings` override its
    fields by name (`start_date`/`end_date`: the CLI's --start/--end). Without `end_date` each resource continues
    from its watermarks, re-reading `lookback_days` because Pirsch restates recent days; with `start_date`..
    `end_date` exactly that range is loaded and no state moves.
    """
    config = config or PirschConfig.from_config(**settings)
    days = config.days
    client = config.client()
    wanted = config.domain_ids
    # Listing domains is a request: it happens on first use during extraction, never while the source is defined
    # (a DAG parse, a backfill window). Unknown ids still fail before any statistics request.
    domains = Once(lambda: select_domains(client.domains(), wanted))
    stats = StatsReader(client, domains, config.timezone, config.workers)

    def domain_rows() -> Iterator[pa.Table]:
        if domains():
            yield DOMAINS.arrow(domains())

    yield dlt.resource(
        domain_rows,
        name="domains",
        write_disposition="replace",
        primary_key=DOMAINS.primary_key,
        columns=DOMAINS.hints(),
    )
    yield dlt.resource(
        stats.goals(),
        name="goals",
        write_disposition="replace",
        primary_key=GOALS.primary_key,
        columns=GOALS.hints(),
    )
    for endpoint in ENDPOINTS:
        resource = stats_resource(stats, endpoint, days)
        if endpoint.table == "keywords":
            resource.selected = config.keywords
        yield resource
        if endpoint.table == "events":
            yield resource | event_metadata(stats)


def select_domains(available: list[dict[str, Any]], wanted: Sequence[str] | None) -> list[dict[str, Any]]:
    if not wanted:
        return available
    known = {domain["id"]: domain for domain in available}
    unknown = [domain_id for domain_id in wanted if domain_id not in known]
    if unknown:
        raise ConfigError(
            f"unknown pirsch domain id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in "
            f"sources.pirsch.domain_ids: this client can read {', '.join(sorted(known)) or 'no domains'}"
        )
    return [known[domain_id] for domain_id in wanted]


DOMAINS = TableSpec(DOMAIN_COLUMNS, ("id",))
GOALS = TableSpec(GOAL_COLUMNS, ("id",))


def statistics_table(dimensions: dict[str, ColumnType], metrics: dict[str, ColumnType]) -> TableSpec:
    """Every statistics row: (domain_id, day, dimensions) as key, the timezone it was bucketed in, metrics."""
    return TableSpec({**ROW_KEY, **dimensions, **ROW_TIMEZONE, **metrics}, (*ROW_KEY, *dimensions))


class StatsReader:
    """Requests statistics for the selected domains and turns answers into rows keyed by domain and day."""

    def __init__(
        self, client: PirschClient, domains: Callable[[], list[dict[str, Any]]], timezone: str, workers: int = 1
    ) -> None:
        self.client = client
        self.domains = domains
        self.timezone = timezone
        self.workers = workers

    @property
    def domain_ids(self) -> list[str]:
        return [domain["id"] for domain in self.domains()]

    def goals(self) -> Iterator[pa.Table]:
        for domain_id in self.domain_ids:
            goals = self.client.goals(domain_id)
            if goals:
                yield GOALS.arrow(goals)

    def params(self, domain_id: str, start: dt.date, end: dt.date, **extra: str) -> dict[str, str]:
        return {"id": domain_id, "from": start.isoformat(), "to": end.isoformat(), "tz": self.timezone, **extra}

    def rows(self, endpoint: Endpoint, domain_id: str, start: dt.date, end: dt.date) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows for one domain: series over [start, end], the others for the single day `start`."""
        params = self.params(domain_id, start, end, **endpoint.params)
        if endpoint.kind == "series":
            series = self.client.get(endpoint.path, {**params, "scale": "day"}) or []
            yield [self.stamp(row, domain_id, str(row.get("day", ""))[:10]) for row in series]
        elif endpoint.kind == "object":
            answer = self.client.get(endpoint.path, params) or {}
            yield [self.stamp(dict(answer), domain_id, start.isoformat())]
        else:
            for page in self.client.pages(endpoint.path, params):
                yield [
                    self.stamp(flatten(endpoint, row), domain_id, start.isoformat(), endpoint.dimensions)
                    for row in page
                ]

    def stamp(
        self, row: dict[str, Any], domain_id: str, day: str, dimensions: dict[str, ColumnType] | None = None
    ) -> dict[str, Any]:
        row["domain_id"] = domain_id
        row["day"] = day
        row["timezone"] = self.timezone
        for name, kind in (dimensions or {}).items():
            if row.get(name) is None and kind == "text":
                row[name] = ""  # key columns cannot be null; Pirsch sends null for "(none)"
        return row


def flatten(endpoint: Endpoint, row: dict[str, Any]) -> dict[str, Any]:
    """Shapes that are not flat in the API: goals nest `page_goal`/`stats`."""
    if endpoint.table == "conversion_goals":
        goal, stats = row.get("page_goal") or {}, row.get("stats") or {}
        return {
            "goal_id": goal.get("id"),
            "name": goal.get("name"),
            "path_pattern": goal.get("path_pattern"),
            "pattern": goal.get("pattern"),
            **stats,
        }
    return row


def stats_resource(stats: StatsReader, endpoint: Endpoint, days: DayCursor) -> DltResource:
    table = statistics_table(endpoint.dimensions, endpoint.metrics)

    def load() -> Iterator[pa.Table]:
        plan = days.plan(endpoint.table, stats.timezone, stats.domain_ids)
        unit: WindowUnit = SERIES_WINDOW if endpoint.kind == "series" else "day"
        jobs = plan.windows(unit, stats.timezone)
        monitor = current_monitor()
        monitor.task(endpoint.table, len(jobs))

        def read(job: tuple[str, DateWindow]) -> Iterator[pa.Table]:
            domain_id, window = job
            pages = (table.arrow(page) for page in stats.rows(endpoint, domain_id, window.start, window.end) if page)
            yield from plan.changed(domain_id, window, monitor.counted(endpoint.table, pages))

        yield from batched(fan_out(jobs, read, stats.workers, f"pirsch_{endpoint.table}"))
        plan.complete()

    return days.merge_resource(load, endpoint.table, table.primary_key, table.hints(), parallelized=True)


def event_metadata(stats: StatsReader) -> DltResource:
    """One breakdown per event and meta key and day, driven by the `events` rows just read."""
    table = statistics_table(EVENT_METADATA_DIMENSIONS, EVENT_METADATA_METRICS)

    def load(events: pa.Table) -> Iterator[pa.Table]:
        for event in events.select(["domain_id", "day", "name", "meta_keys"]).to_pylist():
            for meta_key in json.loads(event["meta_keys"] or "[]"):
                params = stats.params(
                    event["domain_id"], event["day"], event["day"], event=event["name"], event_meta_key=meta_key
                )
                for page in stats.client.pages(EVENT_METADATA_PATH, params):
                    rows = [
                        stats.stamp(
                            {**row, "event_name": event["name"], "meta_key": meta_key},
                            event["domain_id"],
                            event["day"].isoformat(),
                            EVENT_METADATA_DIMENSIONS,
                        )
                        for row in page
                    ]
                    yield table.arrow(rows)

    return dlt.transformer(
        load,
        name=EVENT_METADATA_TABLE,
        write_disposition="merge",
        primary_key=table.primary_key,
        columns=table.hints(),
    )


def check_connection() -> str:
    """`clickhaul check pirsch`: a token and the domain list prove credentials and reachability."""
    config = PirschConfig.from_config()
    client = config.client(timeout=30.0)
    try:
        domains = client.domains()
    finally:
        client.close()
    names = ", ".join(f"{d.get('hostname')} ({d.get('id')})" for d in domains) or "none"
    return f"pirsch at {config.base_url}: credentials accepted, {len(domains)} domain(s): {names}"
