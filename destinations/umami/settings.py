"""Umami destination: defaults, limits and the names of what it keeps in the local DuckDB."""

from __future__ import annotations

import re

VENDOR = "umami"

# `/api/send` takes one hit a request (neither Umami 2.20 nor 3.1 has a batch endpoint): a ledger batch is this many
# hits sent one after another by one worker; the ledger is written once a batch.
DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 1_000
DEFAULT_WORKERS = 4
MAX_WORKERS = 32
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RECONCILE_DELAY_SECONDS = 2.0  # a lost answer's hit may still be on its way into the database
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0

# Umami Cloud takes hits at its collector, not at the API's address.
CLOUD_SEND_URL = "https://cloud.umami.is/api/send"
SEND_PATH = "/api/send"

# Umami drops (`{"beep": "boop"}`, HTTP 200) a hit whose User-Agent its `isbot` check calls a bot, and a client
# without a User-Agent header sends its library's (python-httpx/…: a bot). Checked before sending.
BOT_USER_AGENT = re.compile(
    r"bot|crawl|spider|slurp|curl/|wget/|python|httpx|java/|go-http|okhttp|headless|phantom|scrapy|httpclient|"
    r"^mozilla/\d\.\d$",
    re.IGNORECASE,
)
# Umami 2 stores a millisecond `timestamp` nowhere (HTTP 500); Umami 3 stores it in the year 58866: seconds only.
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31 23:59:59
# Reading events back for a batch in an unknown state: a second's margin on each side of its hits' times.
READ_BACK_MARGIN_SECONDS = 1
READ_BACK_PAGE_SIZE = 200

LEDGER_SCHEMA = "umami"  # tables umami_ledger, umami_ledger_hits, umami_ledger_in_flight, umami_rejected
DEFAULT_LEDGER_DATABASE = "umami_ledger.duckdb"
