"""What one measurement is and how the three ways of loading a vendor are timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import dlt
import duckdb


@dataclass
class Measure:
    rows: int
    seconds: float
    requests: int = 0
    runs: list[float] = field(default_factory=list)  # seconds of every repeat the figure is the median of

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


def median_of_runs(load: Callable[[], Measure], budget_seconds: float = 10.0, max_runs: int = 5) -> Measure:
    """A short load is repeated (until `max_runs` or `budget_seconds`, odd counts only) and its median run reported:
    one run of a second swings by a third on a shared 2-core machine, which decides a 50 % goal either way. Long
    loads (the 1M-session one, `rest_api` at 50 ms latency) stay single runs."""
    measures = [load()]
    while len(measures) < max_runs and sum(m.seconds for m in measures) * 1.5 < budget_seconds:
        measures += [load(), load()]
    middle = sorted(measures, key=lambda m: m.seconds)[len(measures) // 2]
    return replace(middle, runs=[round(m.seconds, 3) for m in measures])


def median_of_pairs(
    baseline: Callable[[], Measure], ours: Callable[[], Measure], budget_seconds: float = 40.0, max_pairs: int = 3
) -> tuple[Measure, Measure, float]:
    """Both loads run in turn (baseline, ours, baseline, ours...) and compared pair by pair: the machine's speed
    drifts by a fifth within minutes on shared cores, which a ratio of two runs minutes apart takes for the
    client's. The median run of each, and the median of the pairs' time ratios (baseline / ours)."""
    pairs = [(baseline(), ours())]
    while len(pairs) < max_pairs and sum(a.seconds + b.seconds for a, b in pairs) * 1.5 < budget_seconds:
        pairs += [(baseline(), ours()), (baseline(), ours())]
    ratios = sorted(a.seconds / b.seconds for a, b in pairs if b.seconds > 0)

    def middle(measures: list[Measure]) -> Measure:
        return replace(
            sorted(measures, key=lambda m: m.seconds)[len(measures) // 2], runs=[round(m.seconds, 3) for m in measures]
        )

    return middle([a for a, _ in pairs]), middle([b for _, b in pairs]), ratios[len(ratios) // 2]


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
