"""Mapp Analytics (the Mapp Intelligence REST Analytics API) on 127.0.0.1, as the vendor note describes it.

OAuth2 client credentials (Basic auth; `scope` accepted, rejected or required as configured) at the new and the
old token path; tokens with a lifetime, 403 `INVALID_TOKEN` once expired. POST /analysis-query answers 201 with a
`statusUrl` for a new query and 200 with a `resultUrl` for a query already calculated; calculations go
INITIATED → RUNNING → SUCCESS over a configurable time and sometimes FAIL; DELETE aborts them. Results carry
subtotal rows (per value of the first dimension) and a grand total row, listed in `sumPositions`, metrics as JSON
numbers (some as numeric strings), `null` for 0. Problem bodies for unknown objects, missing time filters and
bad JSON; a monthly quota counter; /query-objects, /segments, /dynamic-timefilters; the report flow. Every URL
the server writes names the "new" host (`localhost`) whatever host was called, as api.mapp.com does.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simulators.harness import Faults, Request, Response, SimulatorServer, TokenStore, json_response
from simulators.registry import DemoPlan
from simulators.traffic import TrafficDays, day_rng
from simulators.webtrekk import WebtrekkSimulator
from simulators.webtrekk import demo_plan as jsonrpc_demo_plan
from sources.common.clock import today_utc, wall_time

ACCOUNT_ID = "294915650484552"
DEMO_CLIENT_ID = "clickhaul-demo-client"
DEMO_CLIENT_SECRET = "mapp-analytics-demo-secret-4f8a1c9e"
API_PREFIXES = ("/api/analytics", "/analytics/api")  # the new base path and the old one
TOKEN_PATHS = ("/oauth2/token", "/analytics/api/oauth/token")
LEGACY_SCOPE = "mapp.intelligence-api"

DIMENSIONS: dict[str, dict[str, Any]] = {
    "time_days": {"title": "Days", "context": "NONE", "timeFormatPattern": "yyyyMMdd"},
    "browser_fullName": {"title": "Browser", "context": "SESSION"},
    "os_vendor": {"title": "Operating System Vendor", "context": "SESSION", "arrangeType": "platform_vendor"},
    "device_deviceClass": {
        "title": "Device Class",
        "context": "SESSION",
        "mapping": {"0": "PC / Laptop", "1": "Smartphone", "2": "Tablet"},
    },
    "pages_pageName": {"title": "Pages", "context": "PAGE"},
}
METRICS: dict[str, dict[str, Any]] = {
    "visits": {"title": "Visits", "context": "SESSION", "metricDisplayType": "NORMAL"},
    "visitors": {"title": "Visitors", "context": "VISITOR", "metricDisplayType": "NORMAL"},
    "pages_pageImpressions": {"title": "Page Impressions", "context": "PAGE", "metricDisplayType": "NORMAL"},
    "order_value": {"title": "Order Value", "context": "ACTION", "metricDisplayType": "CURRENCY"},
}
GERMAN = {"Days": "Tage", "Browser": "Browser", "Pages": "Seiten", "Visits": "Besuche", "Visitors": "Besucher"}
BROWSERS = ["Chrome 131", "Firefox 132", "Safari 18", "Edge 130", "Opera 114"]
OS_VENDORS = ["Microsoft", "Apple", "Google", "Linux"]
DEVICE_CLASSES = ["0", "1", "2"]
SEGMENTS = [
    {"id": 1, "title": "Buyers", "description": "Visitors with an order"},
    {"id": 2, "title": "Mobile", "description": "Smartphone and tablet sessions"},
]
DYNAMIC_FILTERS = ["today", "yesterday", "last_7_days", "last_28_days", "before_7_days", "before_14_days"]
REPORTS: dict[int, dict[str, Any]] = {
    1001: {
        "title": "Overview",
        "elements": [
            {
                "id": 11,
                "type": "ANALYSIS",
                "configJson": {
                    "columns": [
                        {"name": "browser_fullName", "scope": "OBJECT", "context": "SESSION", "variant": "NORMAL"},
                        {"name": "visits", "scope": "OBJECT", "context": "SESSION", "variant": "NORMAL"},
                    ],
                    "variant": "LIST",
                },
            },
            {
                "id": 12,
                "type": "ANALYSIS",
                "configJson": {"type": "KPI", "metricName": "pages_pageImpressions", "elementPeriod": "MONAD"},
            },
        ],
    }
}


class Problem(Exception):
    """An error answered with the API's Problem body."""

    def __init__(
        self, status: int, code: str, title: str, detail: str = "", errors: Sequence[dict[str, Any]] = ()
    ) -> None:
        super().__init__(title)
        self.body = {"status": status, "statusCode": code, "title": title, "detail": detail, "errors": list(errors)}
        self.status = status


