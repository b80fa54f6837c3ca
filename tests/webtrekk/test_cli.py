"""The real `clickhaul` commands against the simulator: check, push (importData) and delete-tv-data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from destinations.webtrekk import UploadTable, push_rows
from simulators.webtrekk import WebtrekkSimulator
from sources.common.errors import ClickhaulError
from sources.webtrekk.client import WebtrekkClient
from tests.support import Loader, run_cli
from tests.support.webtrekk import FAST_LIMITS, make_env


def test_check(simulator: WebtrekkSimulator) -> None:
    result = run_cli("check", "webtrekk", env=make_env(simulator))
    assert result.returncode == 0, result.stderr
    assert "Connection successful" in result.stdout and "login accepted" in result.stdout
    assert simulator.logins == simulator.logouts == 1
    bad = run_cli("check", "webtrekk", env={**make_env(simulator), "SOURCES__WEBTREKK__PASSWORD": "wrong-pass"})
    assert bad.returncode == 1 and "refused the login" in bad.stderr and "wrong-pass" not in bad.stderr


def test_push_chunks_25k_rows_into_3_calls_and_the_server_holds_exactly_them(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader(export_types=["content_categories"])
    run.run(resources="export_content_categories")
    header, truth = simulator.export_table({"type": "content_categories"})
    result = run_cli(
        "push",
        "webtrekk",
        "--upload-type",
        "content_categories",
        "--table",
        "webtrekk.export_content_categories",
        "--database",
        str(run.database),
        env=make_env(simulator),
    )
    assert result.returncode == 0, result.stderr
    assert "25,500 rows" in result.stdout and "3 call(s)" in result.stdout
    assert simulator.import_calls == [
        ("content_categories", 10_000),
        ("content_categories", 10_000),
        ("content_categories", 5_500),
    ]
    assert simulator.import_headers["content_categories"] == header  # the vendor's titles, from the schema
    assert simulator.imported["content_categories"] == {row.cells[0]: list(row.cells) for row in truth}


def test_a_failed_chunk_names_its_rows_and_stops(simulator: WebtrekkSimulator) -> None:
    data = simulator.data
    client = WebtrekkClient(
        simulator.url + "/cgi-bin/wt/JSONRPC.cgi", data.customer_id, data.login, data.password, rate_limits=FAST_LIMITS
    )
    rows = [[f"page-{index:05d}", "x"] for index in range(25_000)]
    rows[12_345] = ["page-broken"]  # a short row: the server refuses that chunk
    with pytest.raises(ClickhaulError) as raised:
        push_rows(
            client, "content_categories", UploadTable(["Pages", "Category (Text) - x"], rows), echo=lambda _: None
        )
    assert "chunk 2/3 (rows 10001-20000) failed" in str(raised.value)
    assert "rows 1-10000 were imported, rows 10001-25000 were not sent" in str(raised.value)
    assert simulator.import_calls == [("content_categories", 10_000)]  # nothing after the failed chunk
    assert simulator.logins == simulator.logouts == 1


def test_delete_tv_data_needs_yes(simulator: WebtrekkSimulator) -> None:
    env = make_env(simulator)
    refused = run_cli("webtrekk", "delete-tv-data", "--start", "2024-01-01", "--stop", "2024-01-31", env=env)
    assert refused.returncode == 1
    assert "2024-01-01 00:00:00 to 2024-01-31 23:59:59" in refused.stdout and "--yes" in refused.stderr
    assert simulator.data.customer_id in refused.stdout  # says whose data it would delete
    assert simulator.tv_deletions == [] and simulator.arrivals == []  # not a single request
    done = run_cli("webtrekk", "delete-tv-data", "--start", "2024-01-01", "--stop", "2024-01-31", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert "Deleting Tv Data initiated" in done.stdout
    assert simulator.tv_deletions == [("2024-01-01 00:00:00", "2024-01-31 23:59:59")]


def test_demo_plan_loads(simulator: WebtrekkSimulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from simulators.webtrekk import demo_plan

    plan = demo_plan(simulator)
    env = {**plan.env, **{k: v for k, v in make_env(simulator).items() if k.endswith("RATE_LIMITS")}}
    summary = Loader("webtrekk", tmp_path, env).run(plan.start, plan.end, source_kwargs=plan.source_kwargs)
    assert summary.rows["export_content_categories"] == 25_500
    assert {
        "analysis_pages",
        "analysis_traffic",
        "report_overview_report__scorecard",
        "report_overview_report__kpi",
    } <= set(summary.rows)
    assert summary.requests == 13  # what the demo costs under the documented 5 requests / 10 s: about 25 s
