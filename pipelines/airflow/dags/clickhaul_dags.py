"""Drop this folder into Airflow's `dags_folder` (or point `dags_folder` at it).

One DAG per source named in CLICKHAUL_AIRFLOW_SOURCES (comma separated; default: pirsch), loading into the dlt
destination named by CLICKHAUL_AIRFLOW_DESTINATION (default duckdb; its credentials the dlt way, e.g.
DESTINATION__POSTGRES__CREDENTIALS).
"""

from __future__ import annotations

import os

from pipelines.airflow import clickhaul_dag

for _source in [s.strip() for s in os.environ.get("CLICKHAUL_AIRFLOW_SOURCES", "pirsch").split(",") if s.strip()]:
    globals()[f"clickhaul_{_source}"] = clickhaul_dag(
        _source, destination=os.environ.get("CLICKHAUL_AIRFLOW_DESTINATION", "duckdb")
    )
