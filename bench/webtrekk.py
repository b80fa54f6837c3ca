"""Webtrekk exportData (`content_categories`, 10,000-row pages, rate limits off): clickhaul, dlt's `rest_api`
for the same JSON-RPC call, and the ceiling; plus rate-limit utilisation under scaled-down limits."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
from dlt.sources.helpers.requests import Request, Response
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.rest_api import rest_api_source

from simulators.webtrekk import DEMO_CUSTOMER_ID, DEMO_LOGIN, DEMO_PASSWORD, ENDPOINT, WebtrekkData, WebtrekkSimulator
from tests.support import Loader

from .measure import Measure, count_rows, run_dlt, timed

LAST_DAY = dt.date(2025, 12, 31)
PAGE = 10_000
NO_LIMITS = [(1_000_000, 1.0)]
EXPORT = "content_categories"


def simulator(pages: int, limits: Any = NO_LIMITS) -> WebtrekkSimulator:
    return WebtrekkSimulator(WebtrekkData(pages=pages, days=3, last_day=LAST_DAY), rate_limits=limits)


def env(url: str, limits: Any = NO_LIMITS, **extra: Any) -> dict[str, str]:
    values = {
        "SOURCES__WEBTREKK__BASE_URL": url + ENDPOINT,
        "SOURCES__WEBTREKK__CUSTOMER_ID": DEMO_CUSTOMER_ID,
        "SOURCES__WEBTREKK__LOGIN": DEMO_LOGIN,
        "SOURCES__WEBTREKK__PASSWORD": DEMO_PASSWORD,
        "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([list(pair) for pair in limits]),
        "SOURCES__WEBTREKK__EXPORT_TYPES": json.dumps([EXPORT]),
    }
    values.update({f"SOURCES__WEBTREKK__{key.upper()}": json.dumps(value) for key, value in extra.items()})
    return values


def clickhaul(url: str, workdir: Path) -> Measure:
    loader = Loader("webtrekk", workdir, env(url), pipeline_name="bench_webtrekk")

    def work() -> tuple[int, int]:
        summary = loader.run(resources=f"export_{EXPORT}")
        return loader.count(f"export_{EXPORT}"), summary.requests

    return timed(work)


def rpc(http: httpx.Client, method: str, params: dict[str, Any]) -> Any:
    answer = http.post(ENDPOINT, json={"version": "1.1", "method": method, "params": params})
    answer.raise_for_status()
    body = answer.json()
    if body.get("error"):
        raise RuntimeError(f"webtrekk {method}: {body['error']}")
    return body["result"]


def login(http: httpx.Client) -> str:
    return str(rpc(http, "login", {"customerId": DEMO_CUSTOMER_ID, "login": DEMO_LOGIN, "pass": DEMO_PASSWORD}))


class RowRangePaginator(BasePaginator):
    """exportData pages by `startRow`/`endRow` in the JSON-RPC body; no dlt paginator has that shape, so a
    `rest_api` user writes this much."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.start = 1

    def init_request(self, request: Request) -> None:
        self.update_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        rows = len(data or [])  # the data selector dropped nothing: the header row is one of them
        self._has_next_page = rows - 1 >= self.size
        self.start += self.size

    def update_request(self, request: Request) -> None:
        body: Any = request.json
        params = body["params"]
        params["startRow"], params["endRow"] = self.start, self.start + self.size - 1


def rest_api(url: str, workdir: Path) -> Measure:
    database = str(workdir / "rest_api.duckdb")

    def work() -> tuple[int, int]:
        with httpx.Client(base_url=url) as http:
            token = login(http)
        header: list[str] = []

        def as_dict(row: list[Any]) -> dict[str, Any] | None:
            # The answer's first row is the header; rows are arrays.
            if not header:
                header.extend(str(cell) for cell in row)
            if [str(cell) for cell in row] == header:  # every page repeats it
                return None
            return dict(zip(header, row, strict=False))

        config: Any = {
            "client": {"base_url": url},
            "resources": [
                {
                    "name": EXPORT,
                    "endpoint": {
                        "path": ENDPOINT,
                        "method": "POST",
                        "json": {"version": "1.1", "method": "exportData", "params": {"token": token, "type": EXPORT}},
                        "data_selector": "result",
                        "paginator": RowRangePaginator(PAGE),
                    },
                    "processing_steps": [{"map": as_dict}, {"filter": lambda row: row is not None}],
                }
            ],
        }
        run_dlt(rest_api_source(config, name="webtrekk_rest"), database, str(workdir / "dlt"), "webtrekk_rest")
        return count_rows(database, f"webtrekk_rest.{EXPORT}"), 0

    return timed(work)


def ceiling(url: str) -> Measure:
    def work() -> tuple[int, int]:
        rows = requests = 0
        with httpx.Client(base_url=url, timeout=120) as http:
            token = login(http)
            start = 1
            while True:
                page = rpc(
                    http, "exportData", {"token": token, "type": EXPORT, "startRow": start, "endRow": start + PAGE - 1}
                )
                requests += 1
                rows += max(0, len(page) - 1)
                if len(page) - 1 < PAGE:
                    return rows, requests
                start += PAGE

    return timed(work)


def utilisation(
    workdir: Path, window_requests: int = 5, window_seconds: float = 2.0, calls: int = 24
) -> dict[str, Any]:
    """Export `calls` pages under a (requests, seconds) window scaled down from the documented 5 per 10 s: how much
    of the allowed rate the run used (its span against the fastest span the limit allows for as many requests), and
    how many requests the server refused."""
    limits = [(window_requests, window_seconds)]
    with simulator(pages=calls * 100 + 50, limits=limits) as server:
        server_url = server.url
        loader = Loader("webtrekk", workdir, env(server_url, limits, export_page_size=100), pipeline_name="bench_wt_rl")
        began = time.monotonic()
        loader.run(resources=f"export_{EXPORT}")
        elapsed = time.monotonic() - began
        accepted = server.accepted_times()
        refused = server.refusals
    # The fastest schedule the limit allows for these requests: a full window's worth at once, then the next
    # window's worth the moment the first one's window has passed. Utilisation is that span over the run's: a run
    # that needs 43 requests cannot use the 44th and 45th slots of its last window, so they are not counted.
    if len(accepted) < 2:
        return {"requests": len(accepted), "refused": refused, "utilisation": 0.0, "seconds": elapsed}
    span = accepted[-1] - accepted[0]
    fastest = window_seconds * ((len(accepted) - 1) // window_requests)
    return {
        "requests": len(accepted),
        "refused": refused,
        "span_seconds": round(span, 3),
        "fastest_span_seconds": round(fastest, 3),
        "utilisation": round(min(1.0, fastest / span), 3) if span > 0 else 1.0,
        "seconds": round(elapsed, 2),
        "limits": limits,
    }
