"""Order across workers, bulk-disabled servers, queued tracking, configuration errors, secrets, the dlt destination
and the `clickhaul push matomo` command."""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest

from destinations.matomo import make_config, matomo, push_table
from destinations.matomo.client import BulkTrackingDisabled
from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from sources.common.clock import utc_now
from sources.common.errors import ConfigError
from tests.support import files_containing, run_cli
from tests.support.matomo import config_for, create_hits_table, create_table, database, query
from tests.support.retry import FAST_RETRY


def test_a_visitors_hits_arrive_in_order_across_parallel_workers(tmp_path: Path) -> None:
    path = database(tmp_path)
    visitors, per_visitor = 120, 25
    order = [(v, n) for v in range(visitors) for n in range(per_visitor)]
    random.Random(3).shuffle(order)  # the table holds them in no particular order; time orders them
    base = utc_now() - dt.timedelta(hours=3)
    clicks = pa.table(  # noqa: F841 - read by DuckDB by name
        {
            "visitor_id": [f"{v:016x}" for v, _ in order],
            "url": [f"https://a.example/v{v}/step{n}" for v, n in order],
            "timestamp": [base + dt.timedelta(seconds=n * 10 + v % 7) for v, n in order],
        }
    )
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema events")
        connection.execute("create table events.clicks as select * from clicks")
    # Slow and failing answers shuffle the workers' timing; retries must not reorder a visitor's hits.
    faults = Faults(slow_rate=0.15, slow_seconds=0.02, error_rate=0.1, seed=9)
    with MatomoSimulator(faults, transaction_failure_rate=0.05, seed=2) as simulator:
        summary = push_table(
            path, "events.clicks", config=config_for(simulator, batch_size=7, workers=4), retry=FAST_RETRY
        )
        stored = simulator.stored()
    assert summary.sent == len(stored) == visitors * per_visitor
    by_visitor: dict[str, list[str]] = collections.defaultdict(list)
    for hit in sorted(stored, key=lambda h: h.sequence):
        by_visitor[hit.params["_id"]].append(hit.params["url"])
    for v in range(visitors):
        assert by_visitor[f"{v:016x}"] == [f"https://a.example/v{v}/step{n}" for n in range(per_visitor)]
    assert summary.retried > 0 and summary.batches >= visitors * per_visitor // 7


def test_a_400_to_the_first_batch_stops_the_run_as_bulk_tracking_disabled(tmp_path: Path) -> None:
    path = database(tmp_path)
    # more rows than the reader can queue before the answer: it is part-way through the table when the run stops,
    # and the file must still be free for the next connection (a loaded CI machine once found the reader's open)
    create_hits_table(path, 30_000)
    with MatomoSimulator(bulk_enabled=False) as simulator:
        with pytest.raises(BulkTrackingDisabled, match="bulk tracking may be disabled"):
            push_table(path, "events.hits", config=config_for(simulator, workers=1), retry=FAST_RETRY)
        assert simulator.count("/matomo.php") == 1  # stopped at once, not retried
    assert query(path, "select count(*) from matomo.matomo_ledger") == [(0,)]


