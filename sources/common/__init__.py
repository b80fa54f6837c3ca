"""The layer every vendor stands on: HTTP with retries and rate limits, errors, secret masking, date windows,
the day cursor, Arrow conversion and run monitoring."""

from .arrow import ColumnType, TableSpec, dlt_columns, to_arrow
from .clock import SYSTEM_CLOCK, Clock, FakeClock, today_in
from .config import missing_config, require
from .errors import AuthError, ClickhaulError, ConfigError, RateLimitedError, TransientError, VendorError
from .http import HttpClient, RequestStats, RetryPolicy, TokenAuth, TokenExpired
from .incremental import DayCursor
from .monitor import current_monitor
from .ratelimit import RateLimiter, Window, parse_windows
from .redact import redact, register_secret
from .windows import DateWindow, check_timezone, parse_date, split_windows

__all__ = [
    "SYSTEM_CLOCK",
    "AuthError",
    "ClickhaulError",
    "Clock",
    "ColumnType",
    "ConfigError",
    "DateWindow",
    "DayCursor",
    "FakeClock",
    "HttpClient",
    "RateLimitedError",
    "RateLimiter",
    "RequestStats",
    "RetryPolicy",
    "TableSpec",
    "TokenAuth",
    "TokenExpired",
    "TransientError",
    "VendorError",
    "Window",
    "check_timezone",
    "current_monitor",
    "dlt_columns",
    "missing_config",
    "parse_date",
    "parse_windows",
    "redact",
    "register_secret",
    "require",
    "split_windows",
    "to_arrow",
    "today_in",
]
