"""Daylight-saving days: one row per local day, each counting its real 23 or 25 hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.support import Loader


@pytest.mark.parametrize("change", [dt.date(2024, 3, 31), dt.date(2024, 10, 27)], ids=["spring", "autumn"])
def test_daylight_saving_days_give_one_row_per_local_day(tmp_path: Path, change: dt.date) -> None:
    data = PirschData(domains=1, days=10, last_day=change + dt.timedelta(days=3), sessions_per_day=(100, 120), paths=20)
    with PirschSimulator(data) as simulator:
        loader = Loader("pirsch", tmp_path, {**demo_plan(simulator).env, "SOURCES__PIRSCH__TIMEZONE": "Europe/Berlin"})
        days = [change - dt.timedelta(days=1), change, change + dt.timedelta(days=1)]
        loader.run(days[0], days[-1], resources="visitors,hours")
        rows = loader.query("select day, timezone, sessions from pirsch.visitors order by day")
        assert [day for day, _, _ in rows] == days
        assert {tz for _, tz, _ in rows} == {"Europe/Berlin"}
        domain = simulator.domain_ids[0]
        for day, _, sessions in rows:
            # the simulator counts sessions that started within the local day's real span (23, 24 or 25 hours)
            assert sessions == len(simulator.traffic.sessions(domain, day, day, "Europe/Berlin"))
        # hour buckets of the change day: 24 rows as Pirsch answers, with the skipped/doubled hour's sessions
        # counted once in total
        total = loader.query("select sum(sessions) from pirsch.hours where day = ?", [change])[0][0]
        assert total == next(s for d, _, s in rows if d == change)
