"""Run inside a virtual environment that has Apache Airflow (see test_airflow.py): parse the DAGs with a DagBag,
then run the Pirsch DAG end to end with `dag.test()` against the simulator into DuckDB. Prints one JSON line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

workdir = Path(sys.argv[1])
os.environ["AIRFLOW_HOME"] = str(workdir / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["CLICKHAUL_AIRFLOW_SOURCES"] = "pirsch"
os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = str(workdir / "airflow.duckdb")
os.environ["DLT_DATA_DIR"] = str(workdir / "dlt")

from simulators.pirsch import PirschData, PirschSimulator, demo_plan  # noqa: E402

DAY = dt.date(2024, 3, 20)
simulator = PirschSimulator(PirschData(days=30, last_day=dt.date(2024, 3, 31), sessions_per_day=(40, 60))).start()
os.environ.update(demo_plan(simulator).env)
os.environ["SOURCES__PIRSCH__TIMEZONE"] = "UTC"

subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)

import duckdb  # noqa: E402
import pendulum  # noqa: E402
from airflow.models import DagBag  # noqa: E402

dags = Path(__file__).resolve().parents[2] / "pipelines" / "airflow" / "dags"
bag = DagBag(dag_folder=str(dags), include_examples=False)
result: dict = {"import_errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids)}
dag = bag.get_dag("clickhaul_pirsch")
result["task_ids"] = sorted(dag.task_ids) if dag else []
requests_before = simulator.count("/statistics/")
run = dag.test(execution_date=pendulum.datetime(DAY.year, DAY.month, DAY.day, tz="UTC"))
result["state"] = str(run.state)
expected = pendulum.instance(run.data_interval_start).date()
result["expected_day"] = str(expected)
result["requests"] = simulator.count("/statistics/") - requests_before
with duckdb.connect(str(workdir / "airflow.duckdb"), read_only=True) as connection:
    result["visitor_days"] = [
        [str(day), count, visitors]
        for day, count, visitors in connection.execute(
            "select day, count(*), sum(visitors) from pirsch.visitors group by 1 order by 1"
        ).fetchall()
    ]
    result["page_days"] = [str(d) for (d,) in connection.execute("select distinct day from pirsch.pages").fetchall()]
truth = sum(simulator.truth("visitor", domain, expected, tz="UTC")[0]["visitors"] for domain in simulator.domain_ids)
result["truth_visitors"] = truth
simulator.stop()
print("RESULT " + json.dumps(result))
