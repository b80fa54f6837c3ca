"""The completeness watermark: taken over from an earlier version's cursor, left where it was by a failed run,
untouched by fixed ranges and Airflow intervals, shown by `status`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from simulators.harness import Faults
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.clock import TODAY_ENV
from sources.common.errors import ClickhaulError
from sources.common.incremental import EXTERNAL_SCHEDULER_ENV, WATERMARKS
from tests.support import Loader, run_cli

TODAY = dt.date(2024, 3, 31)


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[PirschSimulator]:
    monkeypatch.setenv(TODAY_ENV, TODAY.isoformat())
    data = PirschData(domains=2, days=40, last_day=TODAY, paths=15, sessions_per_day=(20, 30))
    with PirschSimulator(data, token_limit_per_minute=1000) as server:
        yield server  # type: ignore[misc]


def loader(simulator: PirschSimulator, tmp_path: Path, **env: str) -> Loader:
    settings = {
        **demo_plan(simulator).env,
        "SOURCES__PIRSCH__TIMEZONE": "UTC",
        "SOURCES__PIRSCH__START_DATE": (TODAY - dt.timedelta(days=20)).isoformat(),
        "SOURCES__PIRSCH__LOOKBACK_DAYS": "2",
        **env,
    }
    return Loader("pirsch", tmp_path, settings)


def days_asked(simulator: PirschSimulator, path: str = "/statistics/page") -> list[str]:
    return sorted({r.query["from"] for r in simulator.requests if r.path.endswith(path)})


def marks(run: Loader, resource: str) -> dict[str, str]:
    pipeline = dlt.attach(run.pipeline_name, pipelines_dir=str(run.pipelines_dir))
    return dict(pipeline.state["sources"]["pirsch"]["resources"][resource].get(WATERMARKS) or {})


def test_an_earlier_versions_cursor_is_taken_over_without_rereading_history(
    simulator: PirschSimulator, tmp_path: Path
) -> None:
    """State as the earlier version left it: dlt's incremental on `day` of the `pages` resource, last at today-5."""
    run = loader(simulator, tmp_path)
    last_seen = TODAY - dt.timedelta(days=5)

    @dlt.resource(name="pages", table_name="earlier_pages", write_disposition="append")
    def pages(
        day: dlt.sources.incremental[dt.date] = dlt.sources.incremental(
            "day", initial_value=TODAY - dt.timedelta(days=20)
        ),
    ) -> Iterator:
        yield {"domain_id": simulator.domain_ids[0], "day": last_seen, "path": "/"}

    earlier = dlt.pipeline(
        run.pipeline_name,
        pipelines_dir=str(run.pipelines_dir),
        destination=dlt.destinations.duckdb(str(run.database)),
        dataset_name="pirsch",
    )
    earlier.run(dlt.source(lambda: pages, name="pirsch")())
    assert earlier.state["sources"]["pirsch"]["resources"]["pages"]["incremental"]["day"]["last_value"] == last_seen

    simulator.clear_log()
    run.run(resources="pages")
    # from the earlier cursor minus the lookback, not from start_date (today-20)
    assert days_asked(simulator) == [(last_seen + dt.timedelta(days=n)).isoformat() for n in range(-2, 6)]
    assert marks(run, "pages") == {domain: TODAY.isoformat() for domain in simulator.domain_ids}


def test_a_failed_run_leaves_the_watermark_and_the_next_run_asks_the_same_days(
    simulator: PirschSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = loader(simulator, tmp_path, CLICKHAUL_RETRY_MAX_ATTEMPTS="2")
    run.run(resources="pages")
    before = marks(run, "pages")
    assert before == {domain: TODAY.isoformat() for domain in simulator.domain_ids}

    monkeypatch.setenv(TODAY_ENV, (TODAY + dt.timedelta(days=3)).isoformat())
    simulator.faults = Faults(error_rate=1.0, exempt_paths=(r"/token$", r"/domain$"))  # every statistics request
    with pytest.raises(ClickhaulError):
        run.run(resources="pages")
    assert marks(run, "pages") == before

    simulator.faults = Faults()
    simulator.clear_log()
    run.run(resources="pages")
    expected = [(TODAY + dt.timedelta(days=n)).isoformat() for n in range(-2, 4)]
    assert days_asked(simulator) == expected  # the failed run's days, asked again
    assert marks(run, "pages") == {d: (TODAY + dt.timedelta(days=3)).isoformat() for d in simulator.domain_ids}


def test_fixed_ranges_and_airflow_intervals_ask_exactly_their_days_and_move_nothing(
    simulator: PirschSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = loader(simulator, tmp_path)
    run.run(resources="pages")
    before = marks(run, "pages")

    simulator.clear_log()
    run.run(TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=28), resources="pages")
    assert days_asked(simulator) == [(TODAY - dt.timedelta(days=n)).isoformat() for n in (30, 29, 28)]
    assert marks(run, "pages") == before

    # An Airflow DAG run (dlt reads its data interval; here from dlt's own variables) loads exactly that interval.
    monkeypatch.setenv(EXTERNAL_SCHEDULER_ENV, "1")
    monkeypatch.setenv("DLT_INTERVAL_START", "2024-03-10T00:00:00+00:00")
    monkeypatch.setenv("DLT_INTERVAL_END", "2024-03-11T00:00:00+00:00")
    simulator.clear_log()
    run.run(resources="pages")
    assert days_asked(simulator) == ["2024-03-10"]
    assert marks(run, "pages") == before


def test_status_shows_the_watermark_per_table_and_entity(
    simulator: PirschSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = simulator.domain_ids
    run = loader(simulator, tmp_path)
    run.run(resources="pages,visitors")
    monkeypatch.setenv(TODAY_ENV, (TODAY + dt.timedelta(days=1)).isoformat())
    loader(simulator, tmp_path, SOURCES__PIRSCH__DOMAIN_IDS=f'["{first}"]').run(resources="pages")

    status = run_cli(
        "status", "pirsch", "--pipeline", run.pipeline_name, env={"DLT_DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert status.returncode == 0, status.stderr
    assert "complete through (per table and entity" in status.stdout
    assert f"pages     {first} {TODAY + dt.timedelta(days=1)}, {second} {TODAY}" in status.stdout
    assert f"visitors  {TODAY} (2 entities)" in status.stdout
