"""Back-dated hits show in Matomo's reports only after their days' archives are invalidated; and a wrong token is
found before the first batch, not as silently dropped hits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from destinations.matomo import push_table
from simulators.matomo import MatomoSimulator
from sources.common.clock import today_utc
from sources.common.errors import AuthError
from tests.support.matomo import config_for, create_table, database
from tests.support.retry import FAST_RETRY


def create_backdated(path: Path) -> list[str]:
    today = today_utc()
    days = [today - dt.timedelta(days=n) for n in (9, 3, 3, 1, 0)]
    rows = " union all ".join(
        f"select '{index:016x}' as visitor_id, 'https://shop.example/p/{index}' as page_url, "
        # today's hit at midnight: noon may still be ahead, and Matomo refuses hits from the future
        f"timestamp '{day} {'00:00:00' if day == today else '12:00:00'}' as timestamp, {index} as event_id"
        for index, day in enumerate(days)
    )
    create_table(path, "events.hits", rows)
    return sorted({day.isoformat() for day in days if day < today})


def test_archives_of_exactly_the_backdated_days_are_invalidated(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    expected = create_backdated(path)
    summary = push_table(path, "events.hits", config=config_for(simulator), retry=FAST_RETRY)
    assert summary.tracked == 5
    assert simulator.invalidations == [("1", expected)]
    assert summary.invalidated == {"1": expected}
    assert f"invalidated archived reports of site 1 for {len(expected)} day(s)" in summary.render()
    # nothing new to send: nothing to invalidate again
    push_table(path, "events.hits", config=config_for(simulator), retry=FAST_RETRY)
    assert len(simulator.invalidations) == 1


def test_invalidation_can_be_switched_off(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    create_backdated(path)
    push_table(path, "events.hits", config=config_for(simulator, invalidate_archives=False), retry=FAST_RETRY)
    assert simulator.invalidations == []


def test_a_wrong_token_is_refused_before_the_first_batch(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    create_backdated(path)
    with pytest.raises(AuthError, match="token_auth"):
        push_table(path, "events.hits", config=config_for(simulator, token="f" * 32), retry=FAST_RETRY)
    assert simulator.stored() == []
    assert simulator.count(r"matomo\.php") == 0


def test_days_of_hits_found_stored_by_a_read_back_are_invalidated_too(tmp_path: Path) -> None:
    """A 500 that stored the whole back-dated batch: nothing is sent again, yet those days hold new hits."""
    path = database(tmp_path)
    expected = create_backdated(path)
    with MatomoSimulator(transaction_failure_rate=1.0, failure_outcomes={"all": 1.0}) as simulator:
        summary = push_table(path, "events.hits", config=config_for(simulator), retry=FAST_RETRY)
        assert (summary.found_stored, summary.resent, len(simulator.stored())) == (5, 0, 5)
        assert simulator.invalidations == [("1", expected)]
