"""Pirsch destination: defaults, limits and the names of what it keeps in the local DuckDB."""

from __future__ import annotations

VENDOR = "pirsch"

HIT_PATH = "/api/v1/hit/batch"
EVENT_PATH = "/api/v1/event/batch"
# Hits per ledger batch (one request per run of page views or events). Pirsch publishes no batch size limit; its
# statistics endpoints cap pages at 100, and a batch of 100 hits is ~40 kB.
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 1_000
DEFAULT_WORKERS = 2
MAX_WORKERS = 16
DEFAULT_TIMEOUT_SECONDS = 30.0
# Pirsch writes hits to its database in the background: a lost answer's batch is read back this much later.
DEFAULT_RECONCILE_DELAY_SECONDS = 10.0
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
# How far back a hit's `time` may lie (days). Pirsch's documentation states no limit for the batch endpoints,
# which exist for page views a server buffered; older rows are not sent (pirsch_rejected, "outside the range").
DEFAULT_MAX_AGE_DAYS = 30
# Pirsch ignores User-Agents shorter or longer than these, or with non-ASCII characters (pirsch core 4.2.0).
MIN_USER_AGENT = 10
MAX_USER_AGENT = 300
BATCH_TAG = "clickhaul_batch"  # the tag every sent hit carries: what a read-back filters on

LEDGER_SCHEMA = "pirsch"  # tables pirsch_ledger, pirsch_ledger_hits, pirsch_ledger_in_flight, pirsch_rejected
DEFAULT_LEDGER_DATABASE = "pirsch_ledger.duckdb"
