"""CLICKHAUL_TODAY moves every "today" of the code and the simulators to one chosen day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from simulators.opentracker import OpentrackerData
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common import clock
from sources.common.clock import TODAY_ENV, today_in, today_utc, utc_now, wall_time
from sources.common.errors import ConfigError
from sources.common.incremental import configured_days
from tests.support import run_cli


@pytest.fixture(autouse=True)
def first_reading_of_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a process's first reading: a run with CLICKHAUL_TODAY set fixed its offset minutes ago."""
    monkeypatch.setattr(clock, "_offsets", {})


def test_a_date_moves_the_clock_to_that_day_keeping_it_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TODAY_ENV, "2028-02-29")
    assert today_utc() == dt.date(2028, 2, 29)
    first = wall_time()
    assert wall_time() >= first  # the clock still runs
    assert PirschData().last_day == OpentrackerData().last_day == dt.date(2028, 2, 29)  # the simulators' traffic
    first_day, _ = configured_days(None, None, "UTC", 30)
    assert first_day == dt.date(2028, 1, 30)


def test_a_date_is_that_date_in_every_common_timezone_whatever_the_hour_of_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A date means noon UTC: a scheduled test run at 23:30 UTC must not see tomorrow in Berlin."""
    monkeypatch.setenv(TODAY_ENV, "2027-03-28")
    assert abs(utc_now() - dt.datetime(2027, 3, 28, 12, tzinfo=dt.UTC)) < dt.timedelta(seconds=5)
    for tz in ("Pacific/Pago_Pago", "America/Los_Angeles", "UTC", "Europe/Berlin", "Asia/Vladivostok"):
        assert today_in(tz) == dt.date(2027, 3, 28), tz


def test_an_instant_fixes_the_hour_so_timezones_can_be_on_another_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TODAY_ENV, "2027-03-28T00:30:00+00:00")  # the night Europe moves to summer time
    assert abs(utc_now() - dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)) < dt.timedelta(seconds=5)
    assert today_in("Europe/Berlin") == dt.date(2027, 3, 28)
    assert today_in("America/Los_Angeles") == dt.date(2027, 3, 27)
    assert today_in("Pacific/Kiritimati") == dt.date(2027, 3, 28)


def test_a_malformed_value_names_the_variable_and_the_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TODAY_ENV, "28.03.2027")
    with pytest.raises(ConfigError, match=r"CLICKHAUL_TODAY='28.03.2027' .* YYYY-MM-DD"):
        today_utc()


def test_a_command_started_with_the_variable_loads_up_to_that_day(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CLI's process and the simulator read the same clock: `--start` without `--end` runs up to that day."""
    monkeypatch.setenv(TODAY_ENV, "2027-12-31")
    with PirschSimulator(PirschData(domains=1, days=5, sessions_per_day=(5, 10), paths=5)) as simulator:
        env = {**demo_plan(simulator).env, "SOURCES__PIRSCH__TIMEZONE": "UTC", "DLT_DATA_DIR": str(tmp_path / "dlt")}
        result = run_cli("run", "pirsch", "--start", "2027-12-30", "--resources", "visitors", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "2027-12-30..2027-12-31" in result.stdout
        asked = {(r.query["from"], r.query["to"]) for r in simulator.requests if r.path.endswith("/statistics/visitor")}
        assert asked == {("2027-12-30", "2027-12-31")}
