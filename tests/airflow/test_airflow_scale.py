"""Many accounts on real Airflow: the LocalExecutor runs window tasks as parallel processes, its metadata in
PostgreSQL, the destination PostgreSQL. 3 Pirsch accounts and 2 Webtrekk accounts sharing one login backfill 30
days each; one task process is killed with SIGKILL and retried; a fresh worker directory continues from the
destination's state. The driver, airflow_scale.py, runs in the Airflow environment."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow.test_airflow import AIRFLOW_PYTHON, airflow_pythonpath
from tests.support import ROOT, postgres_url, required

pytestmark = pytest.mark.slow

PARALLEL = 4


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """A metadata database for Airflow and a destination database, both new, dropped afterwards."""
    import psycopg2

    url = postgres_url()
    names = [f"t_airflow_{uuid.uuid4().hex[:8]}", f"t_scale_{uuid.uuid4().hex[:8]}"]
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        for name in names:
            cursor.execute(f'create database "{name}"')
    base = url.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg2://')}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def test_many_accounts_backfill_on_airflow_exactly(tmp_path: Path, databases: tuple[str, str]) -> None:
    if not AIRFLOW_PYTHON.exists():
        required(f"no Airflow environment at {AIRFLOW_PYTHON} (create it as .ci/run does)")
    metadata, destination = databases
    path = airflow_pythonpath()
    completed = subprocess.run(
        [str(AIRFLOW_PYTHON), str(ROOT / "tests" / "airflow" / "airflow_scale.py"), str(tmp_path), metadata,
         destination, str(PARALLEL)],
        capture_output=True, text=True, timeout=1500, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, (
        completed.stderr[-4000:] + (tmp_path / "scheduler.log").read_text()[-4000:]
    )
    result = json.loads(lines[-1][len("RESULT ") :])
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("truth")}, indent=1))
    assert result["states"] == {"clickhaul_pirsch_backfill": "success", "clickhaul_webtrekk_backfill": "success"}
    # the two Webtrekk accounts share one login, so one pool of one slot; each Pirsch client has its own
    assert sorted(result["pools"].values()) == [1, PARALLEL, PARALLEL, PARALLEL]

    # the killed task was retried by Airflow and succeeded
    assert result["killed"], "no Webtrekk window task was seen running to kill"
    retried = [key for key, (state, tries) in result["tries"].items() if tries > 1 and "webtrekk" in key]
    assert retried and all(result["tries"][key][0] == "success" for key in retried)
    mapped = [key for key in result["tries"] if key.endswith("]") and ".load[" in key and not key.endswith("[-1]")]
    assert len(mapped) == 5 * 5  # 5 accounts x 5 weekly windows of 30 days

    # no request refused by any limit
    assert result["webtrekk_refused"] == 0
    assert result["pirsch_refused"] == dict.fromkeys(("client_a", "client_b", "client_c"), 0)

    # a fresh worker directory: every window is done in the destination's journal, nothing is asked again
    assert result["again_state"] == "success"
    assert result["again_loads"] == 0
    assert result["again_requests"] == dict.fromkeys(("client_a", "client_b", "client_c"), 0)

    # every table equals the simulators' truth
    import psycopg2

    connection = psycopg2.connect(destination)
    try:
        with connection.cursor() as cursor:
            for account, truth in result["pirsch_truth"].items():
                cursor.execute("select domain_id, day, visitors from pirsch.visitors where account = %s", [account])
                assert sorted([d, str(day), v] for d, day, v in cursor.fetchall()) == truth, account
            for account in ("shop", "staging"):
                cursor.execute(
                    "select day, pages from webtrekk.export_content_categories_time where account = %s", [account]
                )
                assert sorted([str(day), page] for day, page in cursor.fetchall()) == result["webtrekk_truth"]
    finally:
        connection.close()
