"""Matomo destination throughput: hits/s at 1, 4 and 8 workers against the Matomo simulator (not a test).

The simulator runs in a process of its own so the client's measurement is not shared with the server's work.
`--hit-cost-ms` makes the simulator spend that long per hit on one of `--cores` cores, like a real Matomo
(~2.9 ms per hit on 2 cores gives the ~340 hits/s of one sender that API-NOTES reports):

    .venv/bin/python bench/matomo_hits.py                      # the client's own ceiling
    .venv/bin/python bench/matomo_hits.py --hit-cost-ms 2.9    # against something as slow as a real Matomo
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from destinations.matomo import make_config, push_table  # noqa: E402
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator  # noqa: E402


def serve(port_queue: multiprocessing.Queue[int], hit_cost: float, cores: int) -> None:
    simulator = MatomoSimulator(hit_cost_seconds=hit_cost, cores=cores).start()
    port_queue.put(int(simulator.url.rsplit(":", 1)[1]))
    simulator.serve_forever()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--hit-cost-ms", type=float, default=0.0)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.hit_cost_ms / 1000, args.cores), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        print(f"matomo simulator on 127.0.0.1:{port}, {args.rows:,} rows, batch {args.batch_size}, "
              f"server cost {args.hit_cost_ms} ms/hit on {args.cores} cores")  # fmt: skip
        print(f"{'workers':>7} {'hits':>9} {'requests':>9} {'seconds':>8} {'hits/s':>9}")
        with tempfile.TemporaryDirectory() as workdir:
            database = Path(workdir) / "bench.duckdb"
            make_table(database, args.rows)
            for workers in [int(part) for part in args.workers.split(",")]:
                with duckdb.connect(str(database)) as connection:  # a fresh ledger: send everything again
                    connection.execute("drop schema if exists matomo cascade")
                config = make_config(
                    f"http://127.0.0.1:{port}/matomo.php",
                    DEMO_SUPERUSER_TOKEN,
                    idsite=1,
                    batch_size=args.batch_size,
                    workers=workers,
                )
                began = time.monotonic()
                summary = push_table(database, "events.hits", config=config)
                seconds = time.monotonic() - began
                print(f"{workers:>7} {summary.sent:>9,} {summary.requests:>9,} {seconds:>8.2f} "
                      f"{summary.sent / seconds:>9,.0f}")  # fmt: skip
    finally:
        server.terminate()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
