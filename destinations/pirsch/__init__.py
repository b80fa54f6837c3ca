"""Pirsch destination: rows of any table become Pirsch page views and events, each once.

`push_table(database, "dataset.table", ...)`, behind `clickhaul push pirsch`, reads a warehouse table in chunks and
sends its hits through Pirsch's batch endpoints (`/api/v1/hit/batch`, `/api/v1/event/batch`, each hit with its
`time`, in order) through the shared push engine (`destinations.common.push`): a ledger in the DuckDB file (schema
`pirsch`), read-backs by the batch's tag where an answer was ambiguous, and `pirsch.pirsch_rejected` for the rows
that cannot be sent (among them rows older than `max_age_days`).

Configuration under `[destination.pirsch]` (or `DESTINATION__PIRSCH__*`): client_id, client_secret (secret),
domain_id, and optionally base_url, max_age_days, batch_size, workers, timeout, reconcile_delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from destinations.common.ledger import LedgerPlace, LedgerTables
from destinations.common.push import PushOptions, PushSummary
from destinations.common.table import READ_CHUNK_ROWS, push_mapped
from sources.common.clock import wall_time
from sources.common.config import VendorConfig, check_base_url, require
from sources.common.errors import ConfigError
from sources.common.http import RetryPolicy
from sources.common.tables import TableRows
from sources.pirsch.client import PirschClient
from sources.pirsch.settings import DEFAULT_BASE_URL

from .settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_RECONCILE_DELAY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    LEDGER_SCHEMA,
    MAX_BATCH_SIZE,
    MAX_WORKERS,
)
from .target import PirschTarget

__all__ = ["TABLES", "PirschDestinationConfig", "push_table", "resolve_config"]

TABLES = LedgerTables(LEDGER_SCHEMA)


@configspec
class PirschDestinationConfig(VendorConfig):
    """Every setting of the Pirsch destination: `[destination.pirsch]` or `DESTINATION__PIRSCH__*`."""

    SECTION: ClassVar[str] = "destination"
    VENDOR: ClassVar[str] = "pirsch"

    client_id: str | None = None  # a client of the domain, created in Pirsch's settings (required)
    client_secret: TSecretStrValue | None = None  # (required)
    base_url: str = DEFAULT_BASE_URL
    domain_id: str | None = None  # default: the one domain the client sees
    max_age_days: int = DEFAULT_MAX_AGE_DAYS  # rows older than this are not sent
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    reconcile_delay: float = DEFAULT_RECONCILE_DELAY_SECONDS

    def on_resolved(self) -> None:
        require(self.VENDOR, "destination", client_id=self.client_id, client_secret=self.client_secret)
        check_base_url(self.base_url, self.key("base_url"))
        self.check_between("batch_size", 1, MAX_BATCH_SIZE)
        self.check_between("workers", 1, MAX_WORKERS)
        self.check_between("max_age_days", 1, 36_500)
        if self.timeout <= 0:
            raise ConfigError(f"{self.key('timeout')} must be positive, not {self.timeout}")
        if self.reconcile_delay < 0:
            raise ConfigError(f"{self.key('reconcile_delay')} must be zero or more, not {self.reconcile_delay}")

    def reader(self, retry: RetryPolicy | None = None) -> PirschClient:
        assert self.client_id and self.client_secret  # on_resolved required them
        return PirschClient(self.base_url, self.client_id, self.client_secret, retry=retry, timeout=self.timeout)

    def target(self, retry: RetryPolicy | None = None) -> PirschTarget:
        """The target, its domain looked up first: a wrong client or domain fails before any row is read."""
        reader = self.reader(retry)
        try:
            domains = reader.domains()
            if self.domain_id:
                found = [d for d in domains if str(d.get("id")) == self.domain_id]
            else:
                found = domains if len(domains) == 1 else []
            if not found:
                known = ", ".join(f"{d.get('id')} ({d.get('hostname')})" for d in domains) or "none"
                raise ConfigError(
                    f"{self.key('domain_id')} "
                    + (f"{self.domain_id!r} is not a domain this client sees" if self.domain_id else "is not set")
                    + f": set it (DESTINATION__PIRSCH__DOMAIN_ID) to one of {known}"
                )
        except BaseException:
            reader.close()
            raise
        domain = found[0]
        return PirschTarget(
            self.base_url, str(domain["id"]), reader, hostname=str(domain.get("hostname") or ""),
            max_age_days=self.max_age_days, timeout=self.timeout, retry=retry, connections=self.workers,
        )  # fmt: skip

    def options(self) -> PushOptions:
        return PushOptions(self.batch_size, self.workers, self.reconcile_delay)


def resolve_config(**overrides: Any) -> PirschDestinationConfig:
    """`[destination.pirsch]` from .dlt/*.toml or DESTINATION__PIRSCH__* variables; arguments override."""
    return PirschDestinationConfig.from_config(**overrides)


def push_table(
    database: LedgerPlace,
    table: str,
    *,
    config: PirschDestinationConfig | None = None,
    mapping_name: str = "default",
    key_columns: Sequence[str] | None = None,
    retry: RetryPolicy | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
    now: Any = wall_time,
    rows: TableRows | None = None,
    before: Any = None,
) -> PushSummary:
    """Send every row of `table` (DATASET.TABLE) that Pirsch has not acknowledged; the ledger lives in the DuckDB
    file `database`, the rows come from `rows` (the table read from any warehouse), else from that same file."""
    config = config or resolve_config()
    summary = push_mapped(
        database, table, target=config.target(retry), tables=TABLES, options=config.options(),
        mapping_name=mapping_name, key_columns=key_columns, rows=rows, chunk_rows=chunk_rows, now=now, before=before,
    )  # fmt: skip
    summary.notes.append(
        f"Pirsch takes hits back to {config.max_age_days} day(s) (destination.pirsch.max_age_days); older rows are "
        "in pirsch.pirsch_rejected"
    )
    return summary
