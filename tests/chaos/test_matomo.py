"""The Matomo destination under each fault of the battery, and under all of them at once with SIGKILLs at random
moments: every hit stored exactly once, in every case. What makes that possible: a batch whose outcome is unknown
(5xx, a deadlocked bulk that stored nothing, all or a tail, an answer lost, cut or later than the timeout, a crash
with the batch in flight) is read back from Matomo, and only the hits it lacks are sent again."""

from __future__ import annotations

import random
import time
from pathlib import Path

import duckdb
import pytest

from destinations.matomo import make_config, push_table
from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from sources.common.http import RetryPolicy
from tests.matomo.support import exactly_once, forked_push, kill_when
from tests.support import sql_now

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out

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
URLS = [f"https://shop.example/p/{i}" for i in range(ROWS)]


def hits_table(path: Path) -> None:
    """ROWS page views of 37 visitors, one in ten without any visitor id (Matomo derives one from IP and UA)."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema if not exists events")
        connection.execute(
            f"""create or replace table events.hits as
                select case when i % 10 = 9 then null else substr(md5((i % 37)::varchar), 1, 16) end as visitor_id,
                       '198.51.100.' || (i % 37) as ip, 'https://shop.example/p/' || i as page_url,
                       'Page ' || i as page_title, {sql_now()} - interval '3 hours' + to_seconds(i) as timestamp,
                       i as event_id
                from range({ROWS}) t(i)"""
        )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_row_stored_exactly_once_under_fault(fault: str, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    hits_table(path)
    with MatomoSimulator(FAULTS[fault]) as simulator:
        config = make_config(f"{simulator.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1, batch_size=25, workers=4,
                             timeout=0.3, reconcile_delay=1.0)  # fmt: skip
        summary = push_table(path, "events.hits", config=config, retry=RETRY)
        time.sleep(FAULTS[fault].slow_seconds if FAULTS[fault].slow_rate else 0)  # late answers land by now
        injected = [request for request in simulator.requests if request.fault]
        assert injected
        assert exactly_once(simulator, URLS) == (0, 0)
    assert (summary.rows, summary.rejected, summary.tracked) == (ROWS, 0, ROWS)


@pytest.mark.slow
def test_twenty_rounds_of_every_fault_and_random_kills_store_each_hit_once(tmp_path: Path) -> None:
    """Each round: a fresh Matomo that deadlocks (storing nothing, all or a tail), drops, cuts and delays
    answers, refuses with 429 and fails with 5xx; pushes SIGKILLed 1 to 3 times at random moments (between
    batches, with batches in flight, between an answer and its ledger write), then one push to the end."""
    missing_and_doubled = []
    kills = reconciled = 0
    for round_number in range(20):
        rng = random.Random(f"matomo-chaos-{round_number}")
        path = tmp_path / f"round{round_number}.duckdb"
        hits_table(path)
        faults = Faults(error_rate=0.04, drop_rate=0.03, drop_after_rate=0.05, truncate_rate=0.04,
                        slow_rate=0.03, slow_seconds=0.3, rate_limit_rate=0.03, retry_after="0",
                        seed=rng.randrange(10**6))  # fmt: skip
        with MatomoSimulator(faults, transaction_failure_rate=0.15, seed=rng.randrange(10**6)) as simulator:
            # reconcile_delay is how long a batch whose answer was lost may still land: a slow answer stores its
            # batch 0.3 s after it arrives, so 0.8 s leaves room for a loaded machine (0.05 s once doubled a batch)
            config = make_config(f"{simulator.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1, batch_size=20,
                                 workers=2, timeout=0.2, reconcile_delay=0.8)  # fmt: skip
            for _ in range(rng.randint(1, 3)):
                seen = simulator.count(r"matomo\.php")
                target = seen + rng.randint(1, 8)
                pause = rng.uniform(0, 0.02)
                process = forked_push(path, "events.hits", config, RETRY)

                def moment(target: int = target, pause: float = pause) -> bool:
                    if simulator.count(r"matomo\.php") + simulator.in_flight < target:
                        return False
                    time.sleep(pause)  # anywhere in the request's life: before, during or after storing
                    return True

                kills += kill_when(process, moment)
            summary = push_table(path, "events.hits", config=config, retry=RETRY)
            time.sleep(0.8)  # a late answer's batch is stored by now
            missing_and_doubled.append(exactly_once(simulator, URLS))
            reconciled += summary.reconciled_batches
        with duckdb.connect(str(path), read_only=True) as connection:
            assert connection.execute("select count(*) from matomo.matomo_ledger_in_flight").fetchall() == [(0,)]
    assert missing_and_doubled == [(0, 0)] * 20
    assert kills >= 20 and reconciled > 0