def test_queued_tracking_off_gets_real_validation_on_queued_servers(tmp_path: Path) -> None:
    path = database(tmp_path)
    create_table(
        path,
        "events.sites",
        "select case when i < 5 then 99 else 1 end as idsite, 'https://a.example/' || i as url from range(20) t(i)",
    )
    with MatomoSimulator(queued=True) as simulator:
        checked = push_table(path, "events.sites", config=config_for(simulator, workers=1))
        assert (checked.tracked, checked.rejected_server) == (15, 5)  # queuedtracking=0: answered after validation
        assert not simulator.queue and len(simulator.stored()) == 15
        assert all(hit.params["queuedtracking"] == "0" for hit in simulator.stored())

    path2 = tmp_path / "queued.duckdb"
    create_table(
        path2,
        "events.sites",
        "select * from (values (99, 'https://a.example/x'), (1, 'https://a.example/y')) t(idsite, url)",
    )
    with MatomoSimulator(queued=True) as simulator:
        queued = push_table(path2, "events.sites", config=config_for(simulator, queued_tracking=True, workers=1))
        assert (queued.tracked, queued.rejected_server) == (2, 0)  # the queue answers before validating
        assert [hit.params["url"] for hit in simulator.stored()] == ["https://a.example/y"]
        assert "queuedtracking" not in simulator.stored()[0].params


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tracking_url": None}, "destination.matomo.tracking_url is not set"),
        ({"tracking_url": "http://matomo.example.com/matomo.php"}, "plain HTTP"),
        ({"tracking_url": "https://matomo.example.com"}, "has no path"),
        ({"tracking_url": "https://m.example.com/matomo.php?token_auth=abc"}, "remove it from the URL"),
        ({"batch_size": 0}, "batch_size is 0"),
        ({"workers": 500}, "workers is 500"),
        ({"idsite": "main"}, "idsite 'main' is not a whole number"),
        ({"queued_tracking": "maybe"}, "queued_tracking 'maybe'"),
    ],
)
def test_bad_configuration_is_one_clear_error(arguments: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"tracking_url": "https://matomo.example.com/matomo.php", **arguments}
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        make_config(**values)  # type: ignore[arg-type]


