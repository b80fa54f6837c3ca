"""A Webtrekk JSON-RPC 1.1 server on 127.0.0.1: every method of the vendor document, deterministic data, idle
token expiry and both rate-limit windows enforced as documented (HTTP 200 refusals, 1 request per period once
tripped). Window lengths are configurable so tests can run the limits scaled down.

Data: category exports of pages (25,500 rows by default, so a 10,000-row page size needs three pages), media,
products, customers and campaigns; per-day traffic facts (page x browser) that analyses and reports aggregate.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simulators.harness import Faults, Request, Response, SimulatorServer, TokenStore, json_response, stable_seed
from simulators.registry import DemoPlan
from simulators.traffic import TrafficDays, day_rng
from sources.common.clock import utc_now

ENDPOINT = "/cgi-bin/wt/JSONRPC.cgi"
DEMO_CUSTOMER_ID = "111111111111111"
DEMO_LOGIN = "clickhaul-demo"
DEMO_PASSWORD = "webtrekk-demo-pass-7c1e4b9a2d"
DOCUMENTED_LIMITS: tuple[tuple[int, float], ...] = ((5, 10.0), (120, 600.0))
LEGACY_METHODS = frozenset(
    {
        "getAnalysisData",
        "getReportData",
        "getAnalysisObjectsAndMetricsList",
        "getCustomReportsList",
        "getDynamicTimeIntervalList",
    }
)
UPLOAD_TYPES = frozenset(
    {
        "content_categories",
        "content_categories_time",
        "customer_categories",
        "customer_categories_deid",
        "media_categories",
        "basket_categories",
        "basket_categories_time",
        "product_categories",
        "campaigns",
        "campaigns_time",
        "ecommerce_parameters",
        "time_categories",
        "session_parameter_tv",
    }
)
DATED_TYPES = frozenset(
    {"content_categories_time", "basket_categories_time", "campaigns_time", "ecommerce_parameters", "time_categories"}
)
FILTERABLE_TYPES = frozenset({"content_categories", "content_categories_time", "media_categories", "basket_categories"})
CAMPAIGN_TYPES = frozenset({"campaigns", "campaigns_time"})
ECOMMERCE_PARAMETERS = ("Shipping method", "Payment method", "Coupon code")
SECTIONS = ["news", "sport", "travel", "shop", "help", "blog", "video", "jobs", "events", "about"]
BROWSERS = ["Chrome 131", "Firefox 132", "Safari 18", "Edge 130", "Opera 114"]
BROWSER_WEIGHTS = [50, 15, 22, 10, 3]

# Localised titles (the login's language): analysis objects, metrics, footers.
TITLES: dict[str, dict[str, str]] = {
    "de": {
        "Pages": "Seiten",
        "Browsers": "Browser",
        "Days": "Tage",
        "Visitors": "Besucher",
        "Total": "Gesamt",
        "Average": "Durchschnitt",
        "Key figure": "Kennzahl",
    },
    "fr": {"Pages": "Pages", "Days": "Jours", "Visitors": "Visiteurs", "Total": "Total", "Average": "Moyenne"},
}
OBJECTS = ("Pages", "Browsers", "Days")
METRICS = ("Page Impressions", "Visits", "Visitors")
CUSTOM_METRICS = ("Engagement", "Page Impressions on index pages", "Visits Google")
DYNAMIC_TIMES = (
    ("Today", "today"),
    ("Yesterday", "yesterday"),
    ("Last 7 days", "last_7_days"),
    ("Last 30 days", "last_30_days"),
    ("This month", "this_month"),
    ("Last month", "last_month"),
)
REPORTS: dict[str, dict[str, Any]] = {
    "Overview Report": {
        "group": "",
        "author": "John Doe",
        "analyses": [
            {"analysisObjects": [{"title": "Pages"}], "metrics": [{"title": "Page Impressions"}, {"title": "Visits"}]},
            {
                "analysisObjects": [{"title": "Browsers"}, {"title": "Pages"}],
                "metrics": [{"title": "Page Impressions"}, {"title": "Visitors"}],
                "rowLimit": 40,
            },
            {"type": "scorecard"},
            {"type": "status"},
        ],
    },
    "E-Commerce Dashboard": {
        "group": "Dashboards",
        "author": "Jane Roe",
        "analyses": [{"analysisObjects": [{"title": "Browsers"}], "metrics": [{"title": "Visits"}]}],
    },
    "Clickstream": {
        "group": "",
        "author": "John Doe",
        "analyses": [{"analysisObjects": [{"title": "Pages"}], "metrics": [{"title": "Page Impressions"}]}],
    },
}


def localise(title: str, language: str) -> str:
    return TITLES.get(language, {}).get(title, title)


def dotted(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


@dataclass
class WebtrekkData(TrafficDays):
    """The simulated account. Traffic days run from `last_day - days + 1` to `last_day` (UTC)."""

    seed: int = 42
    customer_id: str = DEMO_CUSTOMER_ID
    login: str = DEMO_LOGIN
    password: str = DEMO_PASSWORD
    pages: int = 25_500
    media: int = 400
    products: int = 3_000
    customers: int = 2_000
    campaigns: int = 600
    traffic_pages: int = 300  # pages with traffic (analyses aggregate these)
    pages_per_day: tuple[int, int] = (120, 180)
    export_row_limit: int = 10_000  # rows per exportData/importData call, the API's default

    def accounts(self) -> list[dict[str, str]]:
        return [
            {"customerId": self.customer_id, "title": "Demo shop"},
            {"customerId": str(int(self.customer_id) + 1), "title": "Demo shop (staging)"},
        ]


@dataclass(frozen=True)
class Row:
    """An export row plus the hidden attributes the filters work on."""

    cells: tuple[str, ...]
    recorded: dt.date
    has_data: bool = True
    active: bool = True
    source_kind: str = "regular"
    start: dt.date | None = None
    stop: dt.date | None = None


class Catalogue:
    """Every category export of the account, generated from the seed."""

    def __init__(self, data: WebtrekkData) -> None:
        self.data = data
        self.page_names = [
            f"{SECTIONS[i % len(SECTIONS)]}/{'article' if i % 3 else 'index'}-{i:05d}" for i in range(data.pages)
        ]
        self._cache: dict[str, tuple[list[str], list[Row]]] = {}
        self._lock = threading.Lock()

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(stable_seed(self.data.seed, *parts))

    def _recorded(self, rng: random.Random) -> dt.date:
        return self.data.first_day - dt.timedelta(days=rng.randrange(400))

    def static(self, kind: str) -> tuple[list[str], list[Row]]:
        with self._lock:
            if kind not in self._cache:
                self._cache[kind] = self._build(kind)
            return self._cache[kind]

    def _build(self, kind: str) -> tuple[list[str], list[Row]]:
        rng = self._rng(kind)
        rows: list[Row] = []
        cells: tuple[str, ...]
        if kind == "content_categories":
            header = [
                "Pages",
                "Category (Text) \u2013 Main category",
                "Category (Text) \u2013 Page type",
                "Category (Figure) \u2013 Word count",
            ]
            for index, page in enumerate(self.page_names):
                empty = rng.random() < 0.05
                section = SECTIONS[index % len(SECTIONS)]
                cells = (
                    ("", "", "")
                    if empty
                    else (section, rng.choice(["article", "overview", "gallery"]), str(rng.randint(80, 4000)))
                )
                rows.append(Row((page, *cells), self._recorded(rng), has_data=not empty))
        elif kind == "page_urls":
            header = ["Pages", "Page URL"]
            rows = [
                Row((page, f"https://www.example.com/{page}.html"), self._recorded(rng)) for page in self.page_names
            ]
        elif kind in ("media_categories", "media_playtime"):
            header = (
                ["Media", "Category (Text) \u2013 Media type", "Category (Figure) \u2013 Duration"]
                if kind == "media_categories"
                else ["Media", "Media Playtime (Figure)"]
            )
            for index in range(self.data.media):
                media_type, seconds = rng.choice(["video", "audio", "live"]), str(rng.randint(20, 3600))
                cells = (media_type, seconds) if kind == "media_categories" else (seconds,)
                rows.append(Row((f"media-{index:04d}", *cells), self._recorded(rng)))
        elif kind in ("basket_categories", "product_urls"):
            header = (
                ["Products", "Category (Text) \u2013 Product group", "Category (Figure) \u2013 Price"]
                if kind == "basket_categories"
                else ["Products", "Product URL"]
            )
            for index in range(self.data.products):
                name = f"SKU-{index:05d}"
                cells = (
                    (rng.choice(["shoes", "shirts", "bags", "hats"]), f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}")
                    if kind == "basket_categories"
                    else (f"https://shop.example.com/p/{name.lower()}",)
                )
                rows.append(Row((name, *cells), self._recorded(rng)))
        elif kind == "customer_categories":
            header = ["Customer", "URM \u2013 Category Name", "URM - Gender"]
            for index in range(self.data.customers):
                cells = (rng.choice(["Caras 1116", "Loyal", "New"]), rng.choice(["Woman", "Man", "Unknown"]))
                rows.append(Row((f"{500000 + index}", *cells), self._recorded(rng)))
        elif kind == "campaigns":
            header = [
                "Advertising Media Title*",
                "DataSourceType (page, mediacode, action, seo, referrer)",
                "DataSourceValue*",
                "Campaign start",
                "Campaign stop",
                "Active",
            ]
            for index in range(self.data.campaigns):
                start = self.data.first_day - dt.timedelta(days=rng.randrange(300))
                stop = start + dt.timedelta(days=rng.randrange(10, 200))
                active = stop >= self.data.last_day
                kind_of_source = rng.choices(["regular", "interfaces", "secondary"], [80, 12, 8])[0]
                cells = (
                    f"Campaign {index:04d}",
                    rng.choice(["mediacode", "page", "referrer", "seo"]),
                    f"wt_mc=cmp{index:04d}",
                    start.isoformat(),
                    stop.isoformat(),
                    "1" if active else "0",
                )
                rows.append(
                    Row(cells, self._recorded(rng), active=active, source_kind=kind_of_source, start=start, stop=stop)
                )
        else:
            raise KeyError(kind)
        return header, sorted(rows, key=lambda row: row.cells[0])

    def dated(self, kind: str, start: dt.date, end: dt.date, title: str | None) -> tuple[list[str], list[Row]]:
        """Time-dependent exports: the values valid in startDate..endDate (deterministic per range)."""
        rng = self._rng(kind, start.isoformat(), end.isoformat(), title or "")
        rows: list[Row] = []
        if kind == "content_categories_time":
            header = ["Pages", "Category (Text) \u2013 Promotion"]
            for page in self.page_names[:300]:
                rows.append(Row((page, rng.choice(["none", "summer sale", "newsletter", "tv spot"])), start))
        elif kind == "basket_categories_time":
            header = ["Products", "Category (Text) \u2013 Discount"]
            for index in range(200):
                rows.append(Row((f"SKU-{index:05d}", rng.choice(["0%", "10%", "25%"])), start))
        elif kind == "campaigns_time":
            header = ["Advertising Media Title*", "DataSourceValue*", "Category (Text) \u2013 Budget class"]
            _, campaigns = self.static("campaigns")
            for row in campaigns:
                if row.start and row.stop and row.start <= end and row.stop >= start:
                    rows.append(
                        Row(
                            (row.cells[0], row.cells[2], rng.choice(["A", "B", "C"])),
                            start,
                            active=row.active,
                            source_kind=row.source_kind,
                            start=row.start,
                            stop=row.stop,
                        )
                    )
        elif kind == "ecommerce_parameters":
            header = ["Order", str(title)]
            day = start
            while day <= end:
                day_rng = self._rng(kind, title or "", day.isoformat())
                for number in range(day_rng.randint(20, 60)):
                    value = day_rng.choice(
                        {
                            "Shipping method": ["DHL", "UPS", "pickup"],
                            "Payment method": ["card", "paypal", "invoice"],
                        }.get(str(title), ["SAVE10", "WELCOME", ""])
                    )
                    rows.append(Row((f"O{day:%Y%m%d}-{number:04d}", value), day))
                day += dt.timedelta(days=1)
        elif kind == "time_categories":
            header = ["Day", "Category (Text) \u2013 Weather", "Category (Text) \u2013 Holiday"]
            day = start
            while day <= end:
                day_rng = self._rng(kind, day.isoformat())
                holiday = "yes" if day.weekday() == 6 or (day.month, day.day) in ((1, 1), (12, 25)) else "no"
                rows.append(Row((day.isoformat(), day_rng.choice(["sunny", "rain", "snow", "cloudy"]), holiday), day))
                day += dt.timedelta(days=1)
        else:
            raise KeyError(kind)
        return header, sorted(rows, key=lambda row: row.cells[0])


@dataclass(frozen=True)
class Fact:
    day: dt.date
    page: str
    browser: str
    impressions: int
    visits: int
    visitors: int


class Traffic:
    """Per-day facts (page x browser) that every analysis and report aggregates."""

    def __init__(self, data: WebtrekkData, pages: Sequence[str]) -> None:
        self.data = data
        self.pages = list(pages[: data.traffic_pages])
        self._cache = lru_cache(maxsize=1024)(self._generate)

    def facts(self, day: dt.date) -> tuple[Fact, ...]:
        return self._cache(day) if self.data.covers(day) else ()

    def _generate(self, day: dt.date) -> tuple[Fact, ...]:
        rng = day_rng(self.data.seed, "traffic", day)
        low, high = self.data.pages_per_day
        pages = rng.sample(self.pages, min(len(self.pages), rng.randint(low, high)))
        facts = []
        for page in pages:
            for browser, weight in zip(BROWSERS, BROWSER_WEIGHTS, strict=True):
                if rng.random() < weight / 60:
                    impressions = rng.randint(1, 40 * weight)
                    visits = rng.randint(1, impressions)
                    facts.append(Fact(day, page, browser, impressions, visits, rng.randint(1, visits)))
        return tuple(facts)

    def range(self, start: dt.date, stop: dt.date) -> list[Fact]:
        found: list[Fact] = []
        day = start
        while day <= stop:
            found.extend(self.facts(day))
            day += dt.timedelta(days=1)
        return found


class RpcError(Exception):
    def __init__(self, message: str, code: int = 501, name: str = "JSONRPCError") -> None:
        super().__init__(message)
        self.message, self.code, self.name = message, code, name


class LimitWindow:
    """One documented limit: more than `requests` within `seconds` trips it; while tripped the server accepts one
    request per `seconds` until the sending rate is back under the limit. Every request received counts, refused or
    not (the long-term limit also counts requests the short-term one refused)."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.requests = requests
        self.seconds = seconds
        self.received: deque[float] = deque()
        self.tripped = False
        self.last_accepted = float("-inf")

    def allows(self, now: float) -> bool:
        while self.received and self.received[0] <= now - self.seconds:
            self.received.popleft()
        recent = len(self.received)
        self.received.append(now)
        if self.tripped and recent < self.requests:
            self.tripped = False  # the rate is back at the allowed level
        if not self.tripped:
            if recent < self.requests:
                return True
            self.tripped = True
            return False
        return now - self.last_accepted >= self.seconds  # tripped: one request per period

    def message(self) -> str:
        seconds = f"{self.seconds:g}"
        return f"To many requests ({self.requests}) within {seconds} seconds."


