"""Drop this folder into Airflow's `dags_folder` (or point `dags_folder` at it).

Per source named in CLICKHAUL_AIRFLOW_SOURCES (comma separated; default: pirsch) two DAGs, loading into the dlt
destination named by CLICKHAUL_AIRFLOW_DESTINATION (default duckdb; its credentials the dlt way, e.g.
DESTINATION__POSTGRES__CREDENTIALS): `clickhaul_<source>`, daily, a task group per account; and
`clickhaul_<source>_backfill`, triggered with params start/end, one mapped task per window
(CLICKHAUL_AIRFLOW_CHUNK: day, week or month, default week) and at most CLICKHAUL_AIRFLOW_PARALLEL windows of one
account at once (default 4). CLICKHAUL_AIRFLOW_<SOURCE>_RESOURCES (comma separated) narrows a source's resources.
With CLICKHAUL_AIRFLOW_ENSURE_POOLS=1 parsing creates the pools of the vendor logins.
"""

from __future__ import annotations

import os

from pipelines.airflow import clickhaul_backfill_dag, clickhaul_dag, ensure_pools

_sources = [s.strip() for s in os.environ.get("CLICKHAUL_AIRFLOW_SOURCES", "pirsch").split(",") if s.strip()]
_destination = os.environ.get("CLICKHAUL_AIRFLOW_DESTINATION", "duckdb")
_parallel = int(os.environ.get("CLICKHAUL_AIRFLOW_PARALLEL", "4"))
if os.environ.get("CLICKHAUL_AIRFLOW_ENSURE_POOLS") == "1":
    ensure_pools(_sources, _parallel)
for _source in _sources:
    _resources = [r.strip() for r in os.environ.get(f"CLICKHAUL_AIRFLOW_{_source.upper()}_RESOURCES", "").split(",")]
    _selected = [r for r in _resources if r] or None
    globals()[f"clickhaul_{_source}"] = clickhaul_dag(_source, destination=_destination, resources=_selected)
    globals()[f"clickhaul_{_source}_backfill"] = clickhaul_backfill_dag(
        _source,
        destination=_destination,
        resources=_selected,
        chunk=os.environ.get("CLICKHAUL_AIRFLOW_CHUNK", "week"),
        parallel=_parallel,
    )
