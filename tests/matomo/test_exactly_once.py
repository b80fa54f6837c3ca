"""Each hit reaches Matomo once: a large table, runs killed mid-way, 500s that stored nothing, all or a tail, answers
lost, cut or late, rows without a visitor id; read-backs only where an outcome was unknown, bounded by the batch."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from destinations.matomo import push_table
from simulators.harness import Faults, LoggedRequest
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from sources.common.clock import today_utc
from tests.support import ROOT, sql_now
from tests.support.matomo import config_for, create_hits_table, create_table, database, query
from tests.support.retry import FAST_RETRY

from .support import exactly_once, forked_push, kill_when


def expected_urls(rows: int) -> list[str]:
    return [f"https://shop.example/p/{i}" for i in range(rows)]


def test_100k_rows_arrive_exactly_once_and_a_rerun_sends_nothing(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    create_hits_table(path, 100_000)
    summary = push_table(path, "events.hits", config=config_for(simulator))

    assert exactly_once(simulator, expected_urls(100_000)) == (0, 0)
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


@pytest.mark.slow
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
        # The 4 parked batches and those queued behind them were in flight when the push died: the restart reads
        # Matomo back for them first (they hold nothing: parked requests store nothing), sends them, then skips
        # every acknowledged hit.
        recovered = re.search(r"\((\d+) left in flight by an earlier run", restarted.stdout)
        assert recovered and int(recovered.group(1)) >= workers
        resent_text = re.search(r"0 hits found already stored, ([\d,]+) sent again", restarted.stdout)
        resent = int(resent_text[1].replace(",", "")) if resent_text else 0
        assert workers * 100 <= resent <= int(recovered.group(1)) * 100
        assert f"already acknowledged earlier {first_run + resent:,}" in restarted.stdout
        assert exactly_once(simulator, expected_urls(rows)) == (0, 0)


def test_500s_that_stored_nothing_all_or_a_tail_are_read_back_and_only_missing_hits_resent(tmp_path: Path) -> None:
    """What a real Matomo does under deadlocks: HTTP 500 status:error after storing nothing, the whole batch, or
    all but its first hits. Each such batch is read back once and only what Matomo lacks goes out again."""
    rows = 3_000
    path = database(tmp_path)
    create_hits_table(path, rows)
    with MatomoSimulator(transaction_failure_rate=0.3, seed=5) as simulator:
        summary = push_table(path, "events.hits", config=config_for(simulator, batch_size=100, workers=4),
                             retry=FAST_RETRY)  # fmt: skip
        assert exactly_once(simulator, expected_urls(rows)) == (0, 0)
        kinds = simulator.failure_kinds
        assert kinds["nothing"] > 0 and kinds["all"] > 0 and kinds["tail"] > 0
        # Every 500 was read back; what it left behind was found, not sent again.
        assert summary.reconciled_batches == summary.unknown_outcomes == simulator.failed_transactions
        assert summary.found_stored + summary.resent == sum(hits_in(r.body) for r in failed(simulator))
        assert summary.found_stored > 0 and summary.resent > 0
        assert summary.tracked == rows and summary.sent == rows
        # Read-backs: one per 40 visitors of a 100-hit batch, and nothing else on the Reporting API.
        reads = read_backs(simulator)
        assert len(reads) == summary.reconciliation_requests <= 3 * summary.reconciled_batches
        # + the token check and the earlier-push probe, and an invalidation when the hits began before today
        assert simulator.count(r"index\.php") == len(reads) + 2 + invalidations(simulator, summary)
    # A tail after the first hit of a 1-hit resend is nothing: at most one ledger row per 'all' or 'tail'.
    found_total, found_batches = query(
        path, "select sum(found_stored), count(*) filter (where reconciled) from matomo.matomo_ledger"
    )[0]
    assert found_total == summary.found_stored and kinds["all"] <= found_batches <= kinds["all"] + kinds["tail"]
    assert query(path, "select count(*) from matomo.matomo_ledger_in_flight") == [(0,)]
    rendered = summary.render()
    assert f"reconciled {summary.reconciled_batches} batch(es)" in rendered
    assert f"{summary.found_stored:,} hits found already stored, {summary.resent:,} sent again" in rendered


def test_lost_cut_and_late_answers_are_read_back_too(tmp_path: Path) -> None:
    """Answers lost after storing, cut short, or later than the timeout: the batch was stored (or is being
    stored); reading Matomo back after `reconcile_delay` finds it, and nothing is doubled."""
    rows = 1_500
    path = database(tmp_path)
    create_hits_table(path, rows)
    faults = Faults(drop_after_rate=0.06, truncate_rate=0.06, drop_rate=0.04, slow_rate=0.04, slow_seconds=0.5,
                    seed=7, exempt_paths=(r"index\.php",))  # fmt: skip
    with MatomoSimulator(faults) as simulator:
        config = config_for(simulator, batch_size=50, workers=2, timeout=0.25, reconcile_delay=0.75)
        summary = push_table(path, "events.hits", config=config, retry=FAST_RETRY)
        injected = collections.Counter(request.fault for request in simulator.requests if request.fault)
        assert injected["drop_after"] and injected["truncate"] and injected["drop"] and injected["slow"]
        time.sleep(0.5)  # a late answer's batch is stored by now
        assert exactly_once(simulator, expected_urls(rows)) == (0, 0)
    assert summary.reconciled_batches == sum(injected.values())
    assert summary.lost_answers == injected["drop_after"] + injected["drop"] + injected["slow"]
    # Stored before the answer was lost: found; dropped before storing: sent again.
    stored_then_lost = sum(hits_in(r.body) for r in simulator.requests if r.fault in ("drop_after", "truncate", "slow"))
    assert summary.found_stored == stored_then_lost
    assert "counted twice" not in summary.render()


def test_clear_answers_cost_no_read_back(tmp_path: Path) -> None:
    """5xx without storing and 429 are answers too, but only 'stored' and 'refused' are certain: a 429 costs no
    read-back, a 5xx one; a clean push none at all."""
    path = database(tmp_path)
    create_hits_table(path, 2_000)
    with MatomoSimulator(Faults(rate_limit_rate=0.2, retry_after="0", seed=3)) as simulator:
        summary = push_table(path, "events.hits", config=config_for(simulator, batch_size=100), retry=FAST_RETRY)
        assert exactly_once(simulator, expected_urls(2_000)) == (0, 0)
        assert simulator.count(r"matomo\.php", status=429) > 0
        assert (summary.reconciled_batches, summary.reconciliation_requests) == (0, 0)
        # the token check and the probe for an earlier push (and an invalidation when the hits began before today)
        assert simulator.count(r"index\.php") == 2 + invalidations(simulator, summary)


def test_read_backs_ask_only_for_the_batch_visitors_and_days(tmp_path: Path) -> None:
    path = database(tmp_path)
    create_backdated_hits(path, days_back=(9, 8, 3), visitors=30)
    with MatomoSimulator(transaction_failure_rate=1.0, failure_outcomes={"all": 1.0}, seed=1) as simulator:
        summary = push_table(path, "events.hits", config=config_for(simulator, batch_size=30, workers=1),
                             retry=FAST_RETRY)  # fmt: skip
        assert exactly_once(simulator, [f"https://shop.example/b/{i}" for i in range(90)]) == (0, 0)
        assert (summary.found_stored, summary.resent, summary.reconciled_batches) == (90, 0, 3)
        sent = [json.loads(r.body)["requests"] for r in simulator.requests if r.path.endswith("matomo.php")]
        for batch, read in zip(sent, read_backs(simulator), strict=True):
            params = batch  # parameter objects
            visitors = {f"visitorId=={p['_id']}" for p in params}
            assert set(read["segment"].split(",")) == visitors
            days = sorted(p["cdt"][:10] for p in params)
            first, last = read["date"].split(",")
            assert first == str(dt.date.fromisoformat(days[0]) - dt.timedelta(days=1))
            assert last == str(dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1))
            assert (read["period"], read["filter_limit"], read["module"]) == ("range", "-1", "API")
            assert read["token_auth"] == DEMO_SUPERUSER_TOKEN
        assert all("token_auth" not in r.query and not r.query for r in simulator.requests)


def test_rows_without_a_visitor_id_are_read_back_by_time_span_and_counted(tmp_path: Path) -> None:
    """No `_id`/`cid`/`uid`: Matomo makes the visitor up from IP and user agent, so a read-back can name no
    visitor. The hits are still found by pv_id, second and path, in every visit of their days; the summary warns."""
    path = database(tmp_path)
    create_table(
        path,
        "events.anonymous",
        f"""select 'https://shop.example/a/' || i as page_url, '198.51.100.' || (i % 50) as ip,
                  {sql_now()} - interval '5 hours' + to_seconds(i * 7) as timestamp, i as event_id
           from range(600) t(i)""",
    )
    with MatomoSimulator(transaction_failure_rate=0.35, seed=9) as simulator:
        summary = push_table(path, "events.anonymous", config=config_for(simulator, batch_size=40, workers=2),
                             key_columns=["event_id"], retry=FAST_RETRY)  # fmt: skip
        assert exactly_once(simulator, [f"https://shop.example/a/{i}" for i in range(600)]) == (0, 0)
        assert simulator.failed_transactions > 0 and summary.found_stored > 0
        assert all("segment" not in read for read in read_backs(simulator))
    assert summary.found_by_time_only > 0
    assert "without a visitor id (_id, cid, uid)" in summary.render()


def test_a_batch_stored_whose_answer_never_came_before_a_kill_is_not_sent_again(tmp_path: Path) -> None:
    """Killed after Matomo stored a batch and before its answer arrived: the ledger has it in flight; the next
    run reads it back first, finds it whole and sends none of it."""
    rows = 1_000
    path = database(tmp_path)
    create_hits_table(path, rows)
    with MatomoSimulator(hold_after_batches=3, hold_after_storing=True) as simulator:
        config = config_for(simulator, batch_size=50, workers=2, reconcile_delay=0.0)
        process = forked_push(path, "events.hits", config, FAST_RETRY)
        assert kill_when(process, lambda: simulator.held == 2)
        simulator.release_held()
        # In flight: the 2 stored whose answers never came, any answered one whose ledger write the kill cut
        # short, and the batches queued behind them (never sent).
        in_flight, in_flight_hits = query(
            path, "select count(*), sum(len(string_split(hit_ids, chr(10)))) from matomo.matomo_ledger_in_flight"
        )[0]
        assert in_flight >= 2
        stored_before = len(simulator.stored())
        assert stored_before == 5 * 50  # 3 acknowledged batches + the 2 stored
        summary = push_table(path, "events.hits", config=config, retry=FAST_RETRY)
        assert exactly_once(simulator, expected_urls(rows)) == (0, 0)
    assert summary.recovered_batches == in_flight and summary.found_stored >= 100
    assert summary.found_stored + summary.resent == in_flight_hits
    assert summary.already_acknowledged == stored_before + summary.resent
    assert query(path, "select count(*) from matomo.matomo_ledger_in_flight") == [(0,)]


def failed(simulator: MatomoSimulator) -> list[LoggedRequest]:
    return [r for r in simulator.requests if r.path.endswith("matomo.php") and r.status == 500]


def invalidations(simulator: MatomoSimulator, summary: Any) -> int:
    """The archive invalidations a push asked for: one per site whose hits fell on days before today (the hits of
    `create_hits_table` begin six hours ago, before midnight when a test runs early in the UTC day)."""
    bodies = [dict(parse_qsl(r.body.decode())) for r in simulator.requests if r.path.endswith("index.php")]
    asked = sum(1 for b in bodies if b.get("method") == "CoreAdminHome.invalidateArchivedReports")
    assert asked == len(summary.invalidated)
    return asked


def read_backs(simulator: MatomoSimulator) -> list[dict[str, str]]:
    """The read-backs of batches, not the probe for an earlier push before the first batch (doNotFetchActions)."""
    bodies = [dict(parse_qsl(r.body.decode())) for r in simulator.requests if r.path.endswith("index.php")]
    return [b for b in bodies if b.get("method") == "Live.getLastVisitsDetails" and not b.get("doNotFetchActions")]


def hits_in(body: bytes) -> int:
    return len(json.loads(body)["requests"])


def create_backdated_hits(path: Path, days_back: tuple[int, ...], visitors: int) -> None:
    """`visitors` hits on each of the days `days_back` days ago, one visitor per hit of a day."""
    today = today_utc()
    selects = [
        f"select '{n:016x}' as visitor_id, 'https://shop.example/b/{index * visitors + n}' as page_url, "
        f"timestamp '{today - dt.timedelta(days=back)} 12:00:00' + to_seconds({n}) as timestamp"
        for index, back in enumerate(days_back)
        for n in range(visitors)
    ]
    create_table(path, "events.hits", " union all ".join(selects))
