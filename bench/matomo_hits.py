"""Matomo destination figures against the Matomo simulator (not a test). The simulator runs in a process of its own
(a fresh one, so a fresh site, for each timed run) so the client's measurements are its own.

    .venv/bin/python bench/matomo_hits.py                      # hits/s at 1, 4, 8 workers: the client's ceiling
    .venv/bin/python bench/matomo_hits.py --hit-cost-ms 2.9    # against something as slow as a real Matomo
    .venv/bin/python bench/matomo_hits.py --report             # the issue-16 figures, written to bench/results

`--hit-cost-ms` makes the simulator spend that long per hit on one of `--cores` cores, like a real Matomo (~2.9 ms
per hit on 2 cores gives the ~340 hits/s of one sender that API-NOTES reports). `--report` measures:
- client CPU seconds per 1,000 hits at 1 worker (the process's CPU time over the whole push: reading, building,
  validating, the ledger and HTTP), the median of 3 runs, goal <= 0.1 s;
- hits/s of clickhaul and of `ImportLogsSender` (the way Matomo's `import_logs.py` sends: a recorder thread per
  shard of visitors, a dict of arguments per hit, one `json.dumps` and one new connection per bulk of 200, 3
  attempts 10 s apart, the recorded days' archives invalidated at the end) at 1 and 4 workers against a simulator
  given a Matomo-like per-hit cost, goal >= 1.0x. Both read the same DuckDB table (the reference with one
  `fetchall`, where import_logs.py parses log lines).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from destinations.matomo import make_config, push_table  # noqa: E402
from simulators.harness import served  # noqa: E402
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator  # noqa: E402
from sources.common.clock import utc_now  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REAL_HIT_COST_MS = 2.9


def make_table(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema if not exists events")
        connection.execute(
            f"""create or replace table events.hits as
                select substr(md5((i % 5000)::varchar), 1, 16) as visitor_id,
                       'https://shop.example/p/' || i as page_url, 'Page ' || i as page_title,
                       now() - interval '20 hours' + to_seconds(i * 0.5) as timestamp
                from range({rows}) t(i)"""
        )


class ImportLogsSender:
    """A reference sender built the way `import_logs.py` (Matomo's log importer) records hits: recorders fed
    through queues of 2, hits sharded by visitor, `requests` as argument objects, urllib without keep-alive."""

    def __init__(self, url: str, token: str, recorders: int, batch_size: int = 200) -> None:
        self.url, self.token, self.batch_size = f"{url}/matomo.php", token, batch_size
        self.queues: list[queue.Queue[list[dict[str, Any]] | None]] = [queue.Queue(maxsize=2) for _ in range(recorders)]
        self.tracked = 0
        self._lock = threading.Lock()

    def _record(self, hits: list[dict[str, Any]]) -> None:
        data = json.dumps({"token_auth": self.token, "requests": hits}).encode()
        for attempt in range(3):
            try:
                request = urllib.request.Request(self.url, data, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=300) as response:
                    answer = json.loads(response.read())
                if answer.get("status") == "success":
                    with self._lock:
                        self.tracked += int(answer["tracked"])
                    return
            except OSError:
                pass
            if attempt < 2:
                time.sleep(10)
        raise RuntimeError("the reference sender gave up on a bulk")

    def _run(self, shard: queue.Queue[list[dict[str, Any]] | None]) -> None:
        while (hits := shard.get()) is not None:
            if hits:
                self._record(hits)

    def push(self, rows: Iterable[tuple[Any, ...]]) -> int:
        threads = [threading.Thread(target=self._run, args=(q,), daemon=True) for q in self.queues]
        for thread in threads:
            thread.start()
        pending: list[list[dict[str, Any]]] = [[] for _ in self.queues]
        days: set[str] = set()
        for visitor, url, title, timestamp in rows:
            days.add(timestamp.strftime("%Y-%m-%d"))
            args = {"rec": "1", "apiv": "1", "url": url, "urlref": "", "cip": "198.51.100.7",
                    "cdt": timestamp.strftime("%Y-%m-%d %H:%M:%S"), "idsite": 1, "dp": "1", "ua": "Mozilla/5.0",
                    "_id": visitor, "action_name": title}  # fmt: skip
            shard = zlib.crc32(visitor.encode()) % len(self.queues)
            pending[shard].append(args)
            if sum(len(hits) for hits in pending) >= self.batch_size * len(self.queues):
                for q, hits in zip(self.queues, pending, strict=True):
                    q.put(hits)
                pending = [[] for _ in self.queues]
        for q, hits in zip(self.queues, pending, strict=True):
            q.put(hits)
            q.put(None)
        for thread in threads:
            thread.join()
        self._invalidate(days)
        return self.tracked

    def _invalidate(self, days: set[str]) -> None:
        """Like import_logs.py at its end: invalidate the archives of the days it recorded hits for."""
        form = {"module": "API", "format": "json", "method": "CoreAdminHome.invalidateArchivedReports",
                "idSites": "1", "dates": ",".join(sorted(days)), "period": "day", "token_auth": self.token}  # fmt: skip
        url = self.url.replace("matomo.php", "index.php")
        with urllib.request.urlopen(url, urllib.parse.urlencode(form).encode(), timeout=60) as response:
            response.read()


def reference_rows(database: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        sql = "select visitor_id, page_url, page_title, timestamp at time zone 'UTC' from events.hits order by 4"
        return connection.execute(sql).fetchall()


def reference_push(sender: ImportLogsSender, database: Path) -> int:
    """The reference's whole run: read the rows, send them."""
    return sender.push(reference_rows(database))


def fresh_ledger(database: Path) -> None:
    with duckdb.connect(str(database)) as connection:
        connection.execute("drop schema if exists matomo cascade")


def clickhaul_push(database: Path, url: str, workers: int, batch_size: int = 200) -> tuple[int, int]:
    config = make_config(f"{url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=1, batch_size=batch_size, workers=workers)
    summary = push_table(database, "events.hits", config=config)
    return summary.sent, summary.requests


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.monotonic(), time.process_time()
    run()
    return time.monotonic() - wall, time.process_time() - cpu


def simulator_factory(hit_cost_ms: float, cores: int) -> Callable[[], MatomoSimulator]:
    def factory() -> MatomoSimulator:
        return MatomoSimulator(hit_cost_seconds=hit_cost_ms / 1000, cores=cores)

    return factory


def cpu_per_thousand(database: Path, rows: int, runs: int = 3) -> dict[str, Any]:
    """Client CPU seconds per 1,000 hits at 1 worker (median of `runs`; each run a fresh simulator and ledger)."""
    figures = []
    with served(simulator_factory(0.0, 2)) as url:
        clickhaul_push(database, url, 1)  # warm: imports, first connections
    for _ in range(runs):
        fresh_ledger(database)
        with served(simulator_factory(0.0, 2)) as url:
            _, cpu = timed(functools.partial(clickhaul_push, database, url, 1))
        figures.append(cpu / rows * 1000)
    return {"rows": rows, "runs": [round(f, 4) for f in figures], "cpu_s_per_1000_hits": round(median(figures), 4)}


def median(values: list[float]) -> float:
    return statistics.median(values)


def versus_import_logs(database: Path, rows: int, hit_cost_ms: float, cores: int, runs: int) -> dict[str, Any]:
    """hits/s of clickhaul and of the reference sender at 1 and 4 workers, alternating, each run a fresh
    simulator; median of `runs` each."""
    factory = simulator_factory(hit_cost_ms, cores)
    figures: dict[str, Any] = {}
    for workers in (1, 4):
        ours, theirs = [], []
        for _ in range(runs):
            fresh_ledger(database)
            with served(factory) as url:
                seconds, _ = timed(functools.partial(clickhaul_push, database, url, workers))
            ours.append(rows / seconds)
            with served(factory) as url:
                sender = ImportLogsSender(url, DEMO_SUPERUSER_TOKEN, workers)
                seconds, _ = timed(functools.partial(reference_push, sender, database))
                assert sender.tracked == rows, f"the reference sender stored {sender.tracked} of {rows}"
            theirs.append(rows / seconds)
        figures[str(workers)] = {
            "clickhaul_hits_per_s": round(median(ours)),
            "import_logs_like_hits_per_s": round(median(theirs)),
            "ratio": round(median(ours) / median(theirs), 3),
        }
    return figures


def report(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        database = Path(workdir) / "bench.duckdb"
        make_table(database, args.rows)
        cpu = cpu_per_thousand(database, args.rows)
        print(f"client CPU: {cpu['cpu_s_per_1000_hits']:.3f} s per 1,000 hits at 1 worker (runs {cpu['runs']})")
        speed = versus_import_logs(database, args.rows, args.hit_cost_ms or REAL_HIT_COST_MS, args.cores, args.runs)
    for workers, entry in speed.items():
        print(f"{workers} worker(s): clickhaul {entry['clickhaul_hits_per_s']:,} hits/s, import_logs-like "
              f"{entry['import_logs_like_hits_per_s']:,} hits/s: {entry['ratio']}x")  # fmt: skip
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    result = {
        "when": stamp,
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "hit_cost_ms": args.hit_cost_ms or REAL_HIT_COST_MS,
        "cores": args.cores,
        "cpu": cpu,
        "versus_import_logs": speed,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"matomo-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to bench/results/matomo-{stamp}.json")


def scaling(args: argparse.Namespace) -> None:
    print(f"{args.rows:,} rows, batch {args.batch_size}, server cost {args.hit_cost_ms} ms/hit on {args.cores} cores")
    print(f"{'workers':>7} {'hits':>9} {'requests':>9} {'seconds':>8} {'hits/s':>9}")
    with tempfile.TemporaryDirectory() as workdir:
        database = Path(workdir) / "bench.duckdb"
        make_table(database, args.rows)
        for workers in [int(part) for part in args.workers.split(",")]:
            fresh_ledger(database)
            with served(simulator_factory(args.hit_cost_ms, args.cores)) as url:
                began = time.monotonic()
                sent, requests = clickhaul_push(database, url, workers, args.batch_size)
                seconds = time.monotonic() - began
            print(f"{workers:>7} {sent:>9,} {requests:>9,} {seconds:>8.2f} {sent / seconds:>9,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="default 50,000 (6,000 with --report)")
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--hit-cost-ms", type=float, default=0.0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure with --report (the median counts)")
    parser.add_argument("--report", action="store_true", help="CPU per 1,000 hits and the import_logs comparison")
    args = parser.parse_args()
    args.rows = args.rows or (6_000 if args.report else 50_000)
    report(args) if args.report else scaling(args)


if __name__ == "__main__":
    main()
