"""Umami destination: rows of any table become Umami page views and custom events, each once.

`push_table(database, "dataset.table", ...)`, behind `clickhaul push umami`, reads a warehouse table in chunks and
sends its hits through `POST /api/send` (Umami 2 and 3; neither has a batch endpoint), through the shared push
engine (`destinations.common.push`): a ledger in the DuckDB file (schema `umami`), read-backs through Umami's API
where an answer was ambiguous, and `umami.umami_rejected` for the rows that cannot be sent.

Configuration under `[destination.umami]` (or `DESTINATION__UMAMI__*`): base_url, username and password (secret) or
api_key (Umami Cloud, secret), website_id, and optionally hostname, send_url, api_version, batch_size, workers,
timeout, reconcile_delay.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from destinations.common.ledger import Ledger, LedgerPlace, LedgerTables
from destinations.common.push import PushOptions, PushSummary
from destinations.common.table import READ_CHUNK_ROWS, push_mapped
from sources.common.clock import wall_time
from sources.common.config import VendorConfig, check_base_url
from sources.common.errors import ConfigError
from sources.common.http import RetryPolicy
from sources.common.tables import TableRows
from sources.umami.client import UmamiClient
from sources.umami.settings import CLOUD_BASE_URL

from .settings import (
    CLOUD_SEND_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_RECONCILE_DELAY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    LEDGER_SCHEMA,
    MAX_BATCH_SIZE,
    MAX_WORKERS,
    SEND_PATH,
)
from .target import UmamiTarget

__all__ = ["TABLES", "UmamiDestinationConfig", "push_table", "resolve_config"]

log = logging.getLogger("clickhaul.umami")

TABLES = LedgerTables(LEDGER_SCHEMA)


@configspec
class UmamiDestinationConfig(VendorConfig):
    """Every setting of the Umami destination: `[destination.umami]` or `DESTINATION__UMAMI__*`."""

    SECTION: ClassVar[str] = "destination"
    VENDOR: ClassVar[str] = "umami"

    base_url: str | None = None  # a self-hosted Umami, e.g. https://umami.example.com; Cloud: leave out
    username: str | None = None  # self-hosted: reading back needs a login
    password: TSecretStrValue | None = None
    api_key: TSecretStrValue | None = None  # Umami Cloud, instead of username/password
    website_id: str = ""  # the website the hits go to (required)
    hostname: str = ""  # for rows whose url is a path without a host
    send_url: str | None = None  # default: <base_url>/api/send, or Umami Cloud's collector
    api_version: str = "auto"  # "2" | "3"
    batch_size: int = DEFAULT_BATCH_SIZE  # hits per ledger batch (sent one request each)
    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    reconcile_delay: float = DEFAULT_RECONCILE_DELAY_SECONDS

    def on_resolved(self) -> None:
        if self.api_key and (self.username or self.password):
            raise ConfigError(f"{self.key('api_key')}: set either api_key (Umami Cloud) or username and password")
        if not self.api_key:
            missing = [name for name in ("base_url", "username", "password") if not getattr(self, name)]
            if missing:
                raise ConfigError(
                    f"{', '.join(self.key(name) for name in missing)} not set: a self-hosted Umami needs base_url, "
                    "username and password (DESTINATION__UMAMI__BASE_URL, __USERNAME, __PASSWORD): clickhaul reads "
                    "the website back to tell whether a hit whose answer was lost arrived; Umami Cloud takes api_key"
                )
        self.base_url = (self.base_url or CLOUD_BASE_URL).rstrip("/")
        check_base_url(self.base_url, self.key("base_url"))
        if not self.send_url:
            self.send_url = (
                CLOUD_SEND_URL if self.api_key and self.base_url == CLOUD_BASE_URL else self.base_url + SEND_PATH
            )
        check_base_url(self.send_url, self.key("send_url"))
        if not self.website_id:
            raise ConfigError(
                f"{self.key('website_id')} is not set: give the id of the website the hits go to (a UUID shown in "
                "its settings), under [destination.umami] or as DESTINATION__UMAMI__WEBSITE_ID"
            )
        try:
            uuid.UUID(str(self.website_id))
        except ValueError:
            raise ConfigError(
                f"{self.key('website_id')} {self.website_id!r} is not an Umami website id (a UUID such as "
                "889c2ab0-beb2-445e-b748-02cc82f93608)"
            ) from None
        self.check_one_of("api_version", ("auto", "2", "3"))
        self.check_between("batch_size", 1, MAX_BATCH_SIZE)
        self.check_between("workers", 1, MAX_WORKERS)
        if self.timeout <= 0:
            raise ConfigError(f"{self.key('timeout')} must be positive, not {self.timeout}")
        if self.reconcile_delay < 0:
            raise ConfigError(f"{self.key('reconcile_delay')} must be zero or more, not {self.reconcile_delay}")

    def reader(self, retry: RetryPolicy | None = None) -> UmamiClient:
        return UmamiClient(
            str(self.base_url),
            username=self.username,
            password=self.password,
            api_key=self.api_key,
            api_version=self.api_version,
            retry=retry,
            timeout=self.timeout,
        )

    def target(self, retry: RetryPolicy | None = None) -> UmamiTarget:
        return UmamiTarget(
            str(self.send_url),
            self.website_id,
            self.reader(retry),
            hostname=self.hostname,
            timeout=self.timeout,
            retry=retry,
            connections=self.workers,
        )

    def options(self) -> PushOptions:
        return PushOptions(self.batch_size, self.workers, self.reconcile_delay)


def resolve_config(**overrides: Any) -> UmamiDestinationConfig:
    """`[destination.umami]` from .dlt/*.toml or DESTINATION__UMAMI__* variables; arguments override."""
    return UmamiDestinationConfig.from_config(**overrides)


def check_website(target: UmamiTarget) -> str:
    """Before the first hit: log in, find the website and learn the version (a wrong id or login fails here,
    not as thousands of refused hits). Umami 2 files back-dated hits under sessions created now."""
    website = target.reader.website(target.website_id)
    if website is None:
        raise ConfigError(
            f"umami: {target.reader.http.base_url} has no website {target.website_id} these credentials can see: "
            "check destination.umami.website_id"
        )
    return target.reader.detect_version(target.website_id)


def push_table(
    database: LedgerPlace,
    table: str,
    *,
    config: UmamiDestinationConfig | None = None,
    mapping_name: str = "default",
    key_columns: Sequence[str] | None = None,
    retry: RetryPolicy | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
    now: Any = wall_time,
    rows: TableRows | None = None,
) -> PushSummary:
    """Send every row of `table` (DATASET.TABLE) that Umami has not acknowledged; the ledger lives in the DuckDB
    file `database`, the rows come from `rows` (the table read from any warehouse), else from that same file."""
    config = config or resolve_config()
    target = config.target(retry)
    versions: list[str] = []

    def before(ledger: Ledger, table_rows: TableRows) -> None:
        versions.append(check_website(target))

    summary = push_mapped(
        database, table, target=target, tables=TABLES, options=config.options(), mapping_name=mapping_name,
        key_columns=key_columns, rows=rows, chunk_rows=chunk_rows, now=now, before=before,
    )  # fmt: skip
    if versions and versions[0] == "2" and summary.backdated:
        summary.notes.append(
            "Umami 2: back-dated hits count on their own days in stats, page views and events, but their sessions "
            "are created now: session lists, retention and 'first seen' place these visitors on today"
        )
    return summary
