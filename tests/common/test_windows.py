from __future__ import annotations

import datetime as dt

import pytest

from sources.common.errors import ConfigError
from sources.common.windows import parse_date, split_windows


def test_day_windows_are_inclusive() -> None:
    windows = split_windows(dt.date(2024, 1, 30), dt.date(2024, 2, 2), "day")
    assert [str(w) for w in windows] == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]


def test_week_windows_follow_iso_weeks_and_clip() -> None:
    windows = split_windows(dt.date(2024, 1, 3), dt.date(2024, 1, 20), "week")
    assert [(w.start.isoformat(), w.end.isoformat()) for w in windows] == [
        ("2024-01-03", "2024-01-07"),
        ("2024-01-08", "2024-01-14"),
        ("2024-01-15", "2024-01-20"),
    ]


def test_month_windows_cover_leap_february() -> None:
    windows = split_windows(dt.date(2024, 1, 15), dt.date(2024, 3, 10), "month")
    assert [(w.start.day, w.end.isoformat()) for w in windows] == [
        (15, "2024-01-31"),
        (1, "2024-02-29"),
        (1, "2024-03-10"),
    ]


@pytest.mark.parametrize(("day", "hours"), [(dt.date(2024, 3, 31), 23), (dt.date(2024, 10, 27), 25)])
def test_daylight_saving_days_have_their_real_length(day: dt.date, hours: int) -> None:
    (window,) = split_windows(day, day, "day", "Europe/Berlin")
    assert (window.end_at - window.start_at).total_seconds() == hours * 3600
    assert window.start_at.isoformat().startswith(day.isoformat() + "T00:00:00")


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="before"):
        split_windows(dt.date(2024, 2, 1), dt.date(2024, 1, 1))
    with pytest.raises(ConfigError, match="IANA"):
        split_windows(dt.date(2024, 1, 1), dt.date(2024, 1, 2), tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_date("2024-13-01", "--start")
