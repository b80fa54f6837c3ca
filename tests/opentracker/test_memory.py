"""A backfill of a million Opentracker sessions under a 512 MiB RSS limit (#11).

The real `clickhaul backfill` runs in a process of its own; a watchdog kills it the moment its resident memory
passes the limit (Linux has no enforced RSS rlimit, and an address-space limit would measure reservations, not
use), and the process reports its exact high-water mark (VmHWM) as it exits. The simulator serves from another
process, so only clickhaul is measured.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from simulators.harness import served
from simulators.opentracker import DEMO_LOGIN, DEMO_PASSWORD, DEMO_SITES, OpentrackerData, OpentrackerSimulator
from tests.support import ROOT

LIMIT_MIB = 512
DAYS = 10
SESSIONS_PER_SITE_AND_DAY = 50_000  # x 2 sites x 10 days = 1,000,000 sessions
LAST = dt.date(2025, 12, 31)
FIRST = LAST - dt.timedelta(days=DAYS - 1)

# Runs the CLI exactly as `python -m pipelines` does, then prints the process's own peak RSS on exit.
_REPORTING_CLI = """
import atexit, json, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\nPEAK_RSS " + json.dumps({"kib": peak}) + "\\n")

atexit.register(_report)
sys.argv = ["clickhaul", *sys.argv[1:]]
runpy.run_module("pipelines", run_name="__main__", alter_sys=True)
"""


def million_sessions() -> OpentrackerSimulator:
    now = dt.datetime(LAST.year + 1, 1, 2, tzinfo=dt.UTC).timestamp()  # long after the last day: all sessions ended
    per_day = (SESSIONS_PER_SITE_AND_DAY, SESSIONS_PER_SITE_AND_DAY)
    data = OpentrackerData(days=DAYS + 2, last_day=LAST + dt.timedelta(days=1), sessions_per_day=per_day, now=now)
    return OpentrackerSimulator(data)


def resident_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read a process's RSS")
def test_backfill_of_a_million_sessions_stays_under_512_mib(tmp_path: Path) -> None:
    database = tmp_path / "load.duckdb"
    with served(million_sessions) as url:
        env = {
            **os.environ,
            "SOURCES__OPENTRACKER__BASE_URL": url + "/api/views/",
            "SOURCES__OPENTRACKER__LOGIN": DEMO_LOGIN,
            "SOURCES__OPENTRACKER__PASSWORD": DEMO_PASSWORD,
            "SOURCES__OPENTRACKER__SITES": ",".join(DEMO_SITES),
            "DESTINATION__DUCKDB__CREDENTIALS": str(database),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
        }
        command = [sys.executable, "-c", _REPORTING_CLI, "backfill", "opentracker"]
        command += ["--start", FIRST.isoformat(), "--end", LAST.isoformat(), "--progress", "log"]
        process = subprocess.Popen(
            command, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        over: list[float] = []

        def watch() -> None:
            while process.poll() is None:
                rss = resident_mib(process.pid)
                if rss is not None and rss > LIMIT_MIB:
                    over.append(rss)
                    process.kill()
                    return
                time.sleep(0.02)

        watchdog = threading.Thread(target=watch, daemon=True)
        watchdog.start()
        stdout, stderr = process.communicate(timeout=1500)
        watchdog.join()

    assert not over, f"killed at {over[0]:.0f} MiB resident, over the {LIMIT_MIB} MiB limit"
    assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert "complete: 10 windows" in stdout, stdout
    peak_mib = json.loads(stderr.rsplit("PEAK_RSS ", 1)[1])["kib"] / 1024
    assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB"
    with duckdb.connect(str(database), read_only=True) as connection:
        rows, distinct = connection.execute(
            "select count(*), count(distinct session_id) from opentracker.sessions"
        ).fetchone()  # type: ignore[misc]
    assert rows == distinct >= 1_000_000
    print(f"\n1M-session backfill: {rows:,} sessions, peak RSS {peak_mib:.0f} MiB (limit {LIMIT_MIB} MiB)")