def unmapped(names: Sequence[str]) -> Problem:
    return Problem(
        400,
        "BAD_REQUEST",
        "Analysis query is invalid",
        "Some names could not be mapped",
        [{"name": "UnmappedName", "parameters": {"names": list(names), "aliases": [], "arrangeTypes": []}}],
    )


@dataclass
class AnalyticsData(TrafficDays):
    """The simulated account's traffic: per day, facts of (browser, os, device, page) with four metrics."""

    seed: int = 7
    days: int = 90
    pages: int = 12
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET

    @property
    def page_names(self) -> list[str]:
        sections = ["home", "news", "shop", "help", "blog", "jobs"]
        return [f"de.{sections[i % len(sections)]}.page-{i:03d}" for i in range(self.pages)]

    def facts(self, day: dt.date) -> tuple[dict[str, Any], ...]:
        return _facts(self.seed, day, tuple(self.page_names), self.first_day, self.last_day)


@lru_cache(maxsize=1024)
def _facts(
    seed: int, day: dt.date, pages: tuple[str, ...], first: dt.date, last: dt.date
) -> tuple[dict[str, Any], ...]:
    if not first <= day <= last:
        return ()
    rng = day_rng("mapp-analytics", seed, day)  # the seed's old name keeps the generated data as it was
    facts = []
    for browser in BROWSERS:
        for os_vendor in OS_VENDORS:
            for device in DEVICE_CLASSES:
                for page in pages:
                    if rng.random() < 0.55:
                        continue  # no traffic: the combination does not appear at all
                    visits = rng.randint(1, 40)
                    order = round(rng.uniform(5, 250), 2) if rng.random() < 0.2 else 0.0
                    facts.append(
                        {
                            "time_days": day.strftime("%Y%m%d"),
                            "browser_fullName": browser,
                            "os_vendor": os_vendor,
                            "device_deviceClass": device,
                            "pages_pageName": page,
                            "visits": visits,
                            "visitors": max(1, visits - rng.randint(0, visits // 3)),
                            "pages_pageImpressions": visits + rng.randint(0, visits * 3),
                            "order_value": order,
                        }
                    )
    return tuple(facts)


@dataclass
class Calculation:
    correlation_id: str
    calculation_id: str
    key: str
    created: float
    seconds: float
    fails: bool
    result: dict[str, Any]
    report_element: int | None = None
    aborted: bool = False

    def status(self, now: float, initiated_share: float) -> str:
        if self.aborted:
            return "ABORTED"
        elapsed = now - self.created
        if elapsed < self.seconds * initiated_share:
            return "INITIATED"
        if elapsed < self.seconds:
            return "RUNNING"
        return "FAILED" if self.fails else "SUCCESS"


class AnalyticsApi:
    """The Analytics API's state and routes; mixed into a SimulatorServer (alone, or beside the JSON-RPC one)."""

    # set by the SimulatorServer this is mixed into
    route: Callable[[str, str, Callable[[Request], Response]], None]
    url: str

    def install_analytics(
        self,
        data: AnalyticsData | None = None,
        *,
        token_seconds: float = 3600.0,
        calculation_seconds: float = 0.2,
        initiated_share: float = 0.3,
        failure_rate: float = 0.0,
        scope_policy: str = "optional",  # "optional" | "reject" (the new endpoint) | "require" (the old one)
        max_calculations: int = 310_000,
        calculations_used: int = 0,
        public_host: str = "localhost",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.analytics = data or AnalyticsData()
        self.tokens_api = TokenStore(token_seconds, wall_time)
        self.calculation_seconds = calculation_seconds
        self.initiated_share = initiated_share
        self.failure_rate = failure_rate
        self.failing_seconds: float | None = None  # how long a failing calculation runs (default: like the others)
        self.scope_policy = scope_policy
        self.max_calculations = max_calculations
        self.calculations_count = calculations_used
        self.public_host = public_host
        self.api_clock = clock
        self._api_lock = threading.Lock()
        self._api_rng = random.Random(self.analytics.seed)
        self.calculations: dict[str, Calculation] = {}  # by correlationId
        self.results: dict[str, Calculation] = {}  # by calculationId
        self.cache: dict[str, str] = {}  # query key -> calculationId of a finished calculation
        self.report_queries: dict[str, list[str]] = {}  # reportCorrelationId -> correlationIds
        self.cancelled: list[str] = []  # correlationIds aborted by DELETE while running
        self.created: list[dict[str, Any]] = []  # query objects of the calculations created, in order
        self.token_requests: list[dict[str, str]] = []
        self.served_states: list[str] = []  # every status answered to a poll, in order
        self.peak_running = 0  # most calculations running at once
        self._fail_next = 0
        self._api_expire_after: int | None = None
        for prefix in TOKEN_PATHS:
            self.route("POST", prefix, self._token)
        for base in API_PREFIXES:
            self.route("POST", base + "/analysis-query", self._guard(self._create))
            self.route("GET", base + r"/analysis-query/(?P<id>[^/]+)", self._guard(self._state))
            self.route("DELETE", base + r"/analysis-query/(?P<id>[^/]+)", self._guard(self._delete))
            self.route("GET", base + r"/analysis-result/(?P<id>[^/]+)", self._guard(self._result))
            self.route("GET", base + "/analysis-usage/current", self._guard(self._usage))
            self.route("POST", base + "/report-query", self._guard(self._report_create))
            self.route("GET", base + r"/report-query/(?P<id>[^/]+)", self._guard(self._report_state))
            self.route("DELETE", base + r"/report-query/(?P<id>[^/]+)", self._guard(self._report_delete))
            self.route("GET", base + "/query-objects", self._guard(self._query_objects))
            self.route("GET", base + "/segments", self._guard(lambda request: json_response(SEGMENTS)))
            self.route("GET", base + "/dynamic-timefilters", self._guard(self._dynamic_timefilters))

    # -- test controls ----------------------------------------------------------------------------------------
    def fail_next(self, count: int = 1) -> None:
        """The next `count` calculations end FAILED."""
        with self._api_lock:
            self._fail_next = count

    def expire_analytics_tokens_after(self, requests: int) -> None:
        """Every token expires after `requests` more authenticated requests (an hour passing, without waiting)."""
        with self._api_lock:
            self._api_expire_after = requests

    def running(self) -> list[str]:
        now = self.api_clock()
        with self._api_lock:
            return [
                c.correlation_id
                for c in self.calculations.values()
                if c.status(now, self.initiated_share) in ("INITIATED", "RUNNING")
            ]

    def public_url(self) -> str:
        return self.url.replace("127.0.0.1", self.public_host) + API_PREFIXES[0]

    # -- auth ---------------------------------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        values = {**request.query}
        if request.body and "form" in (request.header("content-type") or ""):
            values.update(request.form())
        self.token_requests.append({k: v for k, v in values.items() if k != "client_secret"})
        basic = request.header("authorization") or ""
        expected = base64.b64encode(f"{self.analytics.client_id}:{self.analytics.client_secret}".encode()).decode()
        if basic != f"Basic {expected}":
            return json_response({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        if values.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        scope = values.get("scope")
        if scope and self.scope_policy == "reject":
            return json_response({"error": "invalid_scope", "error_description": f"Invalid scope: {scope}"}, 400)
        if self.scope_policy == "require" and scope != LEGACY_SCOPE:
            return json_response({"error": "invalid_scope", "error_description": "scope is required"}, 400)
        token, _ = self.tokens_api.issue()
        return json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": int(self.tokens_api.ttl_seconds)}
        )

    def _guard(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            with self._api_lock:
                if self._api_expire_after is not None:
                    self._api_expire_after -= 1
                    if self._api_expire_after < 0:
                        self._api_expire_after = None
                        self.tokens_api.expire_all()
            if not self.tokens_api.valid(request.bearer):
                return json_response(
                    {"status": 403, "statusCode": "INVALID_TOKEN", "title": "Token not valid", "errors": []}, 403
                )
            try:
                return handler(request)
            except Problem as problem:
                return json_response(problem.body, problem.status)

        return guarded

    # -- analysis queries ---------------------------------------------------------------------------------------
    def _body(self, request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise Problem(422, "UNPROCESSABLE_ENTITY", "Invalid JSON", "The request body is not valid JSON") from None

    def _create(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict) or body.get("resultType") != "DATA_ONLY" or "queryObject" not in body:
            raise Problem(422, "UNPROCESSABLE_ENTITY", "Invalid request", "resultType DATA_ONLY and queryObject needed")
        calculation, cached = self._calculate(body["queryObject"])
        if cached:
            return json_response({"calculationId": calculation, "resultUrl": self._result_url(calculation)})
        return json_response(
            {"correlationId": calculation, "statusUrl": f"{self.public_url()}/analysis-query/{calculation}"}, 201
        )

    def _calculate(self, query: Any, element: int | None = None) -> tuple[str, bool]:
        """Validate and compute the query; a finished identical one is answered from the cache."""
        result = self.compute(query)
        key = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()
        now = self.api_clock()
        with self._api_lock:
            if element is None and key in self.cache:
                return self.cache[key], True
            if self.calculations_count >= self.max_calculations:
                raise Problem(
                    403, "ANALYSIS_LIMIT_EXCEEDED", "Monthly analysis limit reached", f"{self.max_calculations}"
                )
            self.calculations_count += 1
            running = sum(
                1 for c in self.calculations.values() if c.status(now, self.initiated_share) in ("INITIATED", "RUNNING")
            )
            self.peak_running = max(self.peak_running, running + 1)
            fails = self._fail_next > 0 or self._api_rng.random() < self.failure_rate
            self._fail_next = max(0, self._fail_next - 1)
            calculation = Calculation(
                correlation_id=str(uuid.uuid4()),
                calculation_id=f"{hashlib.sha256(f'{key}{now}'.encode()).hexdigest()}_{ACCOUNT_ID}",
                key=key,
                created=now,
                seconds=self.failing_seconds
                if fails and self.failing_seconds is not None
                else self.calculation_seconds,
                fails=fails,
                result=result,
                report_element=element,
            )
            self.calculations[calculation.correlation_id] = calculation
            self.created.append(query)
        return calculation.correlation_id, False

    def _state_of(self, calculation: Calculation) -> dict[str, Any]:
        status = calculation.status(self.api_clock(), self.initiated_share)
        state: dict[str, Any] = {
            "accountId": int(ACCOUNT_ID),
            "correlationId": calculation.correlation_id,
            "calculationId": calculation.calculation_id,
            "status": status,
            "details": {"lastUpdatedAt": int(wall_time() * 1000)},
        }
        if calculation.report_element is not None:
            state["details"]["reportElementId"] = calculation.report_element
        if status == "SUCCESS":
            with self._api_lock:
                self.results[calculation.calculation_id] = calculation
                if calculation.report_element is None:
                    self.cache.setdefault(calculation.key, calculation.calculation_id)
            state["resultUrl"] = self._result_url(calculation.calculation_id)
        elif calculation.report_element is not None:
            state["resultUrl"] = f"{self.public_url()}/analysis-query/{calculation.correlation_id}"
        return state

    def _result_url(self, calculation_id: str) -> str:
        return f"{self.public_url()}/analysis-result/{calculation_id}"

    def _find(self, correlation_id: str) -> Calculation:
        with self._api_lock:
            calculation = self.calculations.get(correlation_id)
        if calculation is None:
            raise Problem(404, "ANALYSIS_NOT_FOUND", "Analysis not found", correlation_id)
        return calculation

    def _state(self, request: Request) -> Response:
        assert request.match is not None
        state = self._state_of(self._find(request.match["id"]))
        with self._api_lock:
            self.served_states.append(state["status"])
        return json_response(state)

    def _abort(self, calculation: Calculation) -> None:
        if calculation.status(self.api_clock(), self.initiated_share) in ("INITIATED", "RUNNING"):
            with self._api_lock:
                calculation.aborted = True
                self.cancelled.append(calculation.correlation_id)

    def _delete(self, request: Request) -> Response:
        assert request.match is not None
        self._abort(self._find(request.match["id"]))
        return Response(200, b"", content_type="application/json")

    def _result(self, request: Request) -> Response:
        assert request.match is not None
        with self._api_lock:
            calculation = self.results.get(request.match["id"])
        if calculation is None:
            raise Problem(404, "ANALYSIS_NOT_FOUND", "Analysis not found", request.match["id"])
        return json_response(calculation.result)

    def _usage(self, request: Request) -> Response:
        today = today_utc()
        with self._api_lock:
            count = self.calculations_count
        return json_response(
            {
                "calculationsCount": count,
                "maxCalculationsAllowed": self.max_calculations,
                "month": today.month,
                "year": today.year,
            }
        )

    # -- reports ------------------------------------------------------------------------------------------------
    def _report_create(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise Problem(422, "UNPROCESSABLE_ENTITY", "Invalid JSON")
        try:
            report_id = int(body.get("id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Problem(400, "BAD_REQUEST", "Report id missing") from None
        stored = REPORTS.get(report_id)
        configuration = body.get("configuration") or {}
        elements = configuration.get("reportElements") or (stored or {}).get("elements")
        if not elements:
            raise Problem(404, "REPORT_NOT_FOUND", "Report not found", str(report_id))
        wanted = {int(e) for e in body.get("elementIds") or []}
        time_filter = body.get("timeFilter") or configuration.get("timeFilter")
        correlations = []
        for element in elements:
            if element.get("type", "ANALYSIS") != "ANALYSIS" or (wanted and int(element["id"]) not in wanted):
                continue
            query = json.loads(json.dumps(element.get("configJson") or {}))
            container = query.setdefault("predefinedContainer", {"filters": [], "containers": []})
            if time_filter:
                container["filters"] = [time_filter] + [
                    f for f in container.get("filters") or [] if f.get("name") not in ("time_range", "time_dynamic")
                ]
            correlation, _ = self._calculate(query, element=int(element["id"]))
            correlations.append(correlation)
        report_correlation = str(uuid.uuid4())
        with self._api_lock:
            self.report_queries[report_correlation] = correlations
        return json_response(self._report_state_of(report_correlation, report_id, stored))

    def _report_state_of(self, report_correlation: str, report_id: int, stored: Any) -> dict[str, Any]:
        with self._api_lock:
            correlations = list(self.report_queries[report_correlation])
        states = [self._state_of(self._find(c)) for c in correlations]
        statuses = {s["status"] for s in states}
        overall = next((s for s in ("FAILED", "ABORTED", "RUNNING", "INITIATED") if s in statuses), "SUCCESS")
        return {
            "reportCorrelationId": report_correlation,
            "status": overall,
            "details": {
                "lastUpdatedAt": int(wall_time() * 1000),
                "reportId": report_id,
                "reportTitle": (stored or {}).get("title", ""),
            },
            "queryStates": states,
        }

    def _report_state(self, request: Request) -> Response:
        assert request.match is not None
        report_correlation = request.match["id"]
        with self._api_lock:
            known = report_correlation in self.report_queries
        if not known:
            raise Problem(404, "REPORT_NOT_FOUND", "Report query not found", report_correlation)
        first = (
            self._find(self.report_queries[report_correlation][0]) if self.report_queries[report_correlation] else None
        )
        report_id = (
            1001
            if first is None
            else next(
                (rid for rid, r in REPORTS.items() if any(e["id"] == first.report_element for e in r["elements"])), 0
            )
        )
        return json_response(self._report_state_of(report_correlation, report_id, REPORTS.get(report_id)))

    def _report_delete(self, request: Request) -> Response:
        assert request.match is not None
        with self._api_lock:
            correlations = list(self.report_queries.get(request.match["id"]) or [])
        for correlation in correlations:
            self._abort(self._find(correlation))
        return Response(200, b"", content_type="application/json")

    # -- metadata -----------------------------------------------------------------------------------------------
    def _query_objects(self, request: Request) -> Response:
        german = request.query.get("language") == "de"

        def title(text: str) -> str:
            return GERMAN.get(text, text) if german else text

        dimensions = [
            {
                "name": name,
                "dataType": "STRING",
                "title": title(info["title"]),
                "elementType": "DEFAULT_DIMENSION",
                "context": info["context"],
                "mapping": info.get("mapping") or {},
                "timeFormatPattern": info.get("timeFormatPattern"),
                "sortable": True,
            }
            for name, info in DIMENSIONS.items()
        ]
        metrics = [
            {
                "name": name,
                "dataType": "NUMBER",
                "title": title(info["title"]),
                "elementType": "DEFAULT_METRIC",
                "metricDisplayType": info["metricDisplayType"],
                "context": info["context"],
                "sortable": True,
            }
            for name, info in METRICS.items()
        ]
        return json_response({"metrics": metrics, "dimensions": dimensions})

    def _dynamic_timefilters(self, request: Request) -> Response:
        return json_response(
            [
                {
                    "title": name.replace("_", " ").capitalize(),
                    "name": name,
                    "dynamicFilter": {
                        "name": "time_dynamic",
                        "connector": "AND",
                        "filterPredicate": "LIKE",
                        "value1": name,
                        "value2": "",
                        "context": "NONE",
                    },
                }
                for name in DYNAMIC_FILTERS
            ]
        )

    # -- the calculation ------------------------------------------------------------------------------------------
    def _days(self, query: dict[str, Any]) -> list[dt.date]:
        filters = (query.get("predefinedContainer") or {}).get("filters") or []
        for item in filters:
            if item.get("name") == "time_range":
                start = dt.datetime.strptime(str(item.get("value1")), "%Y-%m-%d %H:%M:%S")
                stop = dt.datetime.strptime(str(item.get("value2")), "%Y-%m-%d %H:%M:%S")  # exclusive
                first, last = start.date(), (stop - dt.timedelta(seconds=1)).date()
                return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
            if item.get("name") == "time_dynamic":
                today = self.analytics.last_day + dt.timedelta(days=1)
                spans = {"today": (0, 0), "yesterday": (1, 1), "last_7_days": (7, 1), "last_28_days": (28, 1)}
                back, to = spans.get(str(item.get("value1")), (7, 1))
                return [today - dt.timedelta(days=d) for d in range(back, to - 1, -1)]
        raise Problem(
            400,
            "BAD_REQUEST",
            "Analysis query is invalid",
            "Every query needs a time filter",
            [{"name": "TimeFilterMissing", "parameters": {"names": [], "aliases": [], "arrangeTypes": []}}],
        )

    @staticmethod
    def _fact_matches(fact: dict[str, Any], container: dict[str, Any]) -> bool:
        """Dimension filters (EQUAL/UNEQUAL/LIKE/NOT_LIKE, `*` wildcards), AND-ed; nested containers honour IN."""
        for item in container.get("filters") or []:
            name = item.get("name")
            if name in ("time_range", "time_dynamic") or name not in DIMENSIONS:
                continue
            value, wanted = str(fact[name]), str(item.get("value1") or "")
            predicate = item.get("filterPredicate")
            hit = {
                "EQUAL": value == wanted,
                "UNEQUAL": value != wanted,
                "LIKE": fnmatch.fnmatchcase(value, wanted) or value == wanted,
                "NOT_LIKE": not fnmatch.fnmatchcase(value, wanted),
            }.get(str(predicate), True)
            if not hit:
                return False
        for inner in container.get("containers") or []:
            inside = AnalyticsApi._fact_matches(fact, inner)
            if inside != (inner.get("inOrNotIn", "IN") == "IN"):
                return False
        return True

    def _check_names(self, query: dict[str, Any]) -> None:
        names = [c.get("name") for c in query.get("columns") or []]
        if "columns" not in query:
            names = [query.get("metricName"), *([query["dimensionName"]] if query.get("dimensionName") else [])]

        def container_names(container: dict[str, Any]) -> list[str]:
            found = [f.get("name") for f in container.get("filters") or []]
            for inner in container.get("containers") or []:
                found += container_names(inner)
            return found

        names += container_names(query.get("predefinedContainer") or {})
        unknown = [
            n for n in names if n not in DIMENSIONS and n not in METRICS and n not in ("time_range", "time_dynamic")
        ]
        if unknown:
            raise unmapped([str(n) for n in dict.fromkeys(unknown)])

    def truth(self, dimensions: Sequence[str], metrics: Sequence[str], days: Sequence[dt.date]) -> dict[tuple, dict]:
        """What a query of `dimensions` x `metrics` over `days` adds up to (no filters): tests compare with it."""
        groups: dict[tuple, dict[str, float]] = {}
        for day in days:
            for fact in self.analytics.facts(day):
                key = tuple(fact[d] for d in dimensions)
                sums = groups.setdefault(key, dict.fromkeys(metrics, 0))
                for metric in metrics:
                    sums[metric] += fact[metric]
        return groups

    def compute(self, query: Any) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise Problem(422, "UNPROCESSABLE_ENTITY", "Invalid JSON", "queryObject must be an object")
        if "columns" not in query and query.get("type") not in ("KPI", "SPARKLINE"):
            raise Problem(422, "UNPROCESSABLE_ENTITY", "Invalid JSON", "queryObject needs columns")
        self._check_names(query)
        days = self._days(query)
        container = query.get("predefinedContainer") or {}
        facts = [f for day in days for f in self.analytics.facts(day) if self._fact_matches(f, container)]
        if "columns" not in query:
            return self._kpi(query, facts, days)
        columns = query["columns"]
        dims = [c["name"] for c in columns if c["name"] in DIMENSIONS]
        metrics = [c["name"] for c in columns if c["name"] in METRICS]
        groups: dict[tuple, dict[str, float]] = {}
        for fact in facts:
            sums = groups.setdefault(tuple(fact[d] for d in dims), dict.fromkeys(metrics, 0))
            for metric in metrics:
                sums[metric] += fact[metric]
        if dims:
            first = next(c for c in columns if c["name"] == dims[0])
            upper = first.get("upperLimit")
            lower = int(first.get("lowerLimit") or 1)
            if upper is not None:  # the rank window on the first dimension, ranked by the first metric
                totals: dict[Any, float] = {}
                for key, sums in groups.items():
                    totals[key[0]] = totals.get(key[0], 0) + (sums[metrics[0]] if metrics else 1)
                ranked = sorted(totals, key=lambda v: (-totals[v], v))[lower - 1 : int(upper)]
                groups = {k: v for k, v in groups.items() if k[0] in set(ranked)}
        ordered = sorted(groups.items(), key=lambda item: item[0])
        rows: list[list[Any]] = []
        positions: list[int] = []

        def metric_cells(sums: dict[str, float], index: int) -> list[Any]:
            cells: list[Any] = []
            for metric in metrics:
                value = round(sums[metric], 2)
                if value == 0:
                    cells.append(None)  # the API answers null where the UI shows 0
                elif index % 5 == 3:
                    cells.append(f"{value:g}" if metric != "order_value" else f"{value:.2f}")  # numeric strings
                else:
                    cells.append(int(value) if float(value).is_integer() and metric != "order_value" else value)
            return cells

        def subtotal(rows_of_group: list[tuple[tuple, dict[str, float]]]) -> dict[str, float]:
            sums = dict.fromkeys(metrics, 0.0)
            for _, values in rows_of_group:
                for metric in metrics:
                    sums[metric] += values[metric]
            return sums

        group: list[tuple[tuple, dict[str, float]]] = []
        for position, (key, sums) in enumerate(ordered):
            rows.append([*key, *metric_cells(sums, position)])
            group.append((key, sums))
            following = ordered[position + 1][0] if position + 1 < len(ordered) else None
            if len(dims) >= 2 and (following is None or following[0] != key[0]):
                positions.append(len(rows))
                rows.append([key[0], *([None] * (len(dims) - 1)), *metric_cells(subtotal(group), 0)])
                group = []
        if dims:
            positions.append(len(rows))
            rows.append([*([None] * len(dims)), *metric_cells(subtotal(ordered), 0)])
        headers: list[dict[str, Any]] = []
        for name in [*dims, *metrics]:
            metric = name in METRICS
            info = METRICS.get(name) or DIMENSIONS[name]
            headers.append(
                {
                    "name": name,
                    "alias": f"{info.get('arrangeType', name)}|{len(headers)}",
                    "arrangeType": info.get("arrangeType", name),
                    "metric": metric,
                    "dimension": not metric,
                    "sumPositions": positions if metric else [],
                    "pivotGroups": [],
                    "sortIndex": None,
                    "sortDirection": None,
                }
            )
        return self._envelope(rows, headers, len(ordered), days)

    def _kpi(self, query: dict[str, Any], facts: list[dict[str, Any]], days: list[dt.date]) -> dict[str, Any]:
        metric = str(query["metricName"])
        total = sum(f[metric] for f in facts)
        headers = [
            {"name": "time", "alias": "time|0", "arrangeType": "time", "metric": False, "dimension": True,
             "sumPositions": [], "pivotGroups": []},
            {"name": metric, "alias": f"{metric}|1", "arrangeType": metric, "metric": True, "dimension": False,
             "sumPositions": [0], "pivotGroups": []},
        ]  # fmt: skip
        return self._envelope([["0000000000", round(total, 2) or None]], headers, 1, days)

    @staticmethod
    def _envelope(rows: list[list[Any]], headers: list[dict[str, Any]], data_rows: int, days: list[dt.date]) -> dict:
        last = days[-1] + dt.timedelta(days=1) if days else today_utc()
        return {
            "calculationDataType": "RAW_DATA",
            "rows": rows,
            "rowCount": len(rows),
            "rowCountTotal": data_rows,
            "headers": headers,
            "columnCount": len(headers),
            "warnings": [],
            "timerange": [f"{days[0] if days else last} 00:00:00", f"{last} 00:00:00"],
            "timestamp": int(wall_time() * 1000),
        }


class WebtrekkAnalyticsSimulator(AnalyticsApi, SimulatorServer):
    vendor = "webtrekk-analytics"

    def __init__(
        self, data: AnalyticsData | None = None, faults: Faults | None = None, *, port: int = 0, **options: Any
    ) -> None:
        SimulatorServer.__init__(self, faults, port=port)
        self.install_analytics(data, **options)


class WebtrekkDemoSimulator(AnalyticsApi, WebtrekkSimulator):
    """JSON-RPC and the Analytics API on one port, for `clickhaul demo` and `clickhaul simulate webtrekk`."""

    def __init__(self, *, port: int = 0) -> None:
        WebtrekkSimulator.__init__(self, port=port)
        self.install_analytics(AnalyticsData(last_day=self.data.last_day), calculation_seconds=1.0)


DEMO_QUERY = {
    "columns": [
        {"name": "time_days", "scope": "OBJECT", "context": "NONE", "sortDirection": "ASCENDING", "sortIndex": 0},
        {"name": "browser_fullName", "scope": "OBJECT", "context": "SESSION", "variant": "NORMAL", "upperLimit": 20},
        {"name": "visits", "scope": "OBJECT", "context": "SESSION", "columnPeriod": "ANALYSIS", "variant": "NORMAL"},
        {"name": "pages_pageImpressions", "scope": "OBJECT", "context": "PAGE", "variant": "NORMAL"},
    ],
    "variant": "LIST",
    "predefinedContainer": {
        "filters": [{"name": "time_dynamic", "filterPredicate": "LIKE", "value1": "last_7_days", "value2": ""}],
        "containers": [],
    },
}


def demo_plan(simulator: WebtrekkDemoSimulator) -> DemoPlan:
    """The JSON-RPC tour plus one Analytics API query (days x browsers) for the same day."""
    plan = jsonrpc_demo_plan(simulator)
    data = simulator.analytics
    return DemoPlan(
        env={
            **plan.env,
            "SOURCES__WEBTREKK__ANALYTICS_BASE_URL": simulator.url + API_PREFIXES[0],
            "SOURCES__WEBTREKK__ANALYTICS_TOKEN_URL": simulator.url + TOKEN_PATHS[0],
            "SOURCES__WEBTREKK__ANALYTICS_CLIENT_ID": data.client_id,
            "SOURCES__WEBTREKK__ANALYTICS_CLIENT_SECRET": data.client_secret,
            "SOURCES__WEBTREKK__ANALYTICS_POLL_INITIAL_SECONDS": "0.5",
        },
        start=plan.start,
        end=plan.end,
        source_kwargs={**plan.source_kwargs, "analytics_queries": [{"name": "browsers_daily", "query": DEMO_QUERY}]},
        dbt_vars=plan.dbt_vars,
    )


__all__ = [
    "ACCOUNT_ID",
    "API_PREFIXES",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "TOKEN_PATHS",
    "AnalyticsData",
    "WebtrekkAnalyticsSimulator",
    "WebtrekkDemoSimulator",
    "demo_plan",
]
