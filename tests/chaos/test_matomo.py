"""The Matomo destination under each fault of the battery: every row stored, as in a clean push, and exactly once
except where the tracking protocol cannot know (a batch stored whose answer was lost: cut, dropped, or later than
the client's timeout); those doubles are exactly the re-sent batches, and the run counts them. (A push SIGKILLed
mid-way and restarted is proven in tests/matomo/test_exactly_once.py; Matomo's token_auth does not expire.)"""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import duckdb
import pytest

from destinations.matomo import make_config, push_table
from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from sources.common.http import RetryPolicy

ROWS = 400
RETRY = RetryPolicy(max_attempts=40, base_delay=0.01, max_delay=0.05, retry_after_floor=0.01, retry_after_cap=0.05)
FAULTS = {
    "5xx_bursts": Faults(error_rate=0.3, seed=1),
    "timeouts": Faults(slow_rate=0.2, slow_seconds=0.6, seed=2),
    "slow_answers": Faults(slow_rate=0.3, slow_seconds=0.03, seed=3),
    "dropped_connections": Faults(drop_rate=0.12, drop_after_rate=0.12, seed=4),
    "truncated_json": Faults(truncate_rate=0.25, seed=5),
    "rate_limit_refusals": Faults(rate_limit_rate=0.25, retry_after="0", seed=6),
    "everything_at_once": Faults.chaos(0.3, seed=8),
}


def hits_table(path: Path) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema events")
        connection.execute(
            f"""create table events.hits as
                select substr(md5((i % 37)::varchar), 1, 16) as visitor_id, 'https://shop.example/p/' || i as page_url,
                       'Page ' || i as page_title, now() - interval '3 hours' + to_seconds(i) as timestamp
                from range({ROWS}) t(i)"""
        )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_row_stored_once_under_fault(fault: str, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    hits_table(path)
    with MatomoSimulator(FAULTS[fault]) as simulator:
        config = make_config(
            f"{simulator.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1, batch_size=25, workers=4, timeout=0.3
        )
        summary = push_table(path, "events.hits", config=config, retry=RETRY)
        time.sleep(FAULTS[fault].slow_seconds if FAULTS[fault].slow_rate else 0)  # answers still on their way
        stored = collections.Counter(hit.params["url"] for hit in simulator.stored())
        injected = [request for request in simulator.requests if request.fault]
    assert injected
    # Stored, but the answer never reached the client: the batch is sent again.
    lost = [r for r in injected if r.fault in ("drop_after", "truncate") or (r.fault == "slow" and r.status == 200
            and FAULTS[fault].slow_seconds > config.timeout)]  # fmt: skip
    doubled = sum(hits_in(request.body) for request in lost)
    assert set(stored) == {f"https://shop.example/p/{i}" for i in range(ROWS)}, "rows were lost"
    assert sum(stored.values()) - ROWS == doubled
    assert (summary.rows, summary.rejected) == (ROWS, 0)


def hits_in(body: bytes) -> int:
    """Hits a bulk request carried (the push sends nothing else that stores hits)."""
    body = body.strip()
    return len(json.loads(body)["requests"]) if body.startswith(b"{") else 0
