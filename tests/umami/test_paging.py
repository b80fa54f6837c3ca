"""Sessions and events are paged newest first: with new events arriving during the run, a pinned endAt keeps
every page in place, so nothing is skipped or read twice. The unpinned control shows the test can fail."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from simulators.umami import DEMO_PASSWORD, DEMO_USERNAME, UmamiSimulator
from sources.common.http import RetryPolicy
from sources.common.windows import DateWindow
from sources.umami import Reader
from sources.umami.client import UmamiClient
from tests.support.umami import small_data, start

DAY = dt.date(2026, 3, 10)
NOON = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC).timestamp()


def paged_ids(sim: UmamiSimulator, what: str, pin: int | None) -> list[str]:
    client = UmamiClient(
        sim.url,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        api_version=sim.version,
        rows_page_size=15,
        retry=RetryPolicy(base_delay=0.01),
    )
    reader = Reader(client, lambda: [{"id": w} for w in sim.website_ids], "UTC", [])
    read = reader.sessions if what == "sessions" else reader.events
    ids = [row["id"] for page in read(sim.website_ids[0], DateWindow(DAY, DAY), pin) for row in page]
    client.close()
    return ids


@pytest.mark.parametrize("what", ["sessions", "events"])
def test_new_events_during_paging_neither_skip_nor_duplicate(version: str, what: str) -> None:
    # "now" is noon of the simulated day and moves 10 minutes forward with every page served
    data = small_data(last_day=DAY, days=3, sessions_per_day=(150, 150))
    sim = start(version=version, data=data, now=lambda: NOON, advance_per_page=600)
    try:
        pinned = int((NOON - 3600) * 1000)  # what Reader.pinned_end gives: a moment already in the past
        ids = paged_ids(sim, what, pinned)
        begin = dt.datetime(2026, 3, 10, tzinfo=dt.UTC).timestamp()
        rows = (sim.session_rows if what == "sessions" else sim.event_rows)(sim.website_ids[0], begin, pinned / 1000)
        assert sim.now() > NOON + 3 * 600  # several pages were read while new events arrived
        assert len(ids) == len(set(ids))
        assert set(ids) == {row["id"] for row in rows}

        # control: with endAt at the end of the day, the arrivals shift the newest-first pages
        sim.advance(NOON - sim.now())
        unpinned = paged_ids(sim, what, None)
        assert max(Counter(unpinned).values()) > 1 or len(set(unpinned)) < len(
            (sim.session_rows if what == "sessions" else sim.event_rows)(
                sim.website_ids[0], begin, begin + 86400 - 0.001
            )
        )
    finally:
        sim.stop()
