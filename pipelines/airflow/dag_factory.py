"""A DAG per clickhaul source, built with dlt's `PipelineTasksGroup`.

Each DAG run loads its Airflow data interval (dlt's `allow_external_schedulers`), so a daily schedule loads the
previous day and `airflow dags backfill` / catch-up loads history, interval by interval, with Airflow's retries.
The source is decomposed so each resource (with its transformers) is a task of its own.

Sources define no requests (see `sources.common.lazy`): parsing this DAG never calls a vendor.

Each of the vendor's accounts (`sources.common.accounts`) is a task group of its own with its own pipeline.
`clickhaul_backfill_dag` loads a range for every account as dynamically mapped tasks, one per window, through an
Airflow pool per vendor login (`tasks.pool_of`).
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

    from pipelines.accounts import accounts_to_run
    from pipelines.registry import vendor
    from pipelines.runner import account_scope, build_source, parse_resources, prepare_loads
    from sources.common.accounts import account_pipeline_name

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
        previous = None
        for account in accounts_to_run(spec.name):
            with account_scope(account):  # the account's settings, resolved while its source is built
                account_name = account_pipeline_name(name)
                tasks = PipelineTasksGroup(
                    account_name,
                    use_data_folder=False,
                    wipe_local_data=True,
                    use_task_logger=True,
                    retry_policy=DEFAULT_RETRY_BACKOFF,  # the load step; HTTP retries live in clickhaul's client
                )
                pipeline = dlt.pipeline(
                    pipeline_name=account_name, destination=destination, dataset_name=dataset or spec.name
                )
                # dlt clips each run's data interval to the source's start date: make that the DAG's own start.
                kwargs = {"start_date": dt.date(first.year, first.month, first.day), **(source_kwargs or {})}
                data = build_source(spec, preflight=False, **kwargs)
                selected = parse_resources(spec, resources)
                if selected:
                    data = data.with_resources(*selected)
                # Airflow retries a failed resource task (default_args); the first failure must not skip the others.
                tasks.add_run(pipeline, data, decompose=decompose, trigger_rule="all_done", provide_context=True)
            if previous is not None:  # accounts one after another: their merges share the dataset's staging tables
                previous >> tasks
            previous = tasks
    return dag


def clickhaul_backfill_dag(
    source: str,
    *,
    dag_id: str | None = None,
    destination: str = "duckdb",
    dataset: str | None = None,
    accounts: list[str] | None = None,
    chunk: str = "week",
    parallel: int = 4,
    resources: list[str] | None = None,
    retries: int = 3,
    retry_delay: dt.timedelta = dt.timedelta(seconds=10),
) -> DAG:
    """A manually triggered DAG (params `start`, `end`: YYYY-MM-DD) that backfills every account of `source`.

    Per account a task group: `windows` asks the destination's journal which windows are still to load, `load`
    is mapped over them (dynamic task mapping), `cleanup` drops the windows' staging datasets. Each account's
    `load` tasks run in the pool of its vendor login (`tasks.pool_of`: Webtrekk one slot per login, so two
    workers never together exceed what one login may do), at most `parallel` windows of one account at once on a
    warehouse that takes concurrent loads, one at a time on DuckDB. Create the pools with `ensure_pools`."""
    from airflow.models.param import Param
    from airflow.operators.python import PythonOperator
    from airflow.utils.task_group import TaskGroup

    from pipelines.accounts import accounts_to_run
    from pipelines.registry import vendor

    from .tasks import SERIAL_DESTINATIONS, drop_window_staging, load_window, plan_windows, pool_of

    spec = vendor(source)
    serial = destination in SERIAL_DESTINATIONS
    dag = DAG(
        dag_id=dag_id or f"clickhaul_{spec.name}_backfill",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # one backfill at a time: two runs would load the same windows at once
        max_active_tasks=1 if serial else 64,  # DuckDB has one writer
        default_args={"owner": "clickhaul", "retries": retries, "retry_delay": retry_delay},
        params={"start": Param(type="string"), "end": Param(type="string")},
        tags=["clickhaul", spec.name, "backfill"],
        doc_md=f"clickhaul backfill of every {spec.name} account: trigger with start and end (YYYY-MM-DD).",
    )
    common = {"destination": destination, "dataset": dataset, "resources": resources}
    with dag:
        for account in accounts or accounts_to_run(spec.name):
            pool, _ = pool_of(spec.name, account, parallel)
            with TaskGroup(group_id=f"account_{account}"):
                plan = PythonOperator(
                    task_id="windows",
                    python_callable=plan_windows,
                    op_kwargs={
                        "source": spec.name,
                        "account": account,
                        "start": "{{ params.start }}",
                        "end": "{{ params.end }}",
                        "chunk": chunk,
                        **common,
                    },
                )
                load = PythonOperator.partial(
                    task_id="load",
                    python_callable=load_window,
                    pool=pool,
                    max_active_tis_per_dagrun=1 if serial else parallel,
                ).expand(op_kwargs=plan.output)
                cleanup = PythonOperator(
                    task_id="cleanup",
                    python_callable=drop_window_staging,
                    op_kwargs={"source": spec.name, "account": account, "destination": destination, "dataset": dataset},
                    trigger_rule="all_done",
                )
                plan >> load >> cleanup
    return dag


def ensure_pools(sources: list[str], parallel: int = 4) -> dict[str, int]:
    """Create or resize the pools of every account's login (idempotent; writes only what differs)."""
    from airflow.models.pool import Pool

    from pipelines.accounts import accounts_to_run

    from .tasks import pool_of

    wanted: dict[str, int] = {}
    for source in sources:
        for account in accounts_to_run(source):
            name, slots = pool_of(source, account, parallel)
            wanted[name] = slots
    for name, slots in wanted.items():
        existing = Pool.get_pool(name)
        if existing is None or existing.slots != slots:
            Pool.create_or_update_pool(name, slots, f"clickhaul: one vendor login ({slots} task(s) at once)", False)
    return wanted
