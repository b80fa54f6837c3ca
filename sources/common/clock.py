"""Time as a dependency: production uses the system clock, tests pass a FakeClock and never sleep.

Every "now" and "today" of clickhaul and of its simulators comes from `wall_time()`. It is the system clock,
unless `CLICKHAUL_TODAY` moves it to another day, so that the code, the simulators and the tests can be run as
of any date (a daylight-saving day, a year end, a leap day) and agree on it:

- `CLICKHAUL_TODAY=2027-03-28`: noon UTC of that day, when the process first asks, so that "today" is that date in
  every timezone from UTC-11 to UTC+11 whatever the hour the command runs (a run at 23:30 UTC must not see
  tomorrow in Berlin);
- `CLICKHAUL_TODAY=2027-03-28T01:30:00+00:00`: that instant, when the process first asks.

The clock keeps running from there. The offset is fixed per process at its first reading (a process started
later computes its own, within the seconds between the two starts).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import Protocol

import pendulum

TODAY_ENV = "CLICKHAUL_TODAY"

_offsets: dict[str, float] = {}
_offsets_lock = threading.Lock()


def _offset_for(value: str) -> float:
    from .errors import ConfigError

    text = value.strip()
    now = time.time()
    try:
        if "T" in text or " " in text:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp() - now
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{TODAY_ENV}={value!r} is neither a date nor an instant: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS+00:00"
        ) from None
    noon = dt.datetime.combine(day, dt.time(12), dt.UTC)
    return noon.timestamp() - now


def day_offset() -> float:
    """Seconds `CLICKHAUL_TODAY` adds to the system clock (0 without it)."""
    value = os.environ.get(TODAY_ENV)
    if not value:
        return 0.0
    offset = _offsets.get(value)
    if offset is None:
        with _offsets_lock:
            offset = _offsets.setdefault(value, _offset_for(value))
    return offset


def wall_time() -> float:
    """Seconds since the epoch, as clickhaul and its simulators see them."""
    return time.time() + day_offset()


def utc_now() -> dt.datetime:
    return dt.datetime.fromtimestamp(wall_time(), dt.UTC)


def today_in(tz: str) -> dt.date:
    """Today's date in timezone `tz`."""
    now = pendulum.from_timestamp(wall_time(), tz)
    return dt.date(now.year, now.month, now.day)


def today_utc() -> dt.date:
    return utc_now().date()


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return wall_time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when slept on; sleeping records the delay so tests can assert on backoff."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


SYSTEM_CLOCK = SystemClock()
