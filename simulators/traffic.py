"""What every simulator's generated traffic shares: the days an account holds, one seeded generator per entity and
day (so a day's traffic is the same whichever request asks for it first), and visits spread over the day the way
real traffic is: quiet at night, busy from morning to evening."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from simulators.harness import stable_seed
from sources.common.clock import today_utc

# Share of the day's visits that start in each UTC hour.
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 9, 10, 10, 9, 8, 8, 8, 7, 6, 5, 4, 3]
HOURS = range(24)


@dataclass
class TrafficDays:
    """The days a simulated account has traffic on: `days` days up to `last_day` (UTC), today by default."""

    days: int = 60
    last_day: dt.date = field(default_factory=today_utc)

    @property
    def first_day(self) -> dt.date:
        return self.last_day - dt.timedelta(days=self.days - 1)

    def covers(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day


def day_rng(*parts: object) -> random.Random:
    """A generator seeded by what the traffic belongs to (seed, entity, ...) and its day."""
    return random.Random(stable_seed(*(part.isoformat() if isinstance(part, dt.date) else part for part in parts)))


def utc_midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def visit_start(rng: random.Random, day: dt.date, per_second: int = 1) -> int | float:
    """When a visit of `day` starts, in seconds (or `per_second` units, e.g. 1000 for ms) since the epoch."""
    hour = rng.choices(HOURS, HOUR_WEIGHTS)[0]
    return int(utc_midnight(day)) * per_second + hour * 3600 * per_second + rng.randrange(3600 * per_second)