class WebtrekkSimulator(SimulatorServer):
    vendor = "webtrekk"

    def __init__(
        self,
        data: WebtrekkData | None = None,
        faults: Faults | None = None,
        *,
        rate_limits: Sequence[tuple[int, float]] = DOCUMENTED_LIMITS,
        token_idle_seconds: float = 3600.0,
        retired: bool = False,
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
    ) -> None:
        super().__init__(faults, port=port)
        self.data = data or WebtrekkData()
        self.catalogue = Catalogue(self.data)
        self.traffic = Traffic(self.data, self.catalogue.page_names)
        self.tokens = TokenStore(token_idle_seconds, clock)
        self.clock = clock
        self.retired = retired
        self._limit_lock = threading.Lock()
        self.set_rate_limits(rate_limits)
        self._token_language: dict[str, str] = {}
        self.imported: dict[str, dict[str, list[str]]] = defaultdict(dict)
        self.import_headers: dict[str, list[str]] = {}
        self.import_calls: list[tuple[str, int]] = []
        self.tv_deletions: list[tuple[str, str]] = []
        self.calls: list[str] = []  # methods answered with a result, in order
        self.logins = 0
        self.logouts = 0
        self.refusals = 0
        self.arrivals: list[tuple[float, bool]] = []  # (monotonic time, accepted) of every JSON-RPC request
        self._refuse_next = 0
        self._refuse_method: str | None = None
        self._expire_after: int | None = None
        self.route("POST", ENDPOINT, self.handle)

    # -- test controls --------------------------------------------------------------------------------------
    def set_rate_limits(self, rate_limits: Sequence[tuple[int, float]]) -> None:
        with self._limit_lock:
            self.windows = [LimitWindow(int(requests), float(seconds)) for requests, seconds in rate_limits]

    def refuse_next(self, count: int = 1, method: str | None = None) -> None:
        """The next `count` requests (of `method`, if given) are refused as over the first window, as when another
        client of the same user spent the allowance."""
        with self._limit_lock:
            self._refuse_next, self._refuse_method = count, method

    def expire_tokens_after(self, calls: int) -> None:
        """Expire every token after `calls` more token-bearing requests (an idle hour, without waiting it)."""
        with self._limit_lock:
            self._expire_after = calls

    # -- protocol ---------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._error(RpcError("Parse error: request body is not JSON"))
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return self._error(RpcError("Invalid request: expected {version, method, params}"))
        method = body["method"].strip()
        refusal = self._rate_limit(method)
        if refusal is not None:
            return refusal
        params = body.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise RpcError("Invalid params: expected an object")
            result = self.call(method, params)
        except RpcError as error:
            return self._error(error)
        self.calls.append(method)
        return json_response({"version": "1.1", "result": result})

    def _rate_limit(self, method: str) -> Response | None:
        with self._limit_lock:
            now = self.clock()
            verdicts = [window.allows(now) for window in self.windows]
            refused_by = next((w for w, ok in zip(self.windows, verdicts, strict=True) if not ok), None)
            injected = self._refuse_method in (None, method)
            if refused_by is None and self._refuse_next > 0 and injected and self.windows:
                self._refuse_next -= 1
                refused_by = self.windows[0]
            accepted = refused_by is None
            self.arrivals.append((now, accepted))
            if accepted:
                for window in self.windows:
                    window.last_accepted = now
                return None
            self.refusals += 1
        assert refused_by is not None
        # The vendor's refusal: HTTP 200, `code` beside `error`, and a form content type.
        body = {"version": "1.1", "error": {"name": "JSONRPCError", "message": refused_by.message()}, "code": 501}
        return Response(200, json.dumps(body), content_type="application/x-www-form-urlencoded")

    def _error(self, error: RpcError) -> Response:
        return json_response(
            {"version": "1.1", "error": {"name": error.name, "message": error.message, "code": error.code}}
        )

    def _session(self, params: dict[str, Any]) -> str:
        """The caller's language: by token, or by login/pass/customerId given instead of a token."""
        token = params.get("token")
        if token:
            with self._limit_lock:
                if self._expire_after is not None:
                    self._expire_after -= 1
                    if self._expire_after < 0:
                        self._expire_after = None
                        self.tokens.expire_all()
            if not self.tokens.valid(str(token)):
                raise RpcError("Authorization failed")
            self.tokens.touch(str(token))  # valid while used at least once per idle period
            return self._token_language.get(str(token), "en")
        self._credentials(params, customer=True)
        return str(params.get("language") or "en")

    def _credentials(self, params: dict[str, Any], customer: bool) -> None:
        data = self.data
        if params.get("login") != data.login or params.get("pass") != data.password:
            raise RpcError("Authorization failed")
        if customer and str(params.get("customerId")) not in {a["customerId"] for a in data.accounts()}:
            raise RpcError("Authorization failed")

    def call(self, method: str, params: dict[str, Any]) -> Any:
        if self.retired and method in LEGACY_METHODS:
            raise RpcError(f"Method not found: {method}", code=404)
        if method == "getConnectionTest":
            return "Connection successful"
        if method == "login":
            self._credentials(params, customer=True)
            language = str(params.get("language") or "en")
            if language not in ("de", "en", "fr", "es", "cn"):
                raise RpcError(f"Unknown language: {language}")
            token, _ = self.tokens.issue()
            self._token_language[token] = language
            self.logins += 1
            return token
        if method == "logout":
            token = str(params.get("token") or "")
            if not self.tokens.valid(token):
                return "0"
            self.tokens.revoke(token)
            self.logouts += 1
            return "1"
        if method == "getAccountList":
            self._credentials(params, customer=False)
            return self.data.accounts()
        if method == "deleteTvData":
            self._credentials(params, customer=True)
            start, stop = (self._timestamp(params, key) for key in ("time_start", "time_stop"))
            if stop < start:
                raise RpcError("time_stop is before time_start")
            self.tv_deletions.append((params["time_start"], params["time_stop"]))
            return ["Deleting Tv Data initiated"]
        language = self._session(params)
        if method == "getAnalysisObjectsAndMetricsList":
            return {
                "analysisObjects": list(OBJECTS),
                "metrics": list(METRICS),
                "customMetrics": list(CUSTOM_METRICS),
            }
        if method == "getCustomReportsList":
            return [{"reportGroup": report["group"], "title": title} for title, report in REPORTS.items()]
        if method == "getDynamicTimeIntervalList":
            return [{"name": name, "code": code} for name, code in DYNAMIC_TIMES]
        if method == "exportData":
            return self.export(params)
        if method == "importData":
            return self.import_data(params)
        if method == "getAnalysisData":
            config = params.get("analysisConfig")
            if not isinstance(config, dict):
                raise RpcError("Missing parameter: analysisConfig")
            return self.analysis(config, language)
        if method == "getReportData":
            return self.report(params, str(params.get("language") or language))
        raise RpcError(f"Method not found: {method}", code=404)

    @staticmethod
    def _timestamp(params: dict[str, Any], key: str) -> dt.datetime:
        try:
            return dt.datetime.strptime(str(params.get(key) or ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise RpcError(f"Invalid parameter {key}: format YYYY-MM-DD HH:mm:ss") from None

    @staticmethod
    def _date(value: Any, key: str) -> dt.date:
        try:
            return dt.date.fromisoformat(str(value or "")[:10])
        except ValueError:
            raise RpcError(f"Invalid parameter {key}: format YYYY-MM-DD") from None

    # -- exportData / importData ------------------------------------------------------------------------------
    def export_table(self, params: dict[str, Any]) -> tuple[list[str], list[Row]]:
        """Every row an export with these parameters selects, unpaged: what tests compare against."""
        kind = str(params.get("type") or "")
        if kind in DATED_TYPES:
            if not params.get("startDate") or not params.get("endDate"):
                raise RpcError(f"Parameters startDate and endDate are mandatory for type {kind}")
            start, end = self._date(params["startDate"], "startDate"), self._date(params["endDate"], "endDate")
            title = params.get("title")
            if kind == "ecommerce_parameters" and title not in ECOMMERCE_PARAMETERS:
                raise RpcError(f"Unknown parameter title: {title!r}")
            header, rows = self.catalogue.dated(kind, start, end, title)
        else:
            try:
                header, rows = self.catalogue.static(kind)
            except KeyError:
                raise RpcError(f"Unknown export type: {kind!r}") from None
        if params.get("filter") and kind in FILTERABLE_TYPES:
            pattern = str(params["filter"]).lower()
            rows = [row for row in rows if fnmatch.fnmatchcase(row.cells[0].lower(), pattern)]
        if str(params.get("rowsWithoutData") or "0") == "1":
            rows = [row for row in rows if not row.has_data]
        for begin_key, end_key, attribute in (
            ("recordIntervalBegin", "recordIntervalEnd", "recorded"),
            ("campaignsStartTimeIntervalBegin", "campaignsStartTimeIntervalEnd", "start"),
            ("campaignsStopTimeIntervalBegin", "campaignsStopTimeIntervalEnd", "stop"),
        ):
            if (begin_key in params) != (end_key in params):
                raise RpcError(f"{begin_key} and {end_key} must be set together")
            if begin_key in params and (attribute == "recorded" or kind in CAMPAIGN_TYPES):
                low, high = self._date(params[begin_key], begin_key), self._date(params[end_key], end_key)
                rows = [row for row in rows if (value := getattr(row, attribute)) is not None and low <= value <= high]
        if kind in CAMPAIGN_TYPES:
            if str(params.get("activeCampaigns") or "0") == "1":
                rows = [row for row in rows if row.active]
            source = str(params.get("dataSourceTypeFilter") or "regular")
            if source not in ("all", "interfaces", "regular", "secondary"):
                raise RpcError(f"Invalid dataSourceTypeFilter: {source}")
            if source != "all":
                rows = [row for row in rows if row.source_kind == source]
        return header, rows

    def export(self, params: dict[str, Any]) -> list[list[str]]:
        try:
            start, end = int(params["startRow"]), int(params["endRow"])
        except (KeyError, TypeError, ValueError):
            raise RpcError("Parameters startRow and endRow are mandatory") from None
        if start < 1 or end < start:
            raise RpcError("Invalid row range: startRow must be 1 or more and endRow not below it")
        if end - start + 1 > self.data.export_row_limit:
            raise RpcError(f"Row limit exceeded: at most {self.data.export_row_limit} rows per request")
        header, rows = self.export_table(params)
        return [header, *(list(row.cells) for row in rows[start - 1 : end])]

    def import_data(self, params: dict[str, Any]) -> list[Any]:
        upload_type = params.get("uploadType")
        if upload_type not in UPLOAD_TYPES:
            raise RpcError(f"Unknown uploadType: {upload_type!r}")
        data = params.get("uploadData")
        if not isinstance(data, list) or not data or not all(isinstance(row, list) for row in data):
            raise RpcError("uploadData must be a two-dimensional array with a header row")
        header, rows = [str(cell) for cell in data[0]], data[1:]
        if len(rows) > self.data.export_row_limit:
            raise RpcError(f"Row limit exceeded: at most {self.data.export_row_limit} rows per import")
        if any(len(row) != len(header) for row in rows):
            raise RpcError("Every row of uploadData must have as many cells as the header row")
        with self._limit_lock:
            self.import_headers[str(upload_type)] = header
            store = self.imported[str(upload_type)]
            for row in rows:  # category imports set values per key: importing a row twice changes nothing
                store[str(row[0])] = [str(cell) for cell in row]
            self.import_calls.append((str(upload_type), len(rows)))
        return []

    # -- analyses --------------------------------------------------------------------------------------------
    def _time_range(self, config: dict[str, Any]) -> tuple[dt.date, dt.date]:
        today = self.data.last_day
        code = config.get("dynamicTime")
        if code:
            ranges = {
                "today": (today, today),
                "yesterday": (today - dt.timedelta(days=1),) * 2,
                "last_7_days": (today - dt.timedelta(days=7), today - dt.timedelta(days=1)),
                "last_30_days": (today - dt.timedelta(days=30), today - dt.timedelta(days=1)),
                "this_month": (today.replace(day=1), today),
                "last_month": (
                    (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1),
                    today.replace(day=1) - dt.timedelta(days=1),
                ),
            }
            if code not in ranges:
                raise RpcError(f"Unknown dynamicTime: {code}")
            return ranges[code]
        start = self._date(config["startTime"], "startTime") if config.get("startTime") else today - dt.timedelta(7)
        stop = self._date(config["stopTime"], "stopTime") if config.get("stopTime") else today
        if stop < start:
            raise RpcError("stopTime is before startTime")
        return start, stop

    @staticmethod
    def _titles(items: Any, what: str, known: Sequence[str]) -> list[dict[str, Any]]:
        found = []
        for item in items or []:
            entry = {"title": item} if isinstance(item, str) else dict(item)
            if entry.get("title") not in known:
                raise RpcError(f"Unknown {what}: {entry.get('title')!r}")
            found.append(entry)
        return found

    def aggregate(
        self, objects: list[str], metrics: list[str], start: dt.date, stop: dt.date, rules: Sequence[dict[str, Any]]
    ) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
        """(object values, metric values) per group, before sorting and paging: the analyses' truth."""
        sums: dict[tuple[str, ...], list[int]] = {}
        visitors: dict[tuple[str, ...], int] = defaultdict(int)
        for fact in self.traffic.range(start, stop):
            values = {"Pages": fact.page, "Browsers": fact.browser, "Days": dotted(fact.day)}
            if not self._matches(values, rules):
                continue
            key = tuple(values[name] for name in objects)
            totals = sums.setdefault(key, [0, 0])
            totals[0] += fact.impressions
            totals[1] += fact.visits
            visitors[key] += fact.visitors
        metric_values = {"Page Impressions": 0, "Visits": 1}
        return [
            (key, tuple(totals[metric_values[m]] if m in metric_values else visitors[key] for m in metrics))
            for key, totals in sums.items()
        ]

    @staticmethod
    def _matches(values: dict[str, str], rules: Sequence[dict[str, Any]]) -> bool:
        verdict: bool | None = None
        for rule in rules:
            title = rule.get("objectTitle")
            if title not in values:
                continue
            pattern = str(rule.get("filter") or "")
            case = str(rule.get("caseSens") or "0") == "1"
            value = values[title] if case else values[title].lower()
            hit = fnmatch.fnmatchcase(value, pattern if case else pattern.lower())
            if rule.get("comparator") == "!=":
                hit = not hit
            if verdict is None:
                verdict = hit
            elif (rule.get("link") or "and") == "or":
                verdict = verdict or hit
            else:
                verdict = verdict and hit
        return True if verdict is None else verdict

    def analysis(self, config: dict[str, Any], language: str, default_limit: int = 1000) -> dict[str, Any]:
        objects = self._titles(config.get("analysisObjects"), "analysis object", OBJECTS)
        if not objects:
            raise RpcError("Missing parameter: analysisObjects")
        metrics = self._titles(config.get("metrics"), "metric", METRICS) or [{"title": "Page Impressions"}]
        start, stop = self._time_range(config)
        rules = ((config.get("analysisFilter") or {}).get("filterRules")) or []
        names, metric_names = [o["title"] for o in objects], [m["title"] for m in metrics]
        groups = self.aggregate(names, metric_names, start, stop, rules)
        descending = (metrics[0].get("sortOrder") or "desc") != "asc"
        groups.sort(key=lambda group: (-group[1][0] if descending else group[1][0], group[0]))
        time_object = "Days" in names
        pivot = len(names) > 1 or time_object
        if pivot:  # grouped by the first object, groups in order of their totals (days in calendar order)
            group_totals: dict[str, int] = defaultdict(int)
            for key, values in groups:
                group_totals[key[0]] += values[0]
            if names[0] == "Days":
                order = {day: dt.datetime.strptime(day, "%d.%m.%Y").date().toordinal() for day in group_totals}
            else:
                order = {value: -total for value, total in group_totals.items()}
            groups.sort(key=lambda group: (order[group[0][0]], group[0][0]))
        try:
            first = max(1, int(config.get("startRow") or 1))
            limit = int(config.get("rowLimit") or default_limit)
        except (TypeError, ValueError):
            raise RpcError("startRow and rowLimit must be numbers") from None
        footer = str(config.get("footerIdentifier") or "-")
        hide = str(config.get("hideFooters") or "0") == "1"
        page = groups[first - 1 : first - 1 + limit]
        head = [
            {"dataType": "string", "title": o.get("alias") or localise(o["title"], language), "contentType": "main"}
            for o in objects
        ] + [{"dataType": "number", "title": localise(m, language), "contentType": "normal"} for m in metric_names]
        grand = [sum(values[i] for _, values in groups) for i in range(len(metric_names))]
        rows: list[list[str]] = []
        foot: list[list[str]] = []
        if not pivot:
            head.append(
                {"dataType": "number", "title": f"% {localise(metric_names[0], language)}", "contentType": "percent"}
            )
            for offset, (key, values) in enumerate(page):
                share = f"{100 * values[0] / grand[0]:.2f}" if grand[0] else "0.00"
                rows.append([str(first + offset), *key, *(str(v) for v in values), share])
            foot = [["", localise("Total", language), *(str(v) for v in grand), "100.00"]]
        else:
            subtotal: dict[str, list[int]] = defaultdict(lambda: [0] * len(metric_names))
            for key, values in groups:
                for i, value in enumerate(values):
                    subtotal[key[0]][i] += value
            for index, (key, values) in enumerate(page):
                rows.append([*key, *(str(v) for v in values)])
                absolute = first - 1 + index
                group_ends = absolute + 1 == len(groups) or groups[absolute + 1][0][0] != key[0]
                if not hide and group_ends and len(names) > 1:
                    rows.append([key[0], *([footer] * (len(names) - 1)), *(str(v) for v in subtotal[key[0]])])
            if not hide and page and first - 1 + len(page) == len(groups):
                rows.append([*([footer] * len(names)), *(str(v) for v in grand)])
        return {
            "analysisWarnings": [],
            "dailyUnique": 0,
            "totalRowCount": len(groups),
            "analysisTabHead": head,
            "analysisTabFoot": foot,
            "analysisData": rows,
            "timeStart": f"{start.isoformat()} 00:00:00",
            "timeStop": f"{stop.isoformat()} 23:59:59",
            "calculationTime": utc_now().strftime("%Y-%m-%d %H:%M:%S"),
            "analysisTitle": head[0]["title"],
            "chartType": "bars",
            "analysisType": "pivot" if pivot else "analysis",
        }

    def _daily(self, day: dt.date) -> tuple[int, int, int]:
        facts = self.traffic.facts(day)
        return (sum(f.impressions for f in facts), sum(f.visits for f in facts), sum(f.visitors for f in facts))

    def scorecard(self, start: dt.date, stop: dt.date, language: str) -> dict[str, Any]:
        def total(first: dt.date, last: dt.date, index: int) -> int:
            days = (last - first).days + 1
            return sum(self._daily(first + dt.timedelta(days=i))[index] for i in range(days))

        periods = [("Today and last 30 days", 30), ("Last 7 days", 7), ("Last 14 days", 14)]
        head = [{"dataType": "string", "title": localise("Key figure", language), "contentType": "normal"}]
        for title, _ in periods:
            head.append({"dataType": "number", "title": title, "contentType": "normal"})
            head.append({"dataType": "number", "title": f"{title} (%)", "contentType": "normal"})
        head += [
            {"dataType": "number", "title": "Last 90 days", "contentType": "normal"},
            {"dataType": "number", "title": "Score", "contentType": "normal"},
        ]
        rows = []
        for index, metric in enumerate(METRICS):
            row = [localise(metric, language)]
            for _, days in periods:
                now = total(stop - dt.timedelta(days=days - 1), stop, index)
                before = total(stop - dt.timedelta(days=2 * days - 1), stop - dt.timedelta(days=days), index)
                row += [str(now), f"{100 * (now - before) / before:.1f}" if before else "0.0"]
            row += [str(total(stop - dt.timedelta(days=89), stop, index)), str(1 + index * 3)]
            rows.append(row)
        series = [[dotted(stop - dt.timedelta(days=i)), str(3 + i % 5)] for i in range(29, -1, -1)]
        return {
            "analysisWarnings": [],
            "scorecardData": {
                "analysisTabHead": [
                    {"dataType": "number", "title": "Date", "contentType": "normal"},
                    {"dataType": "number", "title": "Score", "contentType": "normal"},
                ],
                "scorecardValue": "8",
                "analysisData": series,
            },
            "analysisType": "scorecard",
            "dailyUnique": 0,
            "totalRowCount": 0,
            "analysisTabHead": head,
            "timeStart": f"{start.isoformat()} 00:00:00",
            "timeStop": f"{stop.isoformat()} 23:59:59",
            "calculationTime": utc_now().strftime("%Y-%m-%d %H:%M:%S"),
            "chartType": "lines",
            "analysisTabFoot": [],
            "analysisData": rows,
            "analysisTitle": "Scorecard",
        }

    def status(self, start: dt.date, stop: dt.date, language: str) -> dict[str, Any]:
        days = [start + dt.timedelta(days=i) for i in range((stop - start).days + 1)]
        values = [self._daily(day)[0] for day in days]
        total = sum(values)
        average = total // len(values) if values else 0
        return {
            "analysisWarnings": [],
            "kpiData": [[localise("Average", language), str(average)], [localise("Total", language), str(total)]],
            "analysisType": "status",
            "dailyUnique": 0,
            "totalRowCount": len(days),
            "analysisTabHead": [
                {"dataType": "string", "title": localise("Days", language), "contentType": "main"},
                {"dataType": "number", "title": "Page Impressions", "contentType": "normal"},
            ],
            "timeStart": f"{start.isoformat()} 00:00:00",
            "timeStop": f"{stop.isoformat()} 23:59:59",
            "calculationTime": utc_now().strftime("%Y-%m-%d %H:%M:%S"),
            "chartType": "lines",
            "analysisTabFoot": [[localise("Total", language), str(total)]],
            "analysisData": [[dotted(day), str(value)] for day, value in zip(days, values, strict=True)],
            "analysisTitle": "KPI",
        }

    def report(self, params: dict[str, Any], language: str) -> dict[str, Any]:
        name = str(params.get("report_name") or "")
        report = REPORTS.get(name)
        if report is None:
            raise RpcError(f"Report not found: {name!r}")
        config: dict[str, Any] = {}
        for key, target in (("time_start", "startTime"), ("time_stop", "stopTime")):
            if params.get(key):
                config[target] = params[key]
        start, stop = self._time_range(config)
        analyses = []
        for analysis in report["analyses"]:
            if analysis.get("type") == "scorecard":
                analyses.append(self.scorecard(start, stop, language))
            elif analysis.get("type") == "status":
                analyses.append(self.status(start, stop, language))
            else:
                merged = {**analysis, **config, "footerIdentifier": params.get("footerIdentifier") or "-"}
                analyses.append(self.analysis(merged, language))
        return {"author": report["author"], "title": name, "description": "", "analyses": analyses}

    # -- for tests -------------------------------------------------------------------------------------------
    def accepted_times(self) -> list[float]:
        with self._limit_lock:
            return [at for at, accepted in self.arrivals if accepted]


def demo_plan(simulator: WebtrekkSimulator) -> DemoPlan:
    """A short tour under the documented limits (5 requests / 10 s): 13 requests, about 25 s. Metadata, a 25,500-row
    export in three pages, campaigns, one analysis and one report (all four analysis types) for yesterday."""
    data = simulator.data
    return DemoPlan(
        env={
            "SOURCES__WEBTREKK__BASE_URL": simulator.url + ENDPOINT,
            "SOURCES__WEBTREKK__CUSTOMER_ID": data.customer_id,
            "SOURCES__WEBTREKK__LOGIN": data.login,
            "SOURCES__WEBTREKK__PASSWORD": data.password,
            "SOURCES__WEBTREKK__LANGUAGE": "de",
        },
        start=data.last_day - dt.timedelta(days=1),
        end=data.last_day - dt.timedelta(days=1),
        dbt_vars={"clickhaul_webtrekk_site_id": data.customer_id},  # the marts label Webtrekk rows with the account
        source_kwargs={
            "export_types": ["content_categories", "campaigns"],
            "analyses": [
                {
                    "name": "pages",
                    "config": {
                        "analysisObjects": [{"title": "Pages"}],
                        "metrics": [{"title": "Page Impressions"}, {"title": "Visits"}, {"title": "Visitors"}],
                    },
                },
                {  # daily traffic: what the dbt marts read for Webtrekk's fct_traffic_daily
                    "name": "traffic",
                    "config": {
                        "analysisObjects": [{"title": "Days"}],
                        "metrics": [{"title": "Page Impressions"}, {"title": "Visits"}, {"title": "Visitors"}],
                    },
                },
            ],
            "reports": ["Overview Report"],
        },
    )


__all__ = [
    "DEMO_CUSTOMER_ID",
    "DEMO_LOGIN",
    "DEMO_PASSWORD",
    "ENDPOINT",
    "WebtrekkData",
    "WebtrekkSimulator",
    "demo_plan",
]
