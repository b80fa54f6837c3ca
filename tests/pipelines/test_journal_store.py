"""The journal (backfill progress, last success and error) lives in the destination: a worker with a fresh working
directory continues a backfill another worker started."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import dlt
import pytest

from pipelines.backfill import run_backfill
from pipelines.interrupt import Interrupted
from pipelines.journal import Journal
from pipelines.registry import vendor
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.config import environment
from tests.support import postgres_url

LAST = dt.date(2024, 3, 31)
START = LAST - dt.timedelta(days=5)


def destination(kind: str, tmp_path: Path) -> tuple[Any, str]:
    if kind == "duckdb":
        return dlt.destinations.duckdb(str(tmp_path / "load.duckdb")), "pirsch"
    return dlt.destinations.postgres(postgres_url()), f"t_journal_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_fresh_worker_continues_the_backfill_from_the_destination(kind: str, tmp_path: Path) -> None:
    target, dataset = destination(kind, tmp_path)
    with PirschSimulator(PirschData(days=10, last_day=LAST, sessions_per_day=(20, 40))) as simulator:
        env = {**demo_plan(simulator).env, "SOURCES__PIRSCH__TIMEZONE": "UTC"}

        def backfill(workdir: str, on_window: Any = None) -> Any:
            return run_backfill(vendor("pirsch"), start=START, end=LAST, resources="visitors", dataset=dataset,
                                pipelines_dir=str(tmp_path / workdir), progress="off", destination_config=target,
                                on_window=on_window)  # fmt: skip

        def stop_after_two(window: str, seen: list[str] = []) -> None:  # noqa: B006 - a counter for one test
            seen.append(window)
            if len(seen) == 2:
                raise KeyboardInterrupt

        try:
            with environment(env):
                with pytest.raises(Interrupted):
                    backfill("first_worker", stop_after_two)
                simulator.clear_log()
                summary = backfill("second_worker")  # nothing local: the progress comes from the destination
            assert (summary.skipped, summary.loaded, summary.interrupted) == (2, 4, False)
            asked = {request.query["from"] for request in simulator.requests if "/statistics/" in request.path}
            assert asked == {(START + dt.timedelta(days=i)).isoformat() for i in range(2, 6)}
            pipeline = dlt.pipeline("clickhaul_pirsch", pipelines_dir=str(tmp_path / "third"), destination=target,
                                    dataset_name=dataset)  # fmt: skip
            stored = Journal.of(pipeline).data
            assert stored["last_success"]["pipeline"] == "clickhaul_pirsch"
            (entry,) = stored["backfills"].values()
            assert len(entry["done"]) == 6 and entry["finished"]
            with pipeline.sql_client() as client:
                rows = client.execute_sql(f"select count(*) from {client.make_qualified_table_name('visitors')}")
            assert rows == [(6 * 2,)]
        finally:
            if kind == "postgres":
                import psycopg2

                connection = psycopg2.connect(postgres_url())
                with connection.cursor() as cursor:
                    cursor.execute(f'drop schema if exists "{dataset}" cascade')
                    cursor.execute(f'drop schema if exists "{dataset}_staging" cascade')
                connection.commit()
                connection.close()


def test_a_window_the_cache_holds_but_the_destination_missed_is_not_loaded_again(tmp_path: Path) -> None:
    """A process killed between the journal's local write and its write to the destination: the destination's copy
    is one window behind, the cache is not (it is written only after the window's load)."""
    target, dataset = destination("duckdb", tmp_path)
    with PirschSimulator(PirschData(days=10, last_day=LAST, sessions_per_day=(20, 40))) as simulator:
        env = {**demo_plan(simulator).env, "SOURCES__PIRSCH__TIMEZONE": "UTC"}

        def backfill(on_window: Any = None) -> Any:
            return run_backfill(vendor("pirsch"), start=START, end=LAST, resources="visitors", dataset=dataset,
                                pipelines_dir=str(tmp_path / "worker"), progress="off", destination_config=target,
                                on_window=on_window)  # fmt: skip

        def stop_after_two(window: str, seen: list[str] = []) -> None:  # noqa: B006 - a counter for one test
            seen.append(window)
            if len(seen) == 2:
                raise KeyboardInterrupt

        with environment(env):
            with pytest.raises(Interrupted):
                backfill(stop_after_two)
            pipeline = dlt.pipeline("clickhaul_pirsch", pipelines_dir=str(tmp_path / "worker"), destination=target,
                                    dataset_name=dataset)  # fmt: skip
            with pipeline.sql_client() as client:
                table = client.make_qualified_table_name("_dlt_clickhaul_journal")
                second = f"%|{(START + dt.timedelta(days=1)).isoformat()}%"
                client.execute_sql(f"delete from {table} where entry like %s", second)
                document = client.execute_sql(f"select value from {table} where entry = 'journal'")[0][0]
                behind = json.loads(document)
                for entry in behind["backfills"].values():
                    entry["done"] = entry["done"][:1]
                client.execute_sql(f"update {table} set value = %s where entry = 'journal'", json.dumps(behind))
            simulator.clear_log()
            summary = backfill()
        assert (summary.skipped, summary.loaded) == (2, 4)
        asked = {request.query["from"] for request in simulator.requests if "/statistics/" in request.path}
        assert asked == {(START + dt.timedelta(days=i)).isoformat() for i in range(2, 6)}
