"""Opentracker `sessions`: clickhaul's load against the ceiling (the same pages fetched and parsed by as many
workers, nothing loaded), and the peak RSS of a load in a process of its own.

No dlt `rest_api` baseline: configured with its defaults (a (site, day) parent, `JSONResponseCursorPaginator` on
`nextToken`) it never finishes, because Opentracker's last page of a day carries a `nextToken` pointing before the
day and the cursor paginator follows it; stopping needs a custom paginator that reads the token as a time."""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from simulators.opentracker import DEMO_LOGIN, DEMO_PASSWORD, DEMO_SITES, OpentrackerData, OpentrackerSimulator
from tests.support import ROOT, Loader

from .measure import Measure, timed

LAST_DAY = dt.date(2025, 12, 31)
WORKERS = 4


def plan(sessions: int, days: int = 10) -> tuple[int, int]:
    """(sessions per day per site, days) for about `sessions` sessions over the demo's two sites."""
    days = max(1, min(days, sessions // 2000 or 1))
    return max(1, sessions // (len(DEMO_SITES) * days)), days


def simulator(sessions: int) -> OpentrackerSimulator:
    per_day, days = plan(sessions)
    # now: the account is looked at long after the last day, so every session has ended.
    now = dt.datetime(LAST_DAY.year + 1, 1, 2, tzinfo=dt.UTC).timestamp()
    data = OpentrackerData(
        days=days + 2, last_day=LAST_DAY + dt.timedelta(days=1), sessions_per_day=(per_day, per_day), now=now
    )
    return OpentrackerSimulator(data)


def env(url: str) -> dict[str, str]:
    return {
        "SOURCES__OPENTRACKER__BASE_URL": url + "/api/views/",
        "SOURCES__OPENTRACKER__LOGIN": DEMO_LOGIN,
        "SOURCES__OPENTRACKER__PASSWORD": DEMO_PASSWORD,
        "SOURCES__OPENTRACKER__SITES": ",".join(DEMO_SITES),
        "SOURCES__OPENTRACKER__WORKERS": str(WORKERS),
    }


def days_of(sessions: int) -> tuple[dt.date, dt.date]:
    _, days = plan(sessions)
    return LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY


def clickhaul(url: str, workdir: Path, sessions: int) -> Measure:
    loader = Loader("opentracker", workdir, env(url), pipeline_name="bench_opentracker")
    first, last = days_of(sessions)

    def work() -> tuple[int, int]:
        summary = loader.run(first, last, resources="sessions")
        return loader.count("sessions"), summary.requests

    return timed(work)


def ceiling(url: str, sessions: int) -> Measure:
    from sources.common.windows import split_windows
    from sources.opentracker.client import OpentrackerClient

    first, last = days_of(sessions)
    windows = split_windows(first, last, "day", "UTC")

    def work() -> tuple[int, int]:
        # JSON parsed by orjson into Python objects, as the independent harness parsed it: clickhaul reads the
        # rows straight into Arrow (`arrow_pages`), which is part of what is measured against this ceiling.
        client = OpentrackerClient(url + "/api/views/", login=DEMO_LOGIN, password=DEMO_PASSWORD, arrow_pages=False)
        pairs = [(site, window) for site in DEMO_SITES for window in windows]

        def fetch(pair: Any) -> int:
            return sum(len(page.rows) for page in client.sessions(pair[0], pair[1]))

        with ThreadPoolExecutor(WORKERS) as pool:
            rows = sum(pool.map(fetch, pairs))
        requests = client.stats.requests if hasattr(client.stats, "requests") else 0
        client.close()
        return rows, requests

    return timed(work)


def peak_rss(url: str, workdir: Path, sessions: int) -> dict[str, Any]:
    """Load `sessions` in a fresh interpreter and read its peak RSS (ru_maxrss, KiB on Linux)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.opentracker", url, str(workdir), str(sessions)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=3600, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"rss run for {sessions} sessions failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def peak_mib() -> float:
    """This process's own peak RSS. Not ru_maxrss: on Linux a child inherits the high-water mark its parent had when
    it forked (kept across exec), so a small run started by a big benchmark would report the benchmark's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, workdir: str, sessions: int) -> None:
    measure = clickhaul(url, Path(workdir), sessions)
    peak = peak_mib()
    print(json.dumps({"sessions": measure.rows, "seconds": round(measure.seconds, 2), "peak_rss_mib": round(peak, 1)}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
