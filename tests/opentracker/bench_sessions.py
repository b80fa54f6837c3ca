"""Throughput of the Opentracker `sessions` load (not a test; pytest does not collect it).

    .venv/bin/python -m tests.opentracker.bench_sessions --sessions-per-day 50000 --days 10

The simulator runs in its own process. A first, untimed run fills its page cache (rendering ~70 string fields per
session in Python is slower than loading them), so the timed run measures clickhaul: HTTP, JSON, Arrow, dlt
normalise and the DuckDB merge. `--cold` times the first run instead (simulator-bound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simulators.harness import Request, Response
from simulators.opentracker import DEMO_LOGIN, DEMO_PASSWORD, OpentrackerData, OpentrackerSimulator

LAST = dt.date(2026, 10, 31)
_CREDENTIALS = ("ticketId", "login", "password")


class CachedSimulator(OpentrackerSimulator):
    """Keeps every sessions answer it rendered, keyed by its parameters without the credentials."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: dict[tuple[tuple[str, str], ...], Response] = {}

    def view_sessions(self, request: Request) -> Response:
        params = self.params(request)
        key = tuple(sorted((k, v) for k, v in params.items() if k not in _CREDENTIALS))
        cached = self._answers.get(key)
        if cached is not None:
            refused, _ = self.authorize(params)
            return refused or cached
        answer = super().view_sessions(request)
        body, content_type = answer.encode()
        if answer.status == 200 and content_type.startswith("application/json"):
            self._answers[key] = Response(200, body, content_type=content_type)
        return answer


def serve(port: int, per_day: int, days: int) -> None:
    data = OpentrackerData(days=days + 2, last_day=LAST + dt.timedelta(days=1), sessions_per_day=(per_day, per_day))
    CachedSimulator(data, port=port).serve_forever()


def load(port: int, days: int, workdir: Path, workers: int) -> tuple[int, int, float]:
    from tests.support import Loader

    env = {
        "SOURCES__OPENTRACKER__BASE_URL": f"http://127.0.0.1:{port}/api/views/",
        "SOURCES__OPENTRACKER__LOGIN": DEMO_LOGIN,
        "SOURCES__OPENTRACKER__PASSWORD": DEMO_PASSWORD,
        "SOURCES__OPENTRACKER__SITES": "www.example.com,shop.example.com",
        "SOURCES__OPENTRACKER__WORKERS": str(workers),
    }
    run = Loader("opentracker", workdir, env)
    began = time.monotonic()
    summary = run.run(LAST - dt.timedelta(days=days - 1), LAST)
    seconds = time.monotonic() - began
    return run.count("sessions"), summary.requests, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions-per-day", type=int, default=50000, help="per site (2 sites)")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--cold", action="store_true", help="time the first run (simulator-bound)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.sessions_per_day, args.days)
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.opentracker.bench_sessions", "--serve", "--port", str(args.port),
         "--sessions-per-day", str(args.sessions_per_day), "--days", str(args.days)],
        env={**os.environ},
    )  # fmt: skip
    try:
        time.sleep(2.0)
        with tempfile.TemporaryDirectory(prefix="ot-bench-") as scratch:
            rows, requests, seconds = load(args.port, args.days, Path(scratch) / "warm", args.workers)
            print(
                f"first run : {rows:,} sessions, {requests:,} requests, {seconds:.1f} s, {rows / seconds:,.0f} rows/s"
            )
            if not args.cold:
                rows, requests, seconds = load(args.port, args.days, Path(scratch) / "timed", args.workers)
                print(
                    f"timed run : {rows:,} sessions, {requests:,} requests, {seconds:.1f} s, "
                    f"{rows / seconds:,.0f} rows/s"
                )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
