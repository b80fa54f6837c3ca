"""Run inside the Airflow environment (see test_airflow_scale.py): a real scheduler with the LocalExecutor on a
PostgreSQL metadata database backfills 3 Pirsch accounts and 2 Webtrekk accounts (one login) into PostgreSQL,
kills one task process with SIGKILL, then runs the Pirsch backfill again from a fresh worker directory. Prints one
JSON line with what the test checks.

argv: workdir, metadata database URL, destination database URL, parallel tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

workdir, metadata_url, destination_url, parallel = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ROOT = Path(__file__).resolve().parents[2]
LAST = dt.date(2024, 3, 31)
FIRST = LAST - dt.timedelta(days=29)  # 30 days per account
WEBTREKK_LIMITS = [(5, 2.0), (30, 15.0)]  # the documented 5 / 10 s and 120 / 600 s, shaped alike, scaled down
PIRSCH = ("client_a", "client_b", "client_c")
WEBTREKK = ("shop", "staging")

os.environ.update(
    {
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "pipelines" / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the daily DAGs stay paused: only backfills run
        "AIRFLOW__CORE__PARALLELISM": str(parallel),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
        "CLICKHAUL_AIRFLOW_SOURCES": "pirsch,webtrekk",
        "CLICKHAUL_AIRFLOW_DESTINATION": "postgres",
        "CLICKHAUL_AIRFLOW_PARALLEL": str(parallel),
        "CLICKHAUL_AIRFLOW_CHUNK": "week",
        "DESTINATION__POSTGRES__CREDENTIALS": destination_url,
        "DLT_DATA_DIR": str(workdir / "dlt"),
        "CLICKHAUL_RATE_LIMIT_MEMORY": "on",
        "RUNTIME__LOG_LEVEL": "WARNING",
    }
)

from simulators.pirsch import PirschData, PirschSimulator  # noqa: E402
from simulators.webtrekk import ENDPOINT, WebtrekkData, WebtrekkSimulator  # noqa: E402

pirsch = {
    name: PirschSimulator(
        PirschData(days=40, last_day=LAST, sessions_per_day=(15, 30), seed=200 + index),
        clients={f"id-{name}": f"secret-{name}"},
    ).start()
    for index, name in enumerate(PIRSCH)
}
webtrekk_data = WebtrekkData(days=40, last_day=LAST)
webtrekk = WebtrekkSimulator(webtrekk_data, rate_limits=WEBTREKK_LIMITS).start()
for name, simulator in pirsch.items():
    prefix = f"SOURCES__PIRSCH__ACCOUNTS__{name.upper()}__"
    os.environ |= {prefix + "BASE_URL": simulator.url, prefix + "CLIENT_ID": f"id-{name}",
                   prefix + "CLIENT_SECRET": f"secret-{name}"}  # fmt: skip
os.environ |= {"SOURCES__PIRSCH__TIMEZONE": "UTC", "CLICKHAUL_AIRFLOW_PIRSCH_RESOURCES": "domains,visitors,pages"}
customer_ids = [account["customerId"] for account in webtrekk_data.accounts()]
os.environ |= {
    "SOURCES__WEBTREKK__BASE_URL": webtrekk.url + ENDPOINT,
    "SOURCES__WEBTREKK__LOGIN": webtrekk_data.login,
    "SOURCES__WEBTREKK__PASSWORD": webtrekk_data.password,
    "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([list(pair) for pair in WEBTREKK_LIMITS]),
    "SOURCES__WEBTREKK__EXPORT_TYPES": '["content_categories_time"]',
    "CLICKHAUL_AIRFLOW_WEBTREKK_RESOURCES": "export_content_categories_time",
    **{
        f"SOURCES__WEBTREKK__ACCOUNTS__{name.upper()}__CUSTOMER_ID": cid
        for name, cid in zip(WEBTREKK, customer_ids, strict=True)
    },
}

airflow = str(Path(sys.executable).parent / "airflow")
began = time.monotonic()
subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True)
for dag_id in ("clickhaul_pirsch_backfill", "clickhaul_webtrekk_backfill"):
    subprocess.run([airflow, "dags", "unpause", dag_id], check=True, capture_output=True)
from pipelines.airflow import ensure_pools  # noqa: E402

pools = ensure_pools(["pirsch", "webtrekk"], parallel)
result: dict = {"pools": pools, "setup_seconds": round(time.monotonic() - began, 1)}

log = open(workdir / "scheduler.log", "w")  # noqa: SIM115 - open for the scheduler's whole life
stopping = threading.Event()
schedulers: list[subprocess.Popen[bytes]] = []


def supervise_scheduler() -> None:
    """The scheduler, restarted when it exits, as a deployment's supervisor (systemd, Kubernetes) does. Airflow's
    scheduler can die at its start on its own: a forked DagFileProcessorManager closing the metadata connection it
    inherited ("server closed the connection unexpectedly"), seen once in CI; its runs go on after a restart."""
    while not stopping.is_set():
        schedulers.append(
            subprocess.Popen([airflow, "scheduler"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
        while schedulers[-1].poll() is None and not stopping.is_set():
            time.sleep(0.5)
        if not stopping.is_set():
            result["scheduler_restarts"] = result.get("scheduler_restarts", 0) + 1
            time.sleep(2)


supervisor = threading.Thread(target=supervise_scheduler, daemon=True)
supervisor.start()

killed: dict = {}


def kill_one_task() -> None:
    """SIGKILL the first Webtrekk window task's process two seconds into its work (mid-window)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not killed:
        listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            if "task runner" in line and "clickhaul_webtrekk_backfill" in line and ".load" in line:
                pid = int(line.split()[0])
                time.sleep(2.0)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.update(pid=pid, line=line.strip())
                return
        time.sleep(0.2)


