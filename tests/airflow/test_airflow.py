"""The Airflow DAGs parse and one runs end to end, in a virtual environment with Apache Airflow.

Airflow has its own pinned dependency set, so it lives in `.venv-airflow` (created by `.ci/run`), not in the
test environment. Outside CI a missing Airflow environment skips this test, visibly; with CI=true it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, required

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out

AIRFLOW_PYTHON = Path(os.environ.get("CLICKHAUL_AIRFLOW_PYTHON", ROOT / ".venv-airflow" / "bin" / "python"))


def airflow_pythonpath() -> str:
    """This checkout first (the Airflow environment may have another one installed), then any extra path."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("CLICKHAUL_AIRFLOW_PYTHONPATH", "")) if p)


def test_dags_parse_and_one_runs_end_to_end(tmp_path: Path) -> None:
    if not AIRFLOW_PYTHON.exists():
        required(f"no Airflow environment at {AIRFLOW_PYTHON} (create it as .ci/run does)")
    completed = subprocess.run(
        [str(AIRFLOW_PYTHON), str(ROOT / "tests" / "airflow" / "airflow_check.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": airflow_pythonpath()},
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["import_errors"] == {}
    assert "clickhaul_pirsch" in result["dags"]
    # one task per resource (transformers ride with their parent), named after the pipeline
    assert any(task.endswith("visitors") for task in result["task_ids"])
    assert any(task.endswith("pages") for task in result["task_ids"])
    assert result["state"].endswith("success")
    # the DAG run loaded exactly its data interval: one day, both domains, the simulator's figures
    assert [day for day, _, _ in result["visitor_days"]] == [result["expected_day"]]
    assert result["visitor_days"][0][1] == 2
    assert result["visitor_days"][0][2] == result["truth_visitors"]
    assert result["page_days"] == [result["expected_day"]]
