"""Matomo tracking destination: defaults, limits and the names of what it keeps in the local DuckDB."""

from __future__ import annotations

VENDOR = "matomo"
CONFIG_SECTION = ("destination", "matomo")

DEFAULT_BATCH_SIZE = 200  # the official log importer's batch; ~0.4 s of work for a real Matomo
MAX_BATCH_SIZE = 10_000
DEFAULT_WORKERS = 4  # a real Matomo on 2 cores peaks at 2-4 parallel senders (API-NOTES)
MAX_WORKERS = 64
DEFAULT_TIMEOUT_SECONDS = 120.0  # 1,000 hits in one bulk take ~2 s on a real server; leave room for load
READ_CHUNK_ROWS = 5_000  # rows read from the table at once: memory stays bounded however large it is

# Retrying a failed batch: a rolled-back bulk (deadlock on a fresh site) is worth retrying within seconds.
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
# A batch whose answer never came may still be in the server's hands: read Matomo back only this long after it was
# sent (a crashed run's batches too). An answered batch (even HTTP 500) is read back at once.
DEFAULT_RECONCILE_DELAY_SECONDS = 5.0
# Before a push without ledger: how many visits of the rows' span to ask Matomo for (enough to say "it holds some").
VISITS_PROBE_LIMIT = 1_000

# What the server accepts for `cdt` (API-NOTES): UTC, not in the future, not older than 20 years, and older
# than 24 hours only with a token_auth that may write to the site.
CDT_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_CDT_AGE_SECONDS = 20 * 365 * 86_400
CDT_AGE_MARGIN_SECONDS = 86_400  # a day's margin so a hit does not cross the 20-year line in transit
TOKENLESS_CDT_SECONDS = 24 * 3_600

# Opentracker replay: sessions with more page views than this send this many (a few bot sessions have 1,000+).
MAX_PAGES_PER_SESSION = 500

# In the local DuckDB, beside the data: schema and tables of the destination's own bookkeeping.
LEDGER_SCHEMA = "matomo"
REJECTED_TABLE = "matomo_rejected"
LEDGER_BATCHES_TABLE = "matomo_ledger"
LEDGER_HITS_TABLE = "matomo_ledger_hits"
LEDGER_IN_FLIGHT_TABLE = "matomo_ledger_in_flight"
DEFAULT_LEDGER_DATABASE = "matomo_ledger.duckdb"  # for the dlt destination, which has no database of its own

# Tracking API parameters a row may carry under its own name (the tracking HTTP API document).
TRACKING_PARAMETERS: frozenset[str] = frozenset(
    {
        "idsite", "rec", "url", "action_name", "_id", "rand", "apiv", "urlref", "_cvar", "_idvc", "_viewts",
        "_idts", "_rcn", "_rck", "res", "h", "m", "s", "fla", "java", "dir", "qt", "realp", "pdf", "wma",
        "gears", "ag", "ua", "lang", "uid", "cid", "new_visit", "cvar", "link", "download", "search",
        "search_cat", "search_count", "idgoal", "revenue", "gt_ms", "cs", "e_c", "e_a", "e_n", "e_v", "c_n",
        "c_p", "c_t", "c_i", "ec_id", "ec_st", "ec_tx", "ec_sh", "ec_dt", "ec_items", "cip", "cdt", "country",
        "region", "city", "lat", "long", "bots", "pv_id", "ping", "dimension1", "dimension2", "dimension3",
        "dimension4", "dimension5", "pf_net", "pf_srv", "pf_tfr", "pf_dm1", "pf_dm2", "pf_onl", "ca",
    }
)  # fmt: skip
# Custom dimensions beyond 5 are allowed too: `dimensionN` for any N.
DIMENSION_PREFIX = "dimension"
# Never taken from a row: the token travels once, in the POST body; send_image=0 makes a bulk answer 204
# without the counts; rec/apiv/queuedtracking are set by the destination.
CONTROLLED_PARAMETERS: frozenset[str] = frozenset({"token_auth", "send_image", "rec", "apiv", "queuedtracking"})
NUMERIC_PARAMETERS: tuple[str, ...] = ("e_v", "revenue", "ec_st", "ec_tx", "ec_sh", "ec_dt", "lat", "long", "gt_ms")
INTEGER_PARAMETERS: tuple[str, ...] = ("idsite", "idgoal", "_idvc", "_viewts", "_idts", "search_count")
# Setting these needs a token_auth with write access; without one Matomo refuses the hit as invalid.
AUTH_PARAMETERS: tuple[str, ...] = ("cip",)
