"""Date windows in a timezone: the unit of work for every day-based resource and for backfills."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pendulum

from .errors import ConfigError

WindowUnit = Literal["day", "week", "month"]
WINDOW_UNITS: tuple[WindowUnit, ...] = ("day", "week", "month")


@dataclass(frozen=True)
class DateWindow:
    """An inclusive range of local dates; `start_at`/`end_at` are its instants (end exclusive) in `tz`.

    Days are calendar days in `tz`, so a daylight-saving day spans 23 or 25 hours.
    """

    start: dt.date
    end: dt.date
    tz: str = "UTC"

    @property
    def start_at(self) -> pendulum.DateTime:
        return pendulum.datetime(self.start.year, self.start.month, self.start.day, tz=self.tz)

    @property
    def end_at(self) -> pendulum.DateTime:
        after = self.end + dt.timedelta(days=1)
        return pendulum.datetime(after.year, after.month, after.day, tz=self.tz)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def __str__(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start}..{self.end}"


def check_timezone(tz: str) -> str:
    try:
        pendulum.timezone(tz)
    except Exception:
        raise ConfigError(f"timezone {tz!r} is not an IANA timezone name: use e.g. 'UTC' or 'Europe/Berlin'") from None
    return tz


def split_windows(start: dt.date, end: dt.date, unit: WindowUnit = "day", tz: str = "UTC") -> list[DateWindow]:
    """Split the inclusive range [start, end] into day, ISO-week (Mon-Sun) or calendar-month windows."""
    check_timezone(tz)
    if unit not in WINDOW_UNITS:
        raise ConfigError(f"window unit {unit!r} is unknown: use one of {', '.join(WINDOW_UNITS)}")
    if end < start:
        raise ConfigError(f"end date {end} is before start date {start}")
    windows = []
    cursor = start
    while cursor <= end:
        if unit == "day":
            last = cursor
        elif unit == "week":
            last = cursor + dt.timedelta(days=6 - cursor.weekday())
        else:
            last = pendulum.date(cursor.year, cursor.month, 1).end_of("month")
            last = dt.date(last.year, last.month, last.day)
        last = min(last, end)
        windows.append(DateWindow(cursor, last, tz))
        cursor = last + dt.timedelta(days=1)
    return windows


def parse_date(text: str | dt.date, what: str = "date") -> dt.date:
    """Parse YYYY-MM-DD strictly, naming the offending value and option."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2024-01-31") from None
