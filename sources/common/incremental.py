"""The day cursor every day-based resource uses: dlt's incremental on `day`, with a lookback as its lag.

With `end_value` set (a backfill or `--start/--end`), dlt keeps no state, so a backfill never moves the
cursor of the scheduled incremental runs.
"""

from __future__ import annotations

import datetime as dt
import os

import dlt

from .clock import today_in
from .errors import ConfigError
from .windows import parse_date

DAY_CURSOR = "day"
EXTERNAL_SCHEDULER_ENV = "CLICKHAUL_EXTERNAL_SCHEDULER"


def day_cursor(
    start_date: dt.date, end_date: dt.date | None = None, lookback_days: int = 3, cursor_path: str = DAY_CURSOR
) -> dlt.sources.incremental[dt.date]:
    """Cursor over inclusive days: `end_date` is turned into dlt's open range end (the day after)."""
    return dlt.sources.incremental(
        cursor_path,
        initial_value=start_date,
        end_value=end_date + dt.timedelta(days=1) if end_date else None,
        lag=lookback_days,
        primary_key=(),  # merge keys de-duplicate; dlt's boundary de-duplication would only cost memory
        # On Airflow (see pipelines/airflow) each DAG run loads its data interval instead of the saved cursor.
        allow_external_schedulers=os.environ.get(EXTERNAL_SCHEDULER_ENV) == "1",
    )


def days_to_load(cursor: dlt.sources.incremental[dt.date], tz: str) -> tuple[dt.date, dt.date] | None:
    """The inclusive day range this run must request: from the lagged cursor to today (or the fixed end)."""
    start = cursor.last_value or cursor.initial_value
    if start is None:
        return None
    if isinstance(start, dt.datetime):
        start = start.date()
    if cursor.end_value is not None:
        end = cursor.end_value - dt.timedelta(days=1)
        if isinstance(end, dt.datetime):
            end = end.date()
    else:
        end = today_in(tz)
    return (start, end) if start <= end else None


def configured_days(
    start_date: dt.date | str | None, end_date: dt.date | str | None, tz: str, history_days: int
) -> tuple[dt.date, dt.date | None]:
    """A source's `start_date` (first run; default `history_days` ago in `tz`) and optional fixed `end_date`."""
    first = parse_date(start_date, "start_date") if start_date else today_in(tz) - dt.timedelta(days=history_days)
    last = parse_date(end_date, "end_date") if end_date else None
    if last and last < first:
        raise ConfigError(f"end_date {last} is before start_date {first}")
    return first, last
