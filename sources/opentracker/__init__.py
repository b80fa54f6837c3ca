"""Opentracker: every session (one row per visit, ~70 fields), exactly once, incrementally by session start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import dlt
import pyarrow as pa
from dlt.sources import DltResource

from sources.common.arrow import batched
from sources.common.config import ExplicitArguments
from sources.common.errors import ConfigError
from sources.common.fanout import fan_out, read_ahead
from sources.common.incremental import DayCursor, DayPlan
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow, WindowUnit

from .client import OpentrackerClient, filter_params
from .config import OpentrackerConfig
from .settings import API_FIELDS, BY_USER_TABLE, FILTERS, REQUIRED_COLUMNS, TABLE
from .table import hints, keep_latest, page_table

__all__ = ["check_connection", "opentracker_source"]

KEY = "sources.opentracker"


@dlt.source(name="opentracker", max_table_nesting=0, spec=ExplicitArguments)
def opentracker_source(config: OpentrackerConfig | None = None, **settings: Any) -> Iterator[DltResource]:
    """`sessions` for every site, window by window (default: a day); `sessions_by_user` for the listed users.

    `config` is read from `[sources.opentracker]` when not given; `settings` override its fields by name. Without
    `end_date` the run continues from the watermarks and re-reads `lookback_days`, because sessions still open at
    the last run have since ended; with `start_date`..`end_date` exactly that range is loaded and no state moves.
    """
    config = config or OpentrackerConfig.from_config(**settings)
    api_filters = session_filters(config.filters)
    client = config.client()
    reader = SessionReader(client, config.sites, api_filters, config.workers)

    # Read by the CLI before a pipeline exists (VENDOR_SPEC.preflight): a site this login may not read fails first.
    def site_access() -> Iterator[Any]:
        yield from reader.confirm_sites()

    yield dlt.resource(site_access, name="site_access", selected=False)
    yield sessions_resource(reader, config.days, config.window)  # type: ignore[arg-type]
    users = [("machine_idx", value) for value in config.user_machine_idxs]
    users += [("visit_id", value) for value in config.user_visit_ids]
    by_user = dlt.resource(users, name="user_keys", selected=False) | sessions_by_user(reader)
    by_user.selected = bool(users)
    yield by_user


def session_filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    params = filter_params(filters, FILTERS, f"{KEY}.filters")
    if "showColumns" in params:
        columns = [name.strip() for name in params["showColumns"].split(",") if name.strip()]
        unknown = [name for name in columns if name not in API_FIELDS]
        if unknown:
            raise ConfigError(
                f"{KEY}.filters.show_columns names unknown column(s) {', '.join(unknown)}: use the API's raw "
                f"technical names, e.g. session_id, session_start_unix_timestamp, country_code"
            )
        # The key and the cursor cannot be left out: without them sessions can be neither merged nor dated.
        columns += [name for name in REQUIRED_COLUMNS if name not in columns]
        params["showColumns"] = ",".join(columns)
    return params


class SessionReader:
    """Reads whole windows (every page, de-duplicated) for each site, several windows at once."""

    def __init__(self, client: OpentrackerClient, sites: list[str], filters: dict[str, str], workers: int) -> None:
        self.client = client
        self.sites = sites
        self.filters = filters
        self.workers = workers

    def confirm_sites(self) -> Iterator[Any]:
        """One tiny request per site not yet confirmed by this client: proves the login may read it."""
        for site in self.sites:
            self.client.confirm_site(site)
        yield from ()

    def windows(self, plan: DayPlan, unit: WindowUnit) -> Iterator[pa.Table]:
        """Pages of the plan's (site, window) jobs as they arrive, `workers` at a time, window by window with the
        sites side by side. A session seen on two pages (they overlap) is written twice and merged once: the
        merge keeps the copy with the latest `last_event`."""
        jobs = sorted(plan.windows(unit, self.client.timezone), key=lambda job: job[1].start)
        monitor = current_monitor()
        monitor.task(TABLE, len(jobs))

        def tables(site: str, window: DateWindow) -> Iterator[pa.Table]:
            for page in read_ahead(self.client.sessions(site, window, self.filters), "opentracker_pages"):
                table = page_table(page.fields, page.rows, self.client.timezone, window.start)
                del page  # let the parsed page go before the walk fetches the next one
                if table.num_rows:
                    yield table

        def read(job: tuple[str, DateWindow]) -> Iterator[pa.Table]:
            site, window = job
            yield from plan.changed(site, window, monitor.counted(TABLE, tables(site, window)))

        # Pages of about 900 sessions joined into tables of 10,000: dlt validates a table's hints and writes a
        # Parquet row group for every item, which at 70 columns cost more than the pages' own conversion.
        yield from batched(fan_out(jobs, read, self.workers, "opentracker"))


def sessions_resource(reader: SessionReader, days: DayCursor, unit: WindowUnit) -> DltResource:
    def sessions() -> Iterator[pa.Table]:
        plan = days.plan(TABLE, reader.client.timezone, reader.sites)
        yield from reader.windows(plan, unit)
        plan.complete()

    return days.merge_resource(sessions, TABLE, "session_id", hints())


def sessions_by_user(reader: SessionReader) -> DltResource:
    """Every session of each listed user (`machine_idx`) or visit (`visit_id`), in every site."""

    def load(key: tuple[str, str]) -> Iterator[pa.Table]:
        kind, value = key
        for site in reader.sites:
            pages = reader.client.sessions_by_user(site, **{kind: value})
            tables = [page_table(page.fields, page.rows, reader.client.timezone, dt.date(1970, 1, 1)) for page in pages]
            table = keep_latest(tables)
            if table is not None:
                yield table

    return dlt.transformer(
        load, name=BY_USER_TABLE, write_disposition="merge", primary_key="session_id", columns=hints()
    )


def check_connection() -> str:
    """`clickhaul check opentracker`: one small page per site proves credentials and site access."""
    config = OpentrackerConfig.from_config()
    client = config.client(timeout=30.0)
    try:
        for site in config.sites:
            client.confirm_site(site)
    finally:
        client.close()
    how = (
        "ticket_id" if config.ticket_id else ("a ticket from login/password" if config.use_ticket else "login/password")
    )
    return (
        f"opentracker at {config.base_url}: {how} accepted for {len(config.sites)} site(s): {', '.join(config.sites)}"
    )
