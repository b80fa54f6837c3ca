"""Matomo tracking destination: rows of any table become Matomo hits, sent with bulk tracking, each hit once.

Two ways in, one engine (`destinations.common.push.Pusher`, with Matomo as its target in `sender`):
- `push_table(database, "dataset.table", ...)`, behind `clickhaul push matomo`: reads a DuckDB table in chunks;
  the ledger and `matomo_rejected` live in that same database file (schema `matomo`);
- `matomo(...)`, a `@dlt.destination`: `pipeline.run(rows, destination=matomo())`; the ledger lives in the DuckDB
  file `ledger_database`.

Configuration under `[destination.matomo]`: tracking_url, token_auth (secret), idsite, batch_size, workers,
queued_tracking, timeout, invalidate_archives, reconcile_delay.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.configuration import configspec
from dlt.common.schema import TTableSchema
from dlt.common.typing import TDataItems, TSecretStrValue

from destinations.common.ledger import LedgerPlace
from destinations.common.table import new_load_id, push_table_rows
from sources.common.clock import wall_time
from sources.common.config import VendorConfig, check_base_url, missing_config
from sources.common.errors import ConfigError
from sources.common.http import RetryPolicy
from sources.common.tables import TableRows

from .client import MatomoTracker
from .ledger import TABLES, Ledger
from .mappings import MAPPINGS, RowMapping, check_columns, mapping
from .sender import MatomoOptions, MatomoTarget, Pusher, PushSummary
from .settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LEDGER_DATABASE,
    DEFAULT_RECONCILE_DELAY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    MAX_BATCH_SIZE,
    MAX_WORKERS,
    READ_CHUNK_ROWS,
    VISITS_PROBE_LIMIT,
)

__all__ = ["MAPPINGS", "MatomoConfig", "PushSummary", "matomo", "push_table", "resolve_config"]

log = logging.getLogger("clickhaul.matomo")


@configspec
class MatomoConfig(VendorConfig):
    """Every setting of the Matomo destination: `[destination.matomo]` or `DESTINATION__MATOMO__*`."""

    SECTION: ClassVar[str] = "destination"
    VENDOR: ClassVar[str] = "matomo"

    tracking_url: str = ""  # the tracker endpoint, e.g. https://matomo.example.com/matomo.php (required)
    token_auth: TSecretStrValue | None = None  # write access to the sites; super user to see invalid_indices
    reporting_url: str | None = None  # the Reporting API (index.php); default: beside tracking_url
    idsite: int | None = None  # for rows without an idsite column
    batch_size: int = DEFAULT_BATCH_SIZE  # hits per bulk request
    workers: int = DEFAULT_WORKERS
    queued_tracking: bool = False  # false: send queuedtracking=0 and get real validation counts
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    invalidate_archives: bool = True  # invalidate archived reports of days that got back-dated hits
    reconcile_delay: float = DEFAULT_RECONCILE_DELAY_SECONDS  # wait this long before reading a lost answer back

    def on_resolved(self) -> None:
        self.token_auth = (self.token_auth or "").strip() or None  # type: ignore[assignment]
        if not self.tracking_url:
            raise missing_config(self.VENDOR, ["tracking_url"], section=self.SECTION, secret=False)
        self.tracking_url = check_tracker_url(self.tracking_url, self.key("tracking_url"))
        if self.reporting_url:
            check_base_url(self.reporting_url, self.key("reporting_url"))
        for name, low, high in (("idsite", 1, None), ("batch_size", 1, MAX_BATCH_SIZE), ("workers", 1, MAX_WORKERS)):
            value = getattr(self, name)
            if value is not None and (value < low or (high is not None and value > high)):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise ConfigError(f"{self.key(name)} is {value}: it must be {bound}")
        if self.timeout <= 0:
            raise ConfigError(f"{self.key('timeout')} must be positive, not {self.timeout}")
        if self.reconcile_delay < 0:
            raise ConfigError(f"{self.key('reconcile_delay')} must be zero or more, not {self.reconcile_delay}")

    def options(self) -> MatomoOptions:
        return MatomoOptions(
            self.tracking_url,
            self.token_auth,
            self.idsite,
            self.batch_size,
            self.workers,
            self.queued_tracking,
            self.reconcile_delay,
        )

    def tracker(self, retry: RetryPolicy | None = None) -> MatomoTracker:
        return MatomoTracker(
            self.tracking_url,
            self.token_auth,
            timeout=self.timeout,
            retry=retry,
            connections=self.workers,
            reporting_url=self.reporting_url,
        )


def check_tracker_url(tracking_url: str, key: str) -> str:
    check_base_url(tracking_url, key)
    parts = urlsplit(tracking_url)
    if parts.path in ("", "/"):
        raise ConfigError(
            f"{key} {tracking_url!r} has no path: give the tracker endpoint, for example "
            "https://matomo.example.com/matomo.php"
        )
    if "token_auth" in parts.query:
        raise ConfigError(
            f"{key} carries a token_auth: remove it from the URL and set destination.matomo.token_auth in "
            ".dlt/secrets.toml (it is sent in the POST body)"
        )
    return tracking_url


def make_config(tracking_url: str | None, token_auth: str | None = None, **values: Any) -> MatomoConfig:
    """The settings from `[destination.matomo]`, with these values winning; every one checked before a request."""
    return MatomoConfig.from_config(tracking_url=tracking_url, token_auth=token_auth, **values)


def resolve_config(**overrides: Any) -> MatomoConfig:
    """`[destination.matomo]` from .dlt/*.toml or DESTINATION__MATOMO__* variables; arguments override."""
    return MatomoConfig.from_config(**overrides)


def invalidate_backdated(tracker: MatomoTracker, config: MatomoConfig, summary: PushSummary) -> None:
    """Matomo archives reports per day: hits stored for past days stay invisible until those days are
    invalidated (CoreAdminHome.invalidateArchivedReports). Covers the days of every hit acknowledged or found
    stored by a read-back. Needs a token with admin access to the site."""
    if not config.invalidate_archives or not summary.backdated:
        return
    if not config.token_auth:
        log.warning("matomo: back-dated hits were stored but no token_auth is set: archives not invalidated")
        return
    for site, days in sorted(summary.backdated.items()):
        tracker.invalidate_archives(site, sorted(days))
        summary.invalidated[site] = sorted(days)


def push_table(
    database: LedgerPlace,
    table: str,
    *,
    config: MatomoConfig | None = None,
    mapping_name: str = "default",
    key_columns: Sequence[str] | None = None,
    retry: RetryPolicy | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
    now: Any = wall_time,
    rows: TableRows | None = None,
    force: bool = False,
) -> PushSummary:
    """Send every row of `table` (DATASET.TABLE) that Matomo has not acknowledged. The ledger lives in the DuckDB
    file `database`; the rows come from `rows` (the table read from any warehouse), else from that same file.
    `force` sends even when Matomo already holds visits in the rows' time span and this ledger knows none."""
    config = config or resolve_config()
    row_mapping = mapping(mapping_name)
    tracker = config.tracker(retry)

    def before(ledger: Ledger, rows: TableRows) -> None:
        if config.token_auth:
            tracker.validate_token()
            if not force and not ledger.knows(table):
                refuse_if_matomo_holds(tracker, config, rows, row_mapping, table, database)

    try:
        options = config.options()
        summary = push_table_rows(
            database,
            table,
            target=MatomoTarget(options, tracker),
            tables=TABLES,
            row_mapping=row_mapping,
            options=options.engine(),
            check_columns=check_columns,
            key_columns=key_columns,
            rows=rows,
            chunk_rows=chunk_rows,
            now=now,
            before=before,
        )
        invalidate_backdated(tracker, config, summary)
        return summary
    finally:
        tracker.close()


def refuse_if_matomo_holds(
    tracker: MatomoTracker,
    config: MatomoConfig,
    rows: TableRows,
    row_mapping: RowMapping,
    table: str,
    ledger: LedgerPlace,
) -> None:
    """A push with no ledger for this Matomo and table, into a Matomo that already holds visits of the rows'
    sites and days, may send rows a second time (pushed before from another file or machine): stop and say so.
    The span comes from the time column the table is read by (a day added on either side: sessions run on, and
    Matomo's days are the site's); the sites from `idsite` (or `site_id`), else the configured one."""
    order = row_mapping.order_columns(rows.columns)
    if not order:
        log.warning("matomo: %s has no time column to check Matomo for earlier pushes of it; sending", table)
        return
    first, last = (as_day(value) for value in rows.bounds(order[0]))
    site_column = next((name for name in ("idsite", "site_id") if name in rows.columns), None)
    sites = [str(site) for site in rows.distinct(site_column, 50)] if site_column else []
    if not sites and config.idsite:
        sites = [str(config.idsite)]
    if first is None or last is None or not sites:
        return
    first, last = first - dt.timedelta(days=1), last + dt.timedelta(days=1)
    held = [(site, *tracker.visits_held(site, first, last)) for site in sites]
    held = [(site, visits, actions) for site, visits, actions in held if visits]
    if not held:
        return
    counts = "; ".join(
        f"site {site}: {visits:,}{'+' if visits >= VISITS_PROBE_LIMIT else ''} visits, {actions:,} actions"
        for site, visits, actions in held
    )
    raise ConfigError(
        f"matomo: {config.tracking_url} already holds visits between {first} and {last} ({counts}), and the ledger "
        f"in {ledger} has no record of pushing {table} there: its rows may have been pushed before (from another "
        "file, machine or ledger) and would then be counted twice. Push from the warehouse that holds that ledger, "
        "or pass --force to send them anyway"
    )


def as_day(value: Any) -> dt.date | None:
    """A time column's value as a UTC day: a timestamp, a date, unix seconds or milliseconds (also as text), or
    `YYYY-MM-DD[ HH:MM:SS]` text; None when it is none of these (the check is then skipped)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if isinstance(value, (int, float)) or text.isdigit():
        seconds = float(text)
        return dt.datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, dt.UTC).date()  # or ms
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _rows_of(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, (pa.RecordBatch, pa.Table)):
        rows: list[dict[str, Any]] = items.to_pylist()
    else:
        rows = [dict(item) for item in items]
    return [{k: v for k, v in row.items() if not k.startswith("_dlt_")} for row in rows]


def push_items(
    items: Any,
    table_name: str,
    config: MatomoConfig,
    row_mapping: RowMapping,
    key_columns: Sequence[str],
    ledger_database: str,
) -> PushSummary:
    """The dlt destination's work for one call: a load file's path (read in chunks, sent by parallel workers) or,
    when `batch_size` is configured for dlt too, `batch_size` rows (sent by one worker: dlt calls in order)."""
    if isinstance(items, str):
        parquet = pq.ParquetFile(items)
        columns = [c for c in parquet.schema_arrow.names if not c.startswith("_dlt_")]
        total = parquet.metadata.num_rows

        def chunks() -> Iterator[list[dict[str, Any]]]:
            for batch in parquet.iter_batches(batch_size=READ_CHUNK_ROWS, columns=columns):
                yield batch.to_pylist()

        source: Iterator[list[dict[str, Any]]] = chunks()
        options = config.options()
    else:
        rows = _rows_of(items)
        columns = list(rows[0]) if rows else []
        total = len(rows)
        source = iter([rows])
        options = replace(config.options(), workers=1)
    check_columns(row_mapping, columns, table_name)
    tracker = config.tracker()
    try:
        with Ledger.open(ledger_database, config.tracking_url, new_load_id(), TABLES) as ledger:
            summary = Pusher(options, tracker, ledger).push(
                source,
                row_mapping,
                table_name,
                key_columns=tuple(key_columns) or row_mapping.key_columns,
                total_rows=total,
            )
        invalidate_backdated(tracker, config, summary)
        return summary
    finally:
        tracker.close()


@dlt.destination(
    name="matomo",
    loader_file_format="parquet",
    # 0: the function gets each load file's path and reads it in chunks itself (bounded memory, parallel workers).
    # dlt reads `batch_size` from [destination.matomo] too: when it is set, dlt hands over that many rows a call.
    batch_size=0,
    naming_convention="direct",
    skip_dlt_columns_and_tables=True,
    max_table_nesting=0,
    loader_parallelism_strategy="sequential",  # one file at a time: a visitor's hits keep their order
)
def matomo(
    items: TDataItems,
    table: TTableSchema,
    tracking_url: str | None = None,
    token_auth: dlt.TSecretValue | None = None,
    idsite: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    queued_tracking: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    mapping: str = "default",
    ledger_database: str = DEFAULT_LEDGER_DATABASE,
    reconcile_delay: float = DEFAULT_RECONCILE_DELAY_SECONDS,
) -> None:
    """Each row of each table becomes Matomo hits (see `mappings`); the table's primary key identifies rows."""
    # dlt shares `batch_size` with us and sets it to 0 for its file mode: then a bulk holds the default.
    hits_per_batch = batch_size or DEFAULT_BATCH_SIZE
    config = make_config(
        tracking_url,
        token_auth,
        idsite=idsite,
        batch_size=hits_per_batch,
        workers=workers,
        queued_tracking=queued_tracking,
        timeout=timeout,
        reconcile_delay=reconcile_delay,
    )
    row_mapping = MAPPINGS.get(mapping)
    if row_mapping is None:
        raise ConfigError(f"destination.matomo.mapping {mapping!r} is unknown: choose one of {', '.join(MAPPINGS)}")
    keys = [name for name, column in (table.get("columns") or {}).items() if column.get("primary_key")]
    summary = push_items(items, str(table["name"]), config, row_mapping, keys, ledger_database)
    log.info("%s", summary.render())
