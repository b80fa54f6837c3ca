"""Pirsch `pages` (a per-day breakdown, paged by 100) for every day of a year and three domains: clickhaul,
dlt's `rest_api` for the same endpoint, and the ceiling (fetch and parse the same pages, load nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dlt
import httpx
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api import rest_api_source

from simulators.harness import Faults
from simulators.pirsch import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, PirschData, PirschSimulator
from sources.pirsch.settings import DEFAULT_WORKERS
from tests.support import Loader

from .measure import Measure, count_rows, run_dlt, timed

LAST_DAY = dt.date(2025, 12, 31)
PATH = "/api/v1/statistics/page"


def data(days: int) -> PirschData:
    return PirschData(domains=3, days=days + 1, last_day=LAST_DAY)


def simulator(days: int, latency: float = 0.0) -> PirschSimulator:
    """`latency`: seconds every statistics answer waits, as a real API's network and queueing add (~50-200 ms)."""
    faults = Faults(slow_rate=1.0 if latency else 0.0, slow_seconds=latency, exempt_paths=(r"/api/v1/token$",))
    # Generous token/config limits: the benchmark measures throughput, not Pirsch's config-endpoint limit.
    return PirschSimulator(data(days), faults, token_limit_per_minute=1000, config_limit_per_minute=10_000)


def days_of(days: int) -> tuple[dt.date, dt.date]:
    return LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY


def env(url: str) -> dict[str, str]:
    return {
        "SOURCES__PIRSCH__BASE_URL": url,
        "SOURCES__PIRSCH__CLIENT_ID": DEMO_CLIENT_ID,
        "SOURCES__PIRSCH__CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "SOURCES__PIRSCH__TIMEZONE": "UTC",
    }


def clickhaul(url: str, workdir: Path, days: int) -> Measure:
    loader = Loader("pirsch", workdir, env(url), pipeline_name="bench_pirsch")
    first, last = days_of(days)

    def work() -> tuple[int, int]:
        summary = loader.run(first, last, resources="pages")
        return loader.count("pages"), summary.requests

    return timed(work)


def token(http: httpx.Client) -> str:
    answer = http.post("/api/v1/token", json={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def domain_days(http: httpx.Client, days: int) -> list[dict[str, str]]:
    domains = http.get("/api/v1/domain").json()
    first, _ = days_of(days)
    return [
        {"domain_id": domain["id"], "day": (first + dt.timedelta(days=offset)).isoformat()}
        for domain in domains
        for offset in range(days)
    ]


def rest_api(url: str, workdir: Path, days: int) -> Measure:
    """What a user of dlt's generic source writes: a parent resource of (domain, day) and the endpoint resolved
    from it, offset paging, a bearer token; everything else left at dlt's defaults."""
    database = str(workdir / "rest_api.duckdb")
    requests = 0

    def work() -> tuple[int, int]:
        nonlocal requests
        with httpx.Client(base_url=url) as http:
            bearer = token(http)
            http.headers["Authorization"] = f"Bearer {bearer}"
            pairs = domain_days(http, days)

        @dlt.resource(name="domain_days", selected=False)
        def parent() -> Iterator[list[dict[str, str]]]:
            yield pairs

        config: Any = {
            "client": {"base_url": url + "/api/v1/", "auth": {"type": "bearer", "token": bearer}},
            "resources": [
                parent,
                {
                    "name": "pages",
                    "endpoint": {
                        "path": "statistics/page",
                        "params": {
                            "id": "{resources.domain_days.domain_id}",
                            "from": "{resources.domain_days.day}",
                            "to": "{resources.domain_days.day}",
                            "tz": "UTC",
                            "include_avg_time_on_page": "true",
                        },
                        "paginator": OffsetPaginator(limit=100, total_path=None),
                    },
                },
            ],
        }
        run_dlt(rest_api_source(config, name="pirsch_rest"), database, str(workdir / "dlt"), "pirsch_rest")
        return count_rows(database, "pirsch_rest.pages"), 0

    return timed(work)


def ceiling(url: str, days: int) -> Measure:
    """The same requests clickhaul makes for `pages`, as many at once as clickhaul makes them, answers parsed,
    nothing kept."""

    def work() -> tuple[int, int]:
        with httpx.Client(base_url=url) as http:
            http.headers["Authorization"] = f"Bearer {token(http)}"
            pairs = domain_days(http, days)

            def day(pair: dict[str, str]) -> tuple[int, int]:
                rows = requests = offset = 0
                while True:
                    params = {"id": pair["domain_id"], "from": pair["day"], "to": pair["day"], "tz": "UTC"}
                    params.update(include_avg_time_on_page="true", offset=str(offset), limit="100")
                    parsed = http.get(PATH, params=params).json()
                    requests += 1
                    rows += len(parsed)
                    if len(parsed) < 100:
                        return rows, requests
                    offset += 100

            with ThreadPoolExecutor(DEFAULT_WORKERS) as pool:
                counts = list(pool.map(day, pairs))
        return sum(rows for rows, _ in counts), sum(requests for _, requests in counts)

    return timed(work)