def test_bad_input_fails_before_any_request(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    create_hits_table(path, 10)
    create_table(path, "events.nothing", "select 1 as a, 'x' as b")
    for table, mapping_name, message in [
        ("events.missing", "default", "not found"),
        ("events", "default", "DATASET.TABLE"),
        ("events.hits", "google", "unknown mapping 'google'"),
        ("events.hits", "opentracker_sessions", "none of the columns session_start"),
        ("events.nothing", "default", "no column the default mapping sends"),
    ]:
        with pytest.raises(ConfigError, match=message):
            push_table(path, table, config=config_for(simulator), mapping_name=mapping_name)
    assert simulator.count("") == 0


def test_cli_push_reports_and_keeps_token_auth_out_of_logs_urls_and_files(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    path = database(tmp_path)
    create_hits_table(path, 3_000)
    create_table(path, "events.bad", "select 'x' as url, 'zz' as _id")
    env = {
        "DESTINATION__MATOMO__TRACKING_URL": f"{simulator.url}/matomo.php",
        "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
        "DESTINATION__MATOMO__IDSITE": "1",
        "RUNTIME__LOG_LEVEL": "DEBUG",
    }
    result = run_cli("-v", "push", "matomo", "--table", "events.hits", "--database", str(path), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sent 3,000, tracked 3,000, rejected 0" in result.stdout
    assert "hits/s" in result.stdout and "POST" in result.stderr  # -v logs each request, masked
    bad = run_cli("-v", "push", "matomo", "--table", "events.bad", "--database", str(path), env=env, cwd=tmp_path)
    assert bad.returncode == 0 and "rejected 1" in bad.stdout
    assert DEMO_SUPERUSER_TOKEN not in result.stdout + result.stderr + bad.stdout + bad.stderr
    assert files_containing(tmp_path, [DEMO_SUPERUSER_TOKEN]) == []
    posts = [request for request in simulator.requests if request.method == "POST"]
    assert posts and all("token_auth" not in request.query for request in posts)
    bulk = [request for request in posts if request.path.endswith("matomo.php")]
    assert bulk and all(json.loads(request.body)["token_auth"] == DEMO_SUPERUSER_TOKEN for request in bulk)
    # the token check before the first batch (Reporting API) also carries everything in the POST body only
    checks = [request for request in posts if request.path.endswith("index.php")]
    assert checks and all(not request.query for request in checks)
    assert all(f"token_auth={DEMO_SUPERUSER_TOKEN}".encode() in request.body for request in checks)


def test_cli_names_the_missing_setting(tmp_path: Path) -> None:
    path = database(tmp_path)
    create_hits_table(path, 10)
    result = run_cli("push", "matomo", "--table", "events.hits", "--database", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "destination.matomo.tracking_url is not set" in result.stderr
    assert "DESTINATION__MATOMO__TRACKING_URL" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("batch_size", [None, 50], ids=["load-files", "row-batches"])
def test_dlt_destination_sends_each_row_once_across_loads(
    simulator: MatomoSimulator, tmp_path: Path, batch_size: int | None
) -> None:
    rows: list[dict[str, Any]] = [
        {"order_id": f"o-{i}", "visitor_id": f"{i % 13:016x}", "page_url": f"https://shop.example/done/{i}",
         "event_category": "shop", "event_action": "order", "event_value": i * 1.5}
        for i in range(600)
    ]  # fmt: skip
    ledger = tmp_path / "ledger.duckdb"
    settings: dict[str, Any] = {"batch_size": batch_size} if batch_size else {}
    destination = matomo(
        tracking_url=f"{simulator.url}/matomo.php",
        token_auth=DEMO_SUPERUSER_TOKEN,
        idsite=2,
        ledger_database=str(ledger),
        **settings,
    )
    pipeline = dlt.pipeline("matomo_test", destination=destination, pipelines_dir=str(tmp_path / "pipelines"))
    pipeline.run(rows, table_name="orders", primary_key="order_id")
    assert sorted(hit.params["url"] for hit in simulator.stored()) == sorted(row["page_url"] for row in rows)
    assert {hit.params["idsite"] for hit in simulator.stored()} == {"2"}
    assert simulator.stored()[0].params["e_c"] == "shop"

    new_row = {**rows[0], "order_id": "o-new", "page_url": "https://shop.example/done/new"}
    pipeline.run([*rows[:100], new_row], table_name="orders", primary_key="order_id")
    assert len(simulator.stored()) == 601  # the 100 acknowledged rows were not sent again
    assert query(ledger, "select count(*) from matomo.matomo_ledger_hits") == [(601,)]


def test_a_tracking_only_host_is_named_and_reporting_url_points_elsewhere(tmp_path: Path) -> None:
    """A Matomo whose index.php is not on the tracking host answered the token check with 'refused token_auth:
    Not Found'; now the message says where the Reporting API was looked for and which setting moves it."""
    path = database(tmp_path)
    create_hits_table(path, 30)
    with MatomoSimulator(reporting_api=False) as tracker, MatomoSimulator() as reporting:
        config = make_config(f"{tracker.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1)
        with pytest.raises(ConfigError) as refused:
            push_table(path, "events.hits", config=config)
        message = str(refused.value)
        assert f"the Reporting API is not at {tracker.url}/index.php (HTTP 404" in message
        assert "DESTINATION__MATOMO__REPORTING_URL" in message and "refused" not in message
        assert tracker.hits == []  # nothing sent before the check

        config = make_config(
            f"{tracker.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1, reporting_url=f"{reporting.url}/index.php"
        )
        summary = push_table(path, "events.hits", config=config)
        assert summary.tracked == len(tracker.hits) == 30
        assert reporting.count("index.php") >= 1 and tracker.count("index.php") == 1  # only the refused check


def test_a_push_without_ledger_into_a_matomo_that_holds_those_days_stops_until_forced(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    """The same rows pushed again from another file (so no ledger knows them) would be counted twice: the push
    stops with Matomo's counts and sends nothing; `--force` sends anyway."""
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    create_hits_table(first, 120)
    push_table(first, "events.hits", config=config_for(simulator))
    assert len(simulator.stored()) == 120
    with duckdb.connect(str(second)) as connection:  # the same table, copied to a file without the ledger
        connection.execute(f"attach '{first}' as first (read_only)")
        connection.execute("create schema events")
        connection.execute("create table events.hits as select * from first.events.hits")

    env = {
        "DESTINATION__MATOMO__TRACKING_URL": f"{simulator.url}/matomo.php",
        "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
        "DESTINATION__MATOMO__IDSITE": "1",
    }
    args = ["push", "matomo", "--table", "events.hits", "--database", str(second), "--progress", "off"]
    refused = run_cli(*args, env=env, cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "already holds visits" in refused.stderr and "site 1: 120 visits, 120 actions" in refused.stderr
    assert "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert len(simulator.stored()) == 120  # nothing sent

    forced = run_cli(*args, "--force", env=env, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(simulator.stored()) == 240  # asked for: every row again
    again = run_cli(*args, env=env, cwd=tmp_path)  # this file's ledger knows them now: nothing to send, no stop
    assert again.returncode == 0, again.stderr
    assert len(simulator.stored()) == 240