def trigger(dag_id: str, run_id: str) -> None:
    conf = json.dumps({"start": FIRST.isoformat(), "end": LAST.isoformat()})
    subprocess.run([airflow, "dags", "trigger", dag_id, "--run-id", run_id, "--conf", conf], check=True,
                   capture_output=True)  # fmt: skip


def wait(dag_id: str, run_id: str, timeout: float = 900) -> str:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with create_session() as session:
            run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
            state = str(run.state) if run else "none"
        if state in ("success", "failed"):
            return state
        time.sleep(1)
    return "timeout"


try:
    watcher = threading.Thread(target=kill_one_task, daemon=True)
    watcher.start()
    started = time.monotonic()
    trigger("clickhaul_pirsch_backfill", "first")
    trigger("clickhaul_webtrekk_backfill", "first")
    result["states"] = {dag: wait(dag, "first") for dag in ("clickhaul_pirsch_backfill", "clickhaul_webtrekk_backfill")}
    result["minutes"] = round((time.monotonic() - started) / 60, 2)
    result["killed"] = killed

    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        instances = session.query(TaskInstance).filter(TaskInstance.run_id == "first").all()
        result["tries"] = {
            f"{ti.dag_id}.{ti.task_id}[{ti.map_index}]": [str(ti.state), ti.try_number] for ti in instances
        }

    # a fresh worker directory: nothing local survives, the destination's journal says what is done
    import shutil

    shutil.rmtree(workdir / "dlt", ignore_errors=True)
    asked_before = {name: simulator.count("/statistics/") for name, simulator in pirsch.items()}
    trigger("clickhaul_pirsch_backfill", "again")
    result["again_state"] = wait("clickhaul_pirsch_backfill", "again")
    result["again_requests"] = {name: simulator.count("/statistics/") - asked_before[name]
                                for name, simulator in pirsch.items()}  # fmt: skip
    with create_session() as session:
        result["again_loads"] = (
            session.query(TaskInstance)
            .filter(TaskInstance.run_id == "again", TaskInstance.task_id.like("%.load"), TaskInstance.map_index >= 0)
            .count()
        )
finally:
    stopping.set()
    supervisor.join(timeout=5)
    for scheduler in schedulers:
        if scheduler.poll() is not None:
            continue
        try:
            os.killpg(scheduler.pid, signal.SIGTERM)
            scheduler.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)

# the truth, and what the vendors refused
days = [FIRST + dt.timedelta(days=i) for i in range(30)]
result["pirsch_truth"] = {
    name: sorted(
        [domain, day.isoformat(), simulator.truth("visitor", domain, day, tz="UTC")[0]["visitors"]]
        for domain in simulator.domain_ids
        for day in days
    )
    for name, simulator in pirsch.items()
}
result["pirsch_refused"] = {name: simulator.count(status=429) for name, simulator in pirsch.items()}
result["webtrekk_truth"] = sorted(
    [day.isoformat(), row.cells[0]]
    for day in days
    for row in webtrekk.export_table(
        {"type": "content_categories_time", "startDate": day.isoformat(), "endDate": day.isoformat()}
    )[1]
)
result["webtrekk_refused"] = webtrekk.refusals
accepted = webtrekk.accepted_times()
result["webtrekk_requests"] = len(accepted)
# the share of the login's limits used: the busiest stretch of each window, and the whole run's average
result["webtrekk_peak_share"] = {
    f"{requests}/{seconds:g}s": max(sum(1 for t in accepted if a <= t < a + seconds) for a in accepted) / requests
    for requests, seconds in WEBTREKK_LIMITS
}
span = max(accepted) - min(accepted) if len(accepted) > 1 else 1.0
result["webtrekk_average_share"] = round(len(accepted) / (span / WEBTREKK_LIMITS[0][1] * WEBTREKK_LIMITS[0][0]), 3)
result["pirsch_token_requests"] = {name: simulator.count("/token") for name, simulator in pirsch.items()}
for simulator in (*pirsch.values(), webtrekk):
    simulator.stop()
print("RESULT " + json.dumps(result, default=str))
