"""A scheduled run leaves out the windows whose pages come back exactly as it loaded them last time, loads the
ones the vendor restated, and never lets a fixed range's load go unnoticed (issue 20: the no-change daily run)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from simulators.pirsch import PirschData, PirschSimulator, SentHit, demo_plan
from sources.common.clock import TODAY_ENV
from sources.common.incremental import WINDOW_DIGESTS
from tests.support import Loader

TODAY = dt.date(2024, 3, 31)
LOOKBACK = 2
TABLE = "pages"  # one row per (domain, day, path): a late hit on a path changes that day's row


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[PirschSimulator]:
    monkeypatch.setenv(TODAY_ENV, TODAY.isoformat())
    data = PirschData(domains=2, days=12, last_day=TODAY, paths=15, sessions_per_day=(20, 30))
    with PirschSimulator(data, token_limit_per_minute=1000) as server:
        yield server  # type: ignore[misc]


def loader(simulator: PirschSimulator, tmp_path: Path) -> Loader:
    settings = {
        **demo_plan(simulator).env,
        "SOURCES__PIRSCH__TIMEZONE": "UTC",
        "SOURCES__PIRSCH__START_DATE": (TODAY - dt.timedelta(days=8)).isoformat(),
        "SOURCES__PIRSCH__LOOKBACK_DAYS": str(LOOKBACK),
    }
    return Loader("pirsch", tmp_path, settings)


def late_hits(simulator: PirschSimulator, day: dt.date, path: str, count: int) -> None:
    """Page views the vendor counts late: its statistics of `day` are restated."""
    domain = simulator.domain_ids[0]
    noon = dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp()
    simulator.traffic.record(
        domain,
        [
            SentHit(noon + n, f"late-{path}-{n}", path, "", "", "en", "XL", "desktop", "Linux", "Firefox", None, ())
            for n in range(count)
        ],
    )


def pages_table(run: Loader) -> set[tuple[object, ...]]:
    return set(run.query(f"select domain_id, day, path, visitors, views from pirsch.{TABLE}"))


def loaded_by_latest(run: Loader) -> int:
    return run.count(TABLE, "_dlt_load_id = (select max(load_id) from pirsch._dlt_loads)")


def digests(run: Loader) -> dict[str, dict[str, str]]:
    pipeline = dlt.attach(run.pipeline_name, pipelines_dir=str(run.pipelines_dir))
    return dict(pipeline.state["sources"]["pirsch"]["resources"][TABLE].get(WINDOW_DIGESTS) or {})


def test_a_second_run_the_same_day_loads_nothing_it_loaded_already(simulator: PirschSimulator, tmp_path: Path) -> None:
    run = loader(simulator, tmp_path)
    first = run.run(resources=TABLE)
    held = pages_table(run)
    assert first.rows[TABLE] == len(held) > 0 and first.unchanged_rows == 0

    again = run.run(resources=TABLE)
    assert again.rows.get(TABLE, 0) == 0 and again.unchanged_rows > 0
    assert "rows read were unchanged since the last run: not loaded again" in again.render()
    assert pages_table(run) == held
    # the windows the next run re-reads (the lookback and today), per domain, and nothing older
    expected = {str(TODAY - dt.timedelta(days=n)) for n in range(LOOKBACK + 1)}
    assert {domain: set(windows) for domain, windows in digests(run).items()} == dict.fromkeys(
        simulator.domain_ids, expected
    )


def a_path_of(run: Loader, domain: str, day: dt.date) -> tuple[str, int]:
    path, views = run.query(
        f"select path, views from pirsch.{TABLE} where domain_id = ? and day = ? order by path limit 1", [domain, day]
    )[0]
    return str(path), int(views)


def test_a_restated_day_is_loaded_and_only_that_day(simulator: PirschSimulator, tmp_path: Path) -> None:
    run = loader(simulator, tmp_path)
    run.run(resources=TABLE)
    domain, restated = simulator.domain_ids[0], TODAY - dt.timedelta(days=1)
    path, views = a_path_of(run, domain, restated)
    late_hits(simulator, restated, path, 3)

    again = run.run(resources=TABLE)
    days_loaded = run.query(
        f"select distinct domain_id, day from pirsch.{TABLE} "
        "where _dlt_load_id = (select max(load_id) from pirsch._dlt_loads)"
    )
    assert days_loaded == [(domain, restated)]
    assert again.rows[TABLE] == loaded_by_latest(run) > 0 and again.unchanged_rows > 0
    assert a_path_of(run, domain, restated) == (path, views + 3)


def test_a_fixed_range_loads_every_window_and_its_load_is_what_the_next_run_compares_with(
    simulator: PirschSimulator, tmp_path: Path
) -> None:
    """Scheduled run: day D as A. The vendor restates D to B, a fixed range loads B. The vendor goes back to A (a
    correction undone): the next scheduled run must load A again, though A is what it loaded itself last time."""
    run = loader(simulator, tmp_path)
    run.run(resources=TABLE)
    as_a = pages_table(run)
    domain, day = simulator.domain_ids[0], TODAY - dt.timedelta(days=1)
    path, views = a_path_of(run, domain, day)

    late_hits(simulator, day, path, 2)
    fixed = run.run(start=day, end=day, resources=TABLE)
    assert fixed.unchanged_rows == 0 and fixed.rows[TABLE] == loaded_by_latest(run) > 0
    assert a_path_of(run, domain, day) == (path, views + 2)

    simulator.traffic.sent.clear()  # the vendor drops the late hits again
    simulator.traffic.record(domain, [])  # (and forgets what it derived from them)
    back = run.run(resources=TABLE)
    assert back.rows.get(TABLE, 0) > 0
    assert pages_table(run) == as_a
