"""Opentracker: every session (one row per visit, ~70 fields), exactly once, incrementally by session start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.configuration.inject import with_config
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from sources.common.config import check_base_url, config_list
from sources.common.errors import ConfigError
from sources.common.fanout import fan_out
from sources.common.incremental import DayCursor, configured_days
from sources.common.monitor import current_monitor
from sources.common.pool import shared_client
from sources.common.windows import WINDOW_UNITS, DateWindow, WindowUnit, check_timezone

from .client import OpentrackerClient, filter_params
from .settings import (
    API_FIELDS,
    BY_USER_TABLE,
    DEFAULT_BASE_URL,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_TICKET_SECONDS,
    DEFAULT_WORKERS,
    FILTERS,
    PAGE_LIMIT,
    REQUIRED_COLUMNS,
    TABLE,
)
from .table import hints, keep_latest, page_table

__all__ = ["check_connection", "opentracker_source"]

KEY = "sources.opentracker"


@dlt.source(name="opentracker", section="opentracker", max_table_nesting=0)
def opentracker_source(
    sites: Any = dlt.config.value,  # a list, or a comma list (dlt resolves no str | list union)
    login: str | None = None,
    password: TSecretStrValue | None = None,
    ticket_id: TSecretStrValue | None = None,
    base_url: str = DEFAULT_BASE_URL,
    use_ticket: bool = True,
    ticket_url: str | None = None,
    ticket_seconds: int = DEFAULT_TICKET_SECONDS,
    timezone: str = "UTC",
    start_date: dt.date | str | None = None,
    end_date: dt.date | str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    window: str = "day",
    page_limit: int = PAGE_LIMIT,
    workers: int = DEFAULT_WORKERS,
    filters: Mapping[str, Any] | None = None,
    user_machine_idxs: Any = None,
    user_visit_ids: Any = None,
    request_timeout: float = 60.0,
) -> Iterator[DltResource]:
    """`sessions` for every site, window by window (default: a day); `sessions_by_user` for the listed users.

    Without `end_date` the run continues from the saved day cursor and re-reads `lookback_days`, because sessions
    still open at the last run have since ended; with `start_date`..`end_date` exactly that range is loaded and
    no state moves.
    """
    site_list = site_names(sites)
    check_base_url(base_url, f"{KEY}.base_url")
    if ticket_url:
        check_base_url(ticket_url, f"{KEY}.ticket_url")
    check_timezone(timezone)
    if lookback_days < 0:
        raise ConfigError(f"{KEY}.lookback_days must be 0 or more, not {lookback_days}")
    if window not in WINDOW_UNITS:
        raise ConfigError(f"{KEY}.window {window!r} is unknown: use one of {', '.join(WINDOW_UNITS)}")
    if not 1 <= page_limit <= PAGE_LIMIT:
        raise ConfigError(f"{KEY}.page_limit must be between 1 and {PAGE_LIMIT}, not {page_limit}")
    if not 1 <= workers <= 32:
        raise ConfigError(f"{KEY}.workers must be between 1 and 32, not {workers}")
    if ticket_seconds < 10:
        raise ConfigError(f"{KEY}.ticket_seconds must be at least 10, not {ticket_seconds}")
    api_filters = session_filters(filters)
    days = DayCursor(*configured_days(start_date, end_date, timezone, DEFAULT_HISTORY_DAYS), lookback_days)

    settings = dict(
        login=login,
        password=password,
        ticket_id=ticket_id,
        use_ticket=use_ticket,
        ticket_url=ticket_url,
        ticket_seconds=ticket_seconds,
        timezone=timezone,
        page_limit=page_limit,
        timeout=request_timeout,
    )
    # One client per account for the process: backfill windows share its ticket instead of logging in again.
    client = shared_client(
        lambda: OpentrackerClient(base_url, **settings),  # type: ignore[arg-type]
        "opentracker",
        base_url,
        sorted(settings.items()),
    )
    reader = SessionReader(client, site_list, api_filters, workers)

    # Read by the CLI before a pipeline exists (VENDOR_SPEC.preflight): a site this login may not read fails first.
    def site_access() -> Iterator[Any]:
        yield from reader.confirm_sites()

    yield dlt.resource(site_access, name="site_access", selected=False)
    yield sessions_resource(reader, days, window)  # type: ignore[arg-type]
    users = [("machine_idx", value) for value in config_list(user_machine_idxs, f"{KEY}.user_machine_idxs") or ()]
    users += [("visit_id", value) for value in config_list(user_visit_ids, f"{KEY}.user_visit_ids") or ()]
    by_user = dlt.resource(users, name="user_keys", selected=False) | sessions_by_user(reader)
    by_user.selected = bool(users)
    yield by_user


def site_names(sites: Any) -> list[str]:
    names = [str(site).strip() for site in config_list(sites, f"{KEY}.sites") or () if str(site).strip()]
    if not names:
        raise ConfigError(f'{KEY}.sites is empty: list the sites to load, e.g. sites = ["www.example.com"]')
    return names


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

    def windows(self, jobs: list[tuple[str, DateWindow]]) -> Iterator[pa.Table]:
        """Pages of (site, window) jobs as they arrive, `workers` at a time. A session seen on two pages (they
        overlap) is written twice and merged once: the merge keeps the copy with the latest `last_event`."""
        monitor = current_monitor()
        monitor.task(TABLE, len(jobs))

        def read(job: tuple[str, DateWindow]) -> Iterator[pa.Table]:
            site, window = job
            rows = 0
            for page in self.client.sessions(site, window, self.filters):
                table = page_table(page.fields, page.rows, self.client.timezone, window.start)
                del page  # let the parsed page go before the walk fetches the next one
                rows += table.num_rows
                if table.num_rows:
                    yield table
            monitor.advance(TABLE, rows=rows)

        yield from fan_out(jobs, read, self.workers, "opentracker")


def sessions_resource(reader: SessionReader, days: DayCursor, unit: WindowUnit) -> DltResource:
    def sessions() -> Iterator[pa.Table]:
        plan = days.plan(TABLE, reader.client.timezone, reader.sites)
        jobs = plan.windows(unit, reader.client.timezone)
        yield from reader.windows(sorted(jobs, key=lambda job: job[1].start))  # window by window, sites side by side
        plan.complete()

    resource = dlt.resource(sessions, name=TABLE, write_disposition="merge", primary_key="session_id", columns=hints())
    return days.attach(resource)


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
    return _check()


@with_config(sections=("sources", "opentracker"))
def _check(
    sites: Any = dlt.config.value,  # a list, or a comma list (dlt resolves no str | list union)
    login: str | None = None,
    password: TSecretStrValue | None = None,
    ticket_id: TSecretStrValue | None = None,
    base_url: str = DEFAULT_BASE_URL,
    use_ticket: bool = True,
    ticket_url: str | None = None,
    timezone: str = "UTC",
) -> str:
    site_list = site_names(sites)
    check_base_url(base_url, f"{KEY}.base_url")
    check_timezone(timezone)
    client = OpentrackerClient(
        base_url,
        login=login,
        password=password,
        ticket_id=ticket_id,
        use_ticket=use_ticket,
        ticket_url=ticket_url,
        timezone=timezone,
        timeout=30.0,
    )
    try:
        for site in site_list:
            client.confirm_site(site)
    finally:
        client.close()
    how = "ticket_id" if ticket_id else ("a ticket from login/password" if use_ticket else "login/password")
    return f"opentracker at {base_url}: {how} accepted for {len(site_list)} site(s): {', '.join(site_list)}"
