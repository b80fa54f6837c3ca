"""A DAG per clickhaul source, built with dlt's `PipelineTasksGroup`.

Each DAG run loads its Airflow data interval (dlt's `allow_external_schedulers`), so a daily schedule loads the
previous day and `airflow dags backfill` / catch-up loads history, interval by interval, with Airflow's retries.
The source is decomposed so each resource (with its transformers) is a task of its own.

Sources define no requests (see `sources.common.lazy`): parsing this DAG never calls a vendor.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

import pendulum

from sources.common.incremental import EXTERNAL_SCHEDULER_ENV

os.environ[EXTERNAL_SCHEDULER_ENV] = "1"  # before any source is defined in this process

from airflow import DAG
from dlt.helpers.airflow_helper import DEFAULT_RETRY_BACKOFF, PipelineTasksGroup

Decompose = Literal["serialize", "parallel", "parallel-isolated", "none"]


def clickhaul_dag(
    source: str,
    *,
    dag_id: str | None = None,
    schedule: str | None = "@daily",
    start_date: dt.datetime | None = None,
    catchup: bool = False,
    destination: str = "duckdb",
    dataset: str | None = None,
    pipeline_name: str | None = None,
    resources: list[str] | None = None,
    decompose: Decompose = "serialize",
    retries: int = 2,
    retry_delay: dt.timedelta = dt.timedelta(minutes=5),
    source_kwargs: dict[str, Any] | None = None,
) -> DAG:
    """`decompose="serialize"` runs the resource tasks one after another (required for DuckDB, which has one
    writer); warehouses can take `"parallel"`. Credentials come from the workers' environment or `.dlt/`."""
    import dlt

    from pipelines.registry import vendor
    from pipelines.runner import build_source, parse_resources, prepare_loads

    spec = vendor(source)
    name = pipeline_name or f"clickhaul_{spec.name}"
    first = start_date or pendulum.datetime(2024, 1, 1, tz="UTC")
    dag = DAG(
        dag_id=dag_id or name,
        schedule=schedule,
        start_date=first,
        catchup=catchup,
        max_active_runs=1,  # one writer per pipeline state
        default_args={"owner": "clickhaul", "retries": retries, "retry_delay": retry_delay},
        tags=["clickhaul", spec.name],
        doc_md=f"clickhaul: {spec.summary or spec.name}. Each run loads its data interval.",
    )
    prepare_loads()
    with dag:
        tasks = PipelineTasksGroup(
            name,
            use_data_folder=False,
            wipe_local_data=True,
            use_task_logger=True,
            retry_policy=DEFAULT_RETRY_BACKOFF,  # the load step; HTTP retries live in clickhaul's client
        )
        pipeline = dlt.pipeline(pipeline_name=name, destination=destination, dataset_name=dataset or spec.name)
        # dlt clips each run's data interval to the source's start date: make that the DAG's own start.
        kwargs = {"start_date": dt.date(first.year, first.month, first.day), **(source_kwargs or {})}
        data = build_source(spec, preflight=False, **kwargs)
        selected = parse_resources(spec, resources)
        if selected:
            data = data.with_resources(*selected)
        # Airflow retries a failed resource task (default_args); the first failure must not skip the others.
        tasks.add_run(pipeline, data, decompose=decompose, trigger_rule="all_done", provide_context=True)
    return dag
