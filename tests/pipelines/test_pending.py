"""A load that fails part-way leaves a pending package; the next run must not silently skip new data."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dlt
import pytest

from pipelines.registry import vendor
from pipelines.runner import build_source
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.errors import ClickhaulError
from tests.support import Loader, environment

LAST = dt.date(2024, 3, 31)


def crash_before_load(loader: Loader, start: dt.date, end: dt.date, *, mid_commit: bool = False) -> None:
    """A run killed after normalize, before load: its package stays pending in the pipeline folder.
    With mid_commit, killed inside normalize's commit: the package is normalized, its extracted copy not yet gone."""
    pipeline = dlt.pipeline(
        pipeline_name=loader.pipeline_name,
        pipelines_dir=str(loader.pipelines_dir),
        destination=dlt.destinations.duckdb(str(loader.database)),
        dataset_name="pirsch",
    )
    with environment(loader.env):
        source = build_source(vendor("pirsch"), start_date=start, end_date=end).with_resources("visitors")
        pipeline.extract(source)
        (load_id,) = pipeline.list_extracted_load_packages()
        extracted = Path(pipeline.working_dir, "normalize", "extracted", load_id)
        shutil.copytree(extracted, loader.pipelines_dir.parent / "extracted-copy")
        pipeline.normalize()
        if mid_commit:
            shutil.copytree(loader.pipelines_dir.parent / "extracted-copy", extracted)
    assert pipeline.list_normalized_load_packages()


def test_a_failed_load_then_a_new_run_loads_both(tmp_path: Path) -> None:
    with PirschSimulator(PirschData(days=20, last_day=LAST, sessions_per_day=(30, 40), paths=20)) as simulator:
        loader = Loader("pirsch", tmp_path, demo_plan(simulator).env)
        loader.run(LAST - dt.timedelta(days=9), LAST - dt.timedelta(days=9), resources="visitors")
        crash_before_load(loader, LAST - dt.timedelta(days=5), LAST - dt.timedelta(days=4))
        with pytest.raises(ClickhaulError, match="pending load package"):
            loader.run(LAST - dt.timedelta(days=1), LAST, resources="visitors", on_pending="fail")
        loader.run(LAST - dt.timedelta(days=1), LAST, resources="visitors")  # default: load the pending one first
        days = [d for (d,) in loader.query("select distinct day from pirsch.visitors order by 1")]
        assert days == [LAST - dt.timedelta(days=n) for n in (9, 5, 4, 1, 0)]
        assert loader.query(
            "select count(*) from (select domain_id, day from pirsch.visitors group by all having count(*) > 1)"
        ) == [(0,)]


def test_a_run_killed_inside_normalize_commit_then_a_new_run_loads_both(tmp_path: Path) -> None:
    with PirschSimulator(PirschData(days=20, last_day=LAST, sessions_per_day=(30, 40), paths=20)) as simulator:
        loader = Loader("pirsch", tmp_path, demo_plan(simulator).env)
        crash_before_load(loader, LAST - dt.timedelta(days=5), LAST - dt.timedelta(days=4), mid_commit=True)
        with pytest.raises(ClickhaulError, match="has 1 pending load package"):
            loader.run(LAST - dt.timedelta(days=1), LAST, resources="visitors", on_pending="fail")
        loader.run(LAST - dt.timedelta(days=1), LAST, resources="visitors")
        days = [d for (d,) in loader.query("select distinct day from pirsch.visitors order by 1")]
        assert days == [LAST - dt.timedelta(days=n) for n in (5, 4, 1, 0)]
        assert loader.query(
            "select count(*) from (select domain_id, day from pirsch.visitors group by all having count(*) > 1)"
        ) == [(0,)]


def test_a_run_killed_while_dlt_writes_a_schema_does_not_block_later_runs(tmp_path: Path) -> None:
    """dlt saves a file through a 16-hex-digit temporary beside it; killed before the rename, the temporary stayed
    in schemas/ and every later run failed with "`64d817c90c36b326` is an invalid schema/source name"."""
    with PirschSimulator(PirschData(days=20, last_day=LAST, sessions_per_day=(30, 40), paths=20)) as simulator:
        loader = Loader("pirsch", tmp_path, demo_plan(simulator).env)
        loader.run(LAST - dt.timedelta(days=3), LAST - dt.timedelta(days=3), resources="visitors")
        working_dir = loader.pipelines_dir / loader.pipeline_name
        schemas = working_dir / "schemas"
        (schemas / "64d817c90c36b326").write_text((schemas / "pirsch.schema.json").read_text()[:100])
        (working_dir / "0123456789abcdef").write_text("{")  # a torn state.json temporary
        loader.run(LAST - dt.timedelta(days=1), LAST, resources="visitors")
        assert sorted(p.name for p in schemas.iterdir()) == ["pirsch.schema.json"]
        assert not (working_dir / "0123456789abcdef").exists()
        days = [d for (d,) in loader.query("select distinct day from pirsch.visitors order by 1")]
        assert days == [LAST - dt.timedelta(days=n) for n in (3, 1, 0)]
