"""Each hit reaches Matomo once: a large table, a run killed mid-way, transactional failures, 5xx and timeouts."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from destinations.matomo import push_table
from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from tests.support import ROOT

from .conftest import FAST_RETRY, config_for, create_hits_table, database, query


def stored_urls(simulator: MatomoSimulator) -> collections.Counter[str]:
    return collections.Counter(hit.params["url"] for hit in simulator.stored())


def expected_urls(rows: int) -> collections.Counter[str]:
    return collections.Counter(f"https://shop.example/p/{i}" for i in range(rows))


def test_100k_rows_arrive_exactly_once_and_a_rerun_sends_nothing(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    create_hits_table(path, 100_000)
    summary = push_table(path, "events.hits", config=config_for(simulator))

    assert stored_urls(simulator) == expected_urls(100_000)
    assert (summary.rows, summary.sent, summary.tracked, summary.rejected) == (100_000, 100_000, 100_000, 0)
    # 200 hits a batch; each of the 4 workers' shards may end with one short batch
    assert summary.batches == simulator.count("/matomo.php", method="POST")
    assert 500 <= summary.batches <= 504
    assert query(path, "select count(*), sum(hits) from matomo.matomo_ledger") == [(summary.batches, 100_000)]
    # Every stored hit carries what the table said, in Matomo's names.
    sample = {hit.params["url"]: hit for hit in simulator.stored()[:50]}
    for url, visitor, title in query(
        path, "select page_url, visitor_id, page_title from events.hits where event_id < 2000"
    ):
        if url in sample:
            params = sample[url].params
            assert (params["_id"], params["action_name"], params["idsite"]) == (visitor, title, "1")
            assert (params["rec"], params["apiv"], params["queuedtracking"]) == ("1", "1", "0")

    again = push_table(path, "events.hits", config=config_for(simulator))
    assert (again.already_acknowledged, again.sent, again.requests) == (100_000, 0, 0)
    assert len(simulator.stored()) == 100_000


def test_a_killed_run_started_again_stores_each_hit_once(tmp_path: Path) -> None:
    rows, workers = 20_000, 4
    path = database(tmp_path)
    create_hits_table(path, rows)
    # After 30 stored batches the simulator parks every request (before storing it): once all workers wait there,
    # every batch Matomo acknowledged is in the ledger, and the process is killed with work half done.
    with MatomoSimulator(hold_after_batches=30) as simulator:
        env = {
            **os.environ,
            "DESTINATION__MATOMO__TRACKING_URL": f"{simulator.url}/matomo.php",
            "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
            "DESTINATION__MATOMO__IDSITE": "1",
        }
        command = [sys.executable, "-m", "pipelines", "push", "matomo", "--table", "events.hits"]
        command += ["--database", str(path), "--batch-size", "100", "--workers", str(workers), "--progress", "off"]
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while simulator.held < workers and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.05)
            if process.poll() is not None and process.stderr is not None:
                pytest.fail(f"the push ended before it could be killed: {process.stderr.read().decode()}")
            assert simulator.held == workers
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()  # type: ignore[union-attr]
            process.stderr.close()  # type: ignore[union-attr]
        simulator.release_held()  # the parked requests die with their client: nothing of them is stored
        first_run = len(simulator.stored())
        assert 30 * 100 <= first_run < rows

        restarted = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert restarted.returncode == 0, restarted.stderr
        # The 4 parked batches were in flight when the push died: the restart reads Matomo back for them first
        # (they hold nothing: parked requests store nothing), sends them, then skips every acknowledged hit.
        assert f"already acknowledged earlier {first_run + workers * 100:,}" in restarted.stdout
        assert f"({workers} left in flight by an earlier run" in restarted.stdout
        assert "0 hits found already stored, 400 sent again" in restarted.stdout
        assert stored_urls(simulator) == expected_urls(rows)


def test_transactional_failures_5xx_and_timeouts_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    rows = 4_000
    path = database(tmp_path)
    create_hits_table(path, rows)
    # Every fault here happens before the batch is stored: 5xx, 429, a connection closed before processing, a
    # rolled-back transaction that answers status:error with tracked > 0, and no answer within the timeout.
    faults = Faults(error_rate=0.08, drop_rate=0.04, rate_limit_rate=0.04, retry_after="0", seed=11)
    # A hang outlasts the client timeout (2 s, far above a normal answer here) and stores nothing.
    with MatomoSimulator(faults, transaction_failure_rate=0.12, hang_rate=0.02, hang_seconds=4.0, seed=5) as simulator:
        summary = push_table(
            path, "events.hits", config=config_for(simulator, batch_size=50, timeout=2.0, workers=1), retry=FAST_RETRY
        )
        faults_seen = collections.Counter(request.fault for request in simulator.requests)
        assert stored_urls(simulator) == expected_urls(rows)
        assert simulator.failed_transactions > 0 and simulator.hung > 0
        assert faults_seen["error"] > 0 and faults_seen["drop"] > 0 and faults_seen["rate_limit"] > 0
        assert summary.retried > 0 and summary.sent == rows and summary.tracked == rows
        assert summary.requests > summary.batches


def test_answers_lost_after_storing_are_the_one_residual_risk_and_are_counted(tmp_path: Path) -> None:
    """The protocol cannot tell 'lost before storing' from 'stored, answer lost': the batch is sent again, and
    the run reports how often that happened. The doubles are exactly those batches."""
    rows = 2_000
    path = database(tmp_path)
    create_hits_table(path, rows)
    with MatomoSimulator(Faults(drop_after_rate=0.06, truncate_rate=0.06, seed=7)) as simulator:
        # One worker: the faults fall on the same requests in every run.
        config = config_for(simulator, batch_size=50, workers=1)
        summary = push_table(path, "events.hits", config=config, retry=FAST_RETRY)
        counts = stored_urls(simulator)
        assert set(counts) == set(expected_urls(rows))  # nothing lost
        dropped = [request for request in simulator.requests if request.fault in ("drop_after", "truncate")]
        assert {request.fault for request in dropped} == {"drop_after", "truncate"}
        dropped_after = len(dropped)
        assert dropped_after > 0
        assert summary.lost_answers == dropped_after
        assert sum(counts.values()) - rows == sum(len(json.loads(r.body)["requests"]) for r in dropped)
        assert "counted twice" in summary.render()
        assert query(path, "select sum(lost_answers) from matomo.matomo_ledger") == [(dropped_after,)]
