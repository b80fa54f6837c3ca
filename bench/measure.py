"""What one measurement is and how the three ways of loading a vendor are timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import dlt
import duckdb


@dataclass
class Measure:
    rows: int
    seconds: float
    requests: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


def timed(work: Callable[[], tuple[int, int]]) -> Measure:
    """`work` returns (rows, requests)."""
    began = time.monotonic()
    rows, requests = work()
    return Measure(rows, time.monotonic() - began, requests)


def count_rows(database: str, table: str) -> int:
    with duckdb.connect(database, read_only=True) as connection:
        return int(connection.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]


def run_dlt(source: Any, database: str, pipelines_dir: str, dataset: str) -> None:
    """dlt's defaults: the same pipeline a user of `rest_api` would write."""
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{dataset}",
        pipelines_dir=pipelines_dir,
        destination=dlt.destinations.duckdb(database),
        dataset_name=dataset,
    )
    pipeline.run(source)
