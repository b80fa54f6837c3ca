"""An Umami server on 127.0.0.1 speaking the Umami 2 or the Umami 3 API (a switch), self-hosted or Cloud.

Traffic is row level: sessions with their pageviews and custom events, generated per website and UTC day from a
seed. Every aggregate (stats, pageviews series, metrics, reports) is computed from those rows with the counting
rules a real Umami 3.1 applies (see API-NOTES.md): `stats` counts pageviews only, a visit is a session's activity
within one clock hour, page-like metrics count distinct sessions. Events later than the simulator's "now" are
not served yet, so today fills up as time passes, as on a live server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.harness import Faults, Request, Response, SimulatorServer, SlidingWindow, TokenStore, stable_seed
from sources.common.clock import today_utc, wall_time
from sources.common.spec import DemoPlan

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "umami-demo-password-7c1e4f9a2b"
DEMO_API_KEY = "api_umami_demo_3f8b2c6d9e1a4b7c"

PATHS = ["/", "/pricing", "/features", "/docs", "/docs/install", "/docs/api", "/about", "/contact", "/signup"]
TITLES = {"/": "Home", "/signup": "Sign up"}
BROWSERS = ["chrome", "firefox", "safari", "edge-chromium", "ios", "samsung"]
OSES = ["Windows 10", "Mac OS", "Linux", "iOS", "Android OS"]
DEVICES = {"Windows 10": "desktop", "Mac OS": "laptop", "Linux": "desktop", "iOS": "mobile", "Android OS": "mobile"}
SCREENS = {"desktop": "1920x1080", "laptop": "1440x900", "mobile": "390x844"}
LANGUAGES = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP"]
PLACES = [
    ("US", "US-CA", "San Francisco"),
    ("US", "US-NY", "New York"),
    ("DE", "DE-BE", "Berlin"),
    ("DE", "DE-BY", "Munich"),
    ("GB", "GB-ENG", "London"),
    ("FR", "FR-IDF", "Paris"),
    ("JP", "JP-13", "Tokyo"),
]
REFERRERS = [
    ("www.google.com", "/search"),
    ("news.ycombinator.com", "/item"),
    ("twitter.com", "/status"),
    ("duckduckgo.com", "/"),
    ("github.com", "/umami-software"),
    ("mail.google.com", "/mail"),
]
SEARCH = ("google.", "duckduckgo.", "bing.")
SOCIAL = ("twitter.", "news.ycombinator.", "reddit.")
UTM_VALUES = {
    "utm_source": ["newsletter", "google", "partner"],
    "utm_medium": ["email", "cpc", "social"],
    "utm_campaign": ["launch", "spring_sale"],
    "utm_content": ["header", "footer"],
    "utm_term": ["analytics"],
}
EVENTS = ["signup", "download", "outbound-link-click", "checkout"]
TAGS = ["", "", "variant-a", "variant-b"]
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 9, 10, 10, 9, 8, 8, 8, 7, 6, 5, 4, 3]
CURRENCIES = ["USD", "EUR"]
VITAL_NAMES = ("lcp", "inp", "cls", "fcp", "ttfb")


@dataclass(frozen=True)
class Event:
    id: str
    session_id: str
    created: float  # unix seconds
    event_type: int  # 1 pageview, 2 custom event
    path: str
    query: str
    title: str
    referrer_domain: str
    referrer_path: str
    name: str
    tag: str
    data: tuple[tuple[str, Any], ...] = ()
    vitals: tuple[float, ...] = ()  # lcp, inp, cls, fcp, ttfb of a pageview

    def utm(self) -> dict[str, str]:
        return dict(part.split("=", 1) for part in self.query.split("&") if part.startswith("utm_") and "=" in part)


@dataclass(frozen=True)
class Session:
    id: str
    website_id: str
    visitor: int
    hostname: str
    browser: str
    os: str
    device: str
    screen: str
    language: str
    country: str
    region: str
    city: str
    events: tuple[Event, ...]

    @property
    def created(self) -> float:
        return self.events[0].created


def make_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(seconds * 1000) % 1000:03d}Z"
    )


def channel_of(event: Event) -> str:
    utm = event.utm()
    if utm.get("utm_medium") == "cpc":
        return "paidSearch"
    if utm.get("utm_medium") == "email" or event.referrer_domain.startswith("mail."):
        return "email"
    if any(event.referrer_domain.removeprefix("www.").startswith(s) for s in SEARCH):
        return "organicSearch"
    if any(event.referrer_domain.startswith(s) for s in SOCIAL):
        return "organicSocial"
    return "referral" if event.referrer_domain else "direct"


@dataclass
class UmamiData:
    """What the simulated account holds. Days run from `last_day - days + 1` to `last_day` (UTC)."""

    seed: int = 5
    websites: int = 2
    days: int = 60
    last_day: dt.date = field(default_factory=today_utc)
    sessions_per_day: tuple[int, int] = (60, 120)
    visitor_pool: int = 900
    extra_paths: int = 40  # /blog/post-NNN pages: more `path` rows than one metrics page in tests
    idle_websites: int = 0  # websites listed after the others that never have traffic

    @property
    def first_day(self) -> dt.date:
        return self.last_day - dt.timedelta(days=self.days - 1)

    def website_list(self) -> list[dict[str, Any]]:
        created = "2024-03-01T09:30:00.000Z"
        rows = []
        for index in range(1, self.websites + self.idle_websites + 1):
            rng = random.Random(stable_seed("umami-website", self.seed, index))
            rows.append(
                {
                    "id": make_uuid(rng),
                    "name": f"Site {index}",
                    "domain": f"site{index}.example.com",
                    "shareId": None if index % 2 else f"share{index}abcd",
                    "resetAt": None,
                    "userId": "41e2b680-648e-4b09-bcd7-3e2b10c06264",
                    "teamId": None,
                    "createdBy": "41e2b680-648e-4b09-bcd7-3e2b10c06264",
                    "createdAt": created,
                    "updatedAt": created,
                    "deletedAt": None,
                }
            )
        return rows

    def paths(self) -> list[str]:
        return PATHS + [f"/blog/post-{index:03d}" for index in range(1, self.extra_paths + 1)]


class Traffic:
    """Sessions per website and UTC day, generated on demand from the seed and cached."""

    def __init__(self, data: UmamiData) -> None:
        self.data = data
        self.paths = data.paths()
        self.hostnames = {w["id"]: w["domain"] for w in data.website_list()[: data.websites]}  # idle ones: none
        self._cache = lru_cache(maxsize=2048)(self._generate)

    def day(self, website_id: str, day: dt.date) -> tuple[Session, ...]:
        if not (self.data.first_day <= day <= self.data.last_day) or website_id not in self.hostnames:
            return ()
        return self._cache(website_id, day)

    def _generate(self, website_id: str, day: dt.date) -> tuple[Session, ...]:
        rng = random.Random(stable_seed(self.data.seed, website_id, day.isoformat()))
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        sessions = []
        for _ in range(rng.randint(*self.data.sessions_per_day)):
            start = midnight + rng.choices(range(24), HOUR_WEIGHTS)[0] * 3600 + rng.randrange(3600)
            os_name = rng.choice(OSES)
            device = DEVICES[os_name]
            country, region, city = rng.choice(PLACES)
            session_id = make_uuid(rng)
            referrer, referrer_path = rng.choice(REFERRERS) if rng.random() < 0.5 else ("", "")
            utm = {k: rng.choice(v) for k, v in UTM_VALUES.items()} if rng.random() < 0.2 else {}
            query = "&".join(f"{k}={v}" for k, v in utm.items())
            tag = rng.choice(TAGS)
            events = []
            at = start
            views = min(7, max(1, int(rng.expovariate(0.6)) + 1))
            for index in range(views):
                path = self._path(rng)
                events.append(
                    Event(
                        make_uuid(rng),
                        session_id,
                        at,
                        1,
                        path,
                        query if index == 0 else "",
                        TITLES.get(path, path.strip("/").split("/")[-1].replace("-", " ").title()),
                        referrer if index == 0 else "",
                        referrer_path if index == 0 else "",
                        "",
                        tag,
                        vitals=(
                            round(rng.uniform(800, 4500)),
                            round(rng.uniform(40, 600)),
                            round(rng.uniform(0, 0.4), 3),
                            round(rng.uniform(500, 3200)),
                            round(rng.uniform(80, 1900)),
                        ),
                    )
                )
                if rng.random() < 0.25:
                    name = rng.choice(EVENTS)
                    payload: tuple[tuple[str, Any], ...] = ()
                    if name == "checkout":
                        payload = (("currency", rng.choice(CURRENCIES)), ("revenue", round(rng.uniform(5, 250), 2)))
                    elif name == "signup":
                        payload = (("plan", rng.choice(["free", "pro", "team"])),)
                    at += rng.randint(2, 60)
                    events.append(
                        Event(make_uuid(rng), session_id, at, 2, path, "", events[-1].title, "", "", name, tag, payload)
                    )
                at += rng.randint(5, 400)
            sessions.append(
                Session(
                    session_id,
                    website_id,
                    rng.randrange(self.data.visitor_pool),
                    self.hostnames[website_id],
                    rng.choice(BROWSERS),
                    os_name,
                    device,
                    SCREENS[device],
                    rng.choice(LANGUAGES),
                    country,
                    region,
                    city,
                    tuple(events),
                )
            )
        return tuple(sorted(sessions, key=lambda s: s.created))

    def _path(self, rng: random.Random) -> str:
        if rng.random() < 0.6:
            return self.paths[min(len(self.paths) - 1, int(rng.paretovariate(1.1)) - 1)]
        return rng.choice(self.paths)

    def events(self, website_id: str, begin: float, end: float, now: float) -> list[tuple[Session, Event]]:
        """Events with begin <= createdAt <= end that exist at `now` (Umami's ranges include endAt)."""
        end = min(end, now)
        found: list[tuple[Session, Event]] = []
        day = dt.datetime.fromtimestamp(begin, dt.UTC).date() - dt.timedelta(days=1)
        while dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() <= end:
            for session in self.day(website_id, day):
                found.extend((session, e) for e in session.events if begin <= e.created <= end)
            day += dt.timedelta(days=1)
        return found


def local_day(seconds: float, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, zone).date()


def visits_of(pairs: Iterable[tuple[Session, Event]]) -> dict[tuple[str, int], list[Event]]:
    """A visit is a session's activity within one clock hour (Umami's visit_id rotates hourly)."""
    visits: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for session, event in pairs:
        visits[(session.id, int(event.created // 3600))].append(event)
    return visits


def stats_of(pairs: list[tuple[Session, Event]]) -> dict[str, int]:
    """`stats`: pageviews only (custom events are left out), visits by hour, bounces = one-pageview visits."""
    views = [(s, e) for s, e in pairs if e.event_type == 1]
    visits = visits_of(views)
    return {
        "pageviews": len(views),
        "visitors": len({s.id for s, _ in views}),
        "visits": len(visits),
        "bounces": sum(1 for events in visits.values() if len(events) == 1),
        "totaltime": int(sum(max(e.created for e in v) - min(e.created for e in v) for v in visits.values())),
    }


def metric_values(metric: str, pairs: list[tuple[Session, Event]]) -> dict[str, int]:
    """x → y for one metric type (Umami 3 names; Umami 2's url/host are mapped before)."""
    counted: dict[str, set[str]] = defaultdict(set)
    if metric == "event":
        totals: dict[str, int] = defaultdict(int)
        for _, event in pairs:
            if event.event_type == 2:
                totals[event.name] += 1
        return dict(totals)
    views = [(s, e) for s, e in pairs if e.event_type == 1]
    if metric in ("entry", "exit"):
        for (session_id, _), events in visits_of(views).items():
            ordered = sorted(events, key=lambda e: e.created)
            counted[(ordered[0] if metric == "entry" else ordered[-1]).path].add(f"{session_id}")
        return {k: len(v) for k, v in counted.items()}
    for session, event in views:
        value: str | None
        if metric == "path":
            value = event.path
        elif metric == "referrer":
            value = event.referrer_domain or None
        elif metric == "domain":
            value = event.referrer_domain.removeprefix("www.") or None
        elif metric == "title":
            value = event.title
        elif metric == "query":
            value = event.query or None
        elif metric == "tag":
            value = event.tag or None
        elif metric == "hostname":
            value = session.hostname
        elif metric == "channel":
            value = channel_of(event) if event.referrer_domain or event.query or event is session.events[0] else None
        elif metric.startswith("utm"):
            value = event.utm().get("utm_" + metric[3:].lower())
        elif metric in ("browser", "os", "device", "screen", "language", "country", "region", "city"):
            value = getattr(session, metric)
        else:
            raise KeyError(metric)
        if value is not None:
            counted[value].add(session.id)  # page-like metrics count distinct sessions, not pageviews
    return {k: len(v) for k, v in counted.items()}


def p75(values: list[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * 0.75))]) if ordered else 0.0


class UmamiError(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    """Umami's error body."""
    return Response(status, {"error": {"message": message, "code": code, "status": status}}, headers=headers or {})


class UmamiSimulator(SimulatorServer):
    """`version` "2" or "3" picks the shapes; `cloud=True` serves Umami Cloud (/v1, x-umami-api-key, 50 / 15 s)."""

    vendor = "umami"

    def __init__(
        self,
        data: UmamiData | None = None,
        faults: Faults | None = None,
        *,
        version: str | None = None,
        cloud: bool | None = None,
        rate_limit: tuple[int, float] = (50, 15.0),
        now: Callable[[], float] = wall_time,
        monotonic: Callable[[], float] = time.monotonic,
        advance_per_page: float = 0.0,
        port: int = 0,
        users: dict[str, str] | None = None,
        api_keys: Iterable[str] = (DEMO_API_KEY,),
    ) -> None:
        # `clickhaul simulate umami` builds the simulator with a port only: the switches also come from the
        # environment (CLICKHAUL_UMAMI_VERSION=2, CLICKHAUL_UMAMI_CLOUD=1).
        version = version or os.environ.get("CLICKHAUL_UMAMI_VERSION", "3")
        if cloud is None:
            cloud = os.environ.get("CLICKHAUL_UMAMI_CLOUD", "") in ("1", "true", "yes")
        if version not in ("2", "3"):
            raise ValueError("version must be '2' or '3'")
        super().__init__(faults or Faults(exempt_paths=(r"/auth/login$",)), port=port)
        self.version = version
        self.cloud = cloud
        self.data = data or UmamiData()
        self.traffic = Traffic(self.data)
        self.tokens = TokenStore(ttl_seconds=10 * 365 * 86400)  # Umami tokens do not expire by time
        self.users = users or {DEMO_USERNAME: DEMO_PASSWORD}
        self.api_keys = set(api_keys)
        self.logins = 0
        self.rate_window = SlidingWindow(rate_limit[0], rate_limit[1], monotonic)
        self.rate_refusals = 0
        self._now = now
        self._offset = 0.0  # tests move "now" forward while a run pages (new events arrive)
        self.advance_per_page = advance_per_page
        self.expire_tokens_after: int | None = None  # expire every token once after this many data requests
        self._data_requests = 0
        self._lock = threading.Lock()
        prefix = "/v1" if cloud else "/api"
        self.prefix = prefix
        if not cloud:
            self.route("POST", prefix + r"/auth/login", self.login)
        self.route("GET", prefix + r"/websites", self.websites)
        site = prefix + r"/websites/(?P<website>[^/]+)"
        self.route("GET", site, self.website)
        self.route("GET", site + r"/stats", self.stats)
        self.route("GET", site + r"/pageviews", self.pageviews)
        self.route("GET", site + r"/metrics", self.metrics)
        self.route("GET", site + r"/sessions", self.sessions)
        self.route("GET", site + r"/events", self.events)
        if version == "3":
            self.route("GET", site + r"/event-data/(?P<event>[^/]+)", self.event_data)
        self.route("GET", prefix + r"/reports", self.reports)
        self.route("POST", prefix + r"/reports/(?P<type>[a-z]+)", self.run_report)

    # -- time -----------------------------------------------------------------------------------------
    def now(self) -> float:
        with self._lock:
            return self._now() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @property
    def website_ids(self) -> list[str]:
        return [w["id"] for w in self.data.website_list()]

    def not_found(self, request: Request) -> Response:
        return error(404, "Not found.", "not-found")

    # -- auth -----------------------------------------------------------------------------------------
    def login(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return error(400, "Bad request.", "bad-request")
        username, password = body.get("username"), body.get("password")
        if not username or self.users.get(username) != password:
            return error(401, "Incorrect username and/or password.", "incorrect-username-password")
        token, _ = self.tokens.issue()
        with self._lock:
            self.logins += 1
        user = {"id": "41e2b680-648e-4b09-bcd7-3e2b10c06264", "username": username, "role": "admin"}
        return Response(
            200, {"token": token, "user": {**user, "createdAt": "2024-03-01T09:00:00.000Z", "isAdmin": True}}
        )

    def _guard(self, request: Request, website: str | None = None) -> Response | None:
        """Auth, the Cloud rate limit, the test hook that expires tokens, and 401 for unknown websites."""
        if self.cloud:
            if request.header("x-umami-api-key") not in self.api_keys:
                return error(401, "Unauthorized.", "unauthorized")
            if not self.rate_window.try_hit():
                with self._lock:
                    self.rate_refusals += 1
                return error(429, "Too many requests.", "too-many-requests")
        else:
            with self._lock:
                self._data_requests += 1
                if self.expire_tokens_after is not None and self._data_requests > self.expire_tokens_after:
                    self.expire_tokens_after = None
                    self.tokens.expire_all()
            if not self.tokens.valid(request.bearer):
                return error(401, "Unauthorized.", "unauthorized")
        if website is not None and website not in self.website_ids:
            return error(401, "Unauthorized.", "unauthorized")  # as the real server: 401, not 404
        return None

    # -- management -----------------------------------------------------------------------------------
    def websites(self, request: Request) -> Response:
        if refused := self._guard(request):
            return refused
        try:
            page, size = int(request.query.get("page") or 1), int(request.query.get("pageSize") or 10)
        except ValueError:
            return error(400, "Bad request.", "bad-request")
        rows = self.data.website_list()
        return Response(
            200, {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}
        )

    def website(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        return Response(200, next(w for w in self.data.website_list() if w["id"] == website))

    @staticmethod
    def _website(request: Request) -> str:
        assert request.match is not None
        return request.match.group("website")

    def _range(self, request: Request) -> tuple[float, float, ZoneInfo]:
        try:
            begin, end = int(request.query["startAt"]), int(request.query["endAt"])
        except (KeyError, ValueError):
            raise UmamiError(400, "startAt and endAt are required (epoch milliseconds).", "bad-request") from None
        try:
            zone = ZoneInfo(request.query.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise UmamiError(400, "Invalid timezone.", "bad-request") from None
        if end < begin:
            raise UmamiError(400, "endAt is before startAt.", "bad-request")
        return begin / 1000.0, end / 1000.0, zone

    def _read(self, request: Request, answer: Callable[[str, float, float, ZoneInfo], Any]) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        try:
            begin, end, zone = self._range(request)
            return Response(200, answer(website, begin, end, zone))
        except UmamiError as problem:
            return error(problem.status, problem.message, problem.code)

    # -- website data ---------------------------------------------------------------------------------
    def stats(self, request: Request) -> Response:
        def answer(website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
            now = self.stats_truth(website, begin, end)
            before = self.stats_truth(website, begin - (end - begin) - 0.001, begin - 0.001)
            if self.version == "2":
                return {key: {"value": value, "prev": before[key]} for key, value in now.items()}
            return {**now, "comparison": before}

        return self._read(request, answer)

    def stats_truth(self, website: str, begin: float, end: float) -> dict[str, int]:
        return stats_of(self.traffic.events(website, begin, end, self.now()))

    def pageviews(self, request: Request) -> Response:
        def answer(website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
            unit = request.query.get("unit") or "day"
            if unit == "day" and end - begin > 215 * 86400:
                unit = "month"  # what Umami does silently for a span too long for days
            buckets: dict[str, list[tuple[Session, Event]]] = defaultdict(list)
            for session, event in self.traffic.events(website, begin, end, self.now()):
                if event.event_type != 1:
                    continue
                local = dt.datetime.fromtimestamp(event.created, zone)
                if unit == "hour":
                    label = local.strftime("%Y-%m-%d %H:00:00")
                elif unit == "month":
                    label = local.strftime("%Y-%m-01 00:00:00")
                else:
                    label = local.strftime("%Y-%m-%d 00:00:00")
                buckets[label].append((session, event))
            labels = sorted(buckets)
            return {
                "pageviews": [{"x": label, "y": len(buckets[label])} for label in labels],
                "sessions": [{"x": label, "y": len({s.id for s, _ in buckets[label]})} for label in labels],
            }

        return self._read(request, answer)

    def metrics(self, request: Request) -> Response:
        def answer(website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
            kind = request.query.get("type", "")
            aliases = {"2": {"url": "path", "host": "hostname"}, "3": {}}[self.version]
            known2 = {"url", "entry", "exit", "referrer", "title", "query", "event", "tag", "host"}
            known2 |= {"browser", "os", "device", "screen", "language", "country", "region", "city"}
            if (self.version == "2" and kind not in known2) or (self.version == "3" and kind in ("url", "host")):
                raise UmamiError(400, f"Invalid metric type: {kind}.", "bad-request")
            try:
                offset = int(request.query.get("offset") or 0)
                limit = int(request.query.get("limit") or 500)
            except ValueError:
                raise UmamiError(400, "limit and offset must be numbers.", "bad-request") from None
            try:
                rows = self.metrics_truth(website, aliases.get(kind, kind), begin, end)
            except KeyError:
                raise UmamiError(400, f"Invalid metric type: {kind}.", "bad-request") from None
            return rows[offset : offset + limit]

        return self._read(request, answer)

    def metrics_truth(self, website: str, metric: str, begin: float, end: float) -> list[dict[str, Any]]:
        values = metric_values(metric, self.traffic.events(website, begin, end, self.now()))
        return [{"x": x, "y": y} for x, y in sorted(values.items(), key=lambda item: (-item[1], item[0]))]

    def _page(self, request: Request) -> tuple[int, int]:
        try:
            page, size = int(request.query.get("page") or 1), int(request.query.get("pageSize") or 20)
        except ValueError:
            raise UmamiError(400, "page and pageSize must be numbers.", "bad-request") from None
        if page < 1 or size < 1:
            raise UmamiError(400, "page and pageSize must be positive.", "bad-request")
        if self.advance_per_page:
            self.advance(self.advance_per_page)  # the test's new events arrive while the client pages
        return page, size

    def sessions(self, request: Request) -> Response:
        def answer(website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
            page, size = self._page(request)
            rows = self.session_rows(website, begin, end)
            return {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}

        return self._read(request, answer)

    def session_rows(self, website: str, begin: float, end: float) -> list[dict[str, Any]]:
        """Sessions created within the range, newest first, with what has happened in them so far."""
        now = self.now()
        found: dict[str, list[Event]] = {}
        sessions: dict[str, Session] = {}
        for session, _event in self.traffic.events(website, begin, end, now):
            if session.id not in found and begin <= session.created <= min(end, now):
                found[session.id] = [e for e in session.events if e.created <= now]
                sessions[session.id] = session
        rows = []
        for session_id, events in found.items():
            s = sessions[session_id]
            views = [e for e in events if e.event_type == 1]
            row = {
                "id": s.id,
                "websiteId": s.website_id,
                "hostname": s.hostname,
                "browser": s.browser,
                "os": s.os,
                "device": s.device,
                "screen": s.screen,
                "language": s.language,
                "country": s.country,
                "region" if self.version == "3" else "subdivision1": s.region,
                "city": s.city,
                "firstAt": iso(events[0].created),
                "lastAt": iso(events[-1].created),
                "visits": len({int(e.created // 3600) for e in views}),
                "views": len(views),
                "createdAt": iso(s.created),
            }
            rows.append(row)
        return sorted(rows, key=lambda r: (r["createdAt"], r["id"]), reverse=True)

    def events(self, request: Request) -> Response:
        def answer(website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
            page, size = self._page(request)
            rows = self.event_rows(website, begin, end)
            return {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}

        return self._read(request, answer)

    def event_rows(self, website: str, begin: float, end: float) -> list[dict[str, Any]]:
        rows = []
        for session, event in self.traffic.events(website, begin, end, self.now()):
            row: dict[str, Any] = {
                "id": event.id,
                "websiteId": website,
                "sessionId": session.id,
                "createdAt": iso(event.created),
                "urlPath": event.path,
                "urlQuery": event.query,
                "referrerPath": event.referrer_path,
                "referrerQuery": "",
                "referrerDomain": event.referrer_domain,
                "pageTitle": event.title,
                "eventType": event.event_type,
                "eventName": event.name or None,
            }
            if self.version == "3":
                row |= {
                    "hostname": session.hostname,
                    "country": session.country,
                    "city": session.city,
                    "device": session.device,
                    "os": session.os,
                    "browser": session.browser,
                    "hasData": bool(event.data),
                }
            rows.append(row)
        return sorted(rows, key=lambda r: (r["createdAt"], r["id"]), reverse=True)

    def event_data(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        assert request.match is not None
        wanted = request.match.group("event")
        for day in (self.data.first_day + dt.timedelta(days=i) for i in range(self.data.days)):
            for session in self.traffic.day(website, day):
                for event in session.events:
                    if event.id == wanted and event.created <= self.now():
                        return Response(200, [self._datum(website, event, k, v) for k, v in event.data])
        return error(404, "Event not found.", "not-found")

    @staticmethod
    def _datum(website: str, event: Event, key: str, value: Any) -> dict[str, Any]:
        number = isinstance(value, (int, float))
        return {
            "websiteId": website,
            "eventId": event.id,
            "dataKey": key,
            "stringValue": None if number else str(value),
            "numberValue": value if number else None,
            "dateValue": None,
            "dataType": 2 if number else 1,
            "createdAt": iso(event.created),
        }

    # -- reports --------------------------------------------------------------------------------------
    def saved_reports(self, website: str) -> list[dict[str, Any]]:
        v2 = self.version == "2"
        step = "url" if v2 else "path"
        specs: list[tuple[str, str, dict[str, Any]]] = [
            ("utm", "Campaigns", {}),
            ("revenue", "Revenue", {"currency": "USD"}),
            ("journey", "Journeys", {"steps": 4}),
            ("retention", "Retention", {}),
            (
                "insights" if v2 else "breakdown",
                "Countries and devices",
                {"fields": [{"name": "country", "type": "string"}, {"name": "device", "type": "string"}]}
                if v2
                else {"fields": ["country", "device"]},
            ),
            (
                (
                    "goals",
                    "Goals",
                    {
                        "goals": [
                            {"type": "url", "value": "/pricing", "goal": 50},
                            {"type": "event", "value": "signup", "goal": 10},
                        ]
                    },
                )
                if v2
                else ("goal", "Signups", {"type": "event", "value": "signup"})
            ),
            (
                "funnel",
                "Signup funnel",
                {
                    "window": 60,
                    "steps": [
                        {"type": step, "value": "/"},
                        {"type": step, "value": "/pricing"},
                        {"type": "event", "value": "signup"},
                    ],
                },
            ),
            (
                "attribution",
                "Checkout attribution",
                {"model": "firstClick", "steps": [{"type": "event", "value": "checkout"}]},
            ),
        ]
        if not v2:
            specs.append(("performance", "Web vitals", {}))
        rows = []
        for index, (kind, name, parameters) in enumerate(specs):
            rng = random.Random(stable_seed("umami-report", self.data.seed, website, index))
            rows.append(
                {
                    "id": make_uuid(rng),
                    "userId": "41e2b680-648e-4b09-bcd7-3e2b10c06264",
                    "websiteId": website,
                    "type": kind,
                    "name": name,
                    "description": "",
                    # Umami 2 keeps parameters as a JSON string (dateRange inside); Umami 3 as an object
                    "parameters": json.dumps({**parameters, "websiteId": website, "dateRange": {"value": "30day"}})
                    if v2
                    else parameters,
                    "createdAt": "2024-04-01T08:00:00.000Z",
                    "updatedAt": "2024-04-01T08:00:00.000Z",
                    "website": {"domain": self.traffic.hostnames.get(website)},
                }
            )
        return rows

    def reports(self, request: Request) -> Response:
        website = request.query.get("websiteId")
        if refused := self._guard(request, website):
            return refused
        try:
            page, size = int(request.query.get("page") or 1), int(request.query.get("pageSize") or 10)
        except ValueError:
            return error(400, "Bad request.", "bad-request")
        rows = [r for w in ([website] if website else self.website_ids) for r in self.saved_reports(w)]
        return Response(
            200, {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}
        )

    def run_report(self, request: Request) -> Response:
        assert request.match is not None
        kind = request.match.group("type")
        try:
            body = request.json() or {}
        except ValueError:
            return error(400, "Bad request.", "bad-request")
        website = body.get("websiteId")
        if refused := self._guard(request, website or ""):
            return refused
        try:
            begin, end, zone, parameters = self._report_range(body)
            return Response(200, self.report_truth(kind, str(website), begin, end, zone, parameters))
        except UmamiError as problem:
            return error(problem.status, problem.message, problem.code)

    def _report_range(self, body: dict[str, Any]) -> tuple[float, float, ZoneInfo, dict[str, Any]]:
        """Umami 2: `dateRange` + top-level parameters; Umami 3: `parameters` holding startDate/endDate too."""
        if self.version == "2":
            if "dateRange" not in body:
                raise UmamiError(400, "dateRange is required.", "bad-request")
            span, parameters = body["dateRange"], body
        else:
            if "parameters" not in body or "dateRange" in body:
                raise UmamiError(400, "parameters with startDate and endDate are required.", "bad-request")
            span = parameters = body["parameters"]
        try:
            zone = ZoneInfo(parameters.get("timezone") or body.get("timezone") or "UTC")
            begin, end = (parse_instant(span[key]) for key in ("startDate", "endDate"))
        except (KeyError, ValueError, ZoneInfoNotFoundError):
            raise UmamiError(400, "startDate, endDate and timezone must be valid.", "bad-request") from None
        return begin, end, zone, parameters

    def report_truth(
        self, kind: str, website: str, begin: float, end: float, zone: ZoneInfo, parameters: dict[str, Any]
    ) -> Any:
        pairs = self.traffic.events(website, begin, end, self.now())
        v2 = self.version == "2"
        views = [(s, e) for s, e in pairs if e.event_type == 1]
        if kind == "utm":
            found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for _, event in views:
                for key, value in event.utm().items():
                    found[key][value] += 1
            if v2:
                return {key: dict(values) for key, values in found.items()}
            return {key: [{"utm": v, "views": n} for v, n in sorted(values.items())] for key, values in found.items()}
        if kind == "revenue":
            return self._revenue(pairs, zone, parameters.get("currency"))
        if kind == "journey":
            steps = int(parameters.get("steps") or 5)
            paths: dict[tuple[str | None, ...], int] = defaultdict(int)
            for (_session, _hour), events in visits_of(pairs).items():
                ordered = sorted(events, key=lambda e: e.created)
                items = [e.path if e.event_type == 1 else e.name for e in ordered][:steps]
                paths[tuple(items + [None] * (steps - len(items)))] += 1
            return [
                {"items": list(items), "count": n}
                for items, n in sorted(paths.items(), key=lambda i: (-i[1], str(i[0])))
            ]
        if kind == "retention":
            return self._retention(views, zone)
        if kind in ("insights", "breakdown") and (kind == "breakdown") != v2:
            fields = [f if isinstance(f, str) else f.get("name") for f in parameters.get("fields") or []]
            if not fields:
                raise UmamiError(400, "fields is required.", "bad-request")
            grouped: dict[tuple[str, ...], list[tuple[Session, Event]]] = defaultdict(list)
            for session, event in views:
                grouped[tuple(str(getattr(session, f, "") or getattr(event, f, "")) for f in fields)].append(
                    (session, event)
                )
            rows = []
            for values, members in sorted(grouped.items()):
                stats = stats_of(members)
                numbers: dict[str, Any] = {
                    "views": stats["pageviews"],
                    "visitors": stats["visitors"],
                    "visits": stats["visits"],
                    "bounces": stats["bounces"],
                    "totaltime": stats["totaltime"],
                }
                if not v2:
                    numbers = {k: str(v) for k, v in numbers.items()}  # Umami 3.1 sends these as strings
                rows.append({**numbers, **dict(zip(fields, values, strict=True))})
            return rows
        if kind == "goals" and v2:
            return [
                {**goal, "result": self._goal_count(pairs, goal["type"], goal["value"])}
                for goal in parameters.get("goals") or []
            ]
        if kind == "goal" and not v2:
            matched = {s.id for s, e in pairs if self._matches(e, parameters.get("type", ""), parameters.get("value"))}
            return {"num": len(matched), "total": len({s.id for s, _ in pairs})}
        if kind == "funnel":
            return self._funnel(pairs, parameters.get("steps") or [])
        if kind == "attribution":
            return self._attribution(pairs, parameters)
        if kind == "performance" and not v2:
            return self._performance(views, zone)
        raise UmamiError(404, f"Unknown report type: {kind}.", "not-found")

    @staticmethod
    def _matches(event: Event, kind: str, value: Any) -> bool:
        if kind in ("url", "path"):
            return event.event_type == 1 and event.path == value
        return event.event_type == 2 and event.name == value

    def _goal_count(self, pairs: list[tuple[Session, Event]], kind: str, value: Any) -> int:
        return sum(1 for _, e in pairs if self._matches(e, kind, value))

    def _revenue(self, pairs: list[tuple[Session, Event]], zone: ZoneInfo, currency: str | None) -> dict[str, Any]:
        sales = [(s, e, dict(e.data)) for s, e in pairs if e.name == "checkout"]
        chart: dict[tuple[str, str], float] = defaultdict(float)
        country: dict[str, float] = defaultdict(float)
        table: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for session, event, data in sales:
            table[data["currency"]].append((session.id, data["revenue"]))
            if currency and data["currency"] != currency:
                continue
            local = dt.datetime.fromtimestamp(event.created, zone)
            start = dt.datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(dt.UTC)
            chart[(data["currency"], start.strftime("%Y-%m-%dT%H:%M:%SZ"))] += data["revenue"]
            country[session.country] += data["revenue"]
        chosen = [(sid, amount) for c, rows in table.items() if not currency or c == currency for sid, amount in rows]
        return {
            "chart": [{"x": c, "t": t, "y": round(y, 2)} for (c, t), y in sorted(chart.items())],
            "country": [{"name": name, "value": round(v, 2)} for name, v in sorted(country.items())],
            "total": {
                "sum": round(sum(a for _, a in chosen), 2),
                "count": len(chosen),
                "unique_count": len({s for s, _ in chosen}),
            },
            "table": [
                {
                    "currency": c,
                    "sum": round(sum(a for _, a in rows), 2),
                    "count": len(rows),
                    "unique_count": len({s for s, _ in rows}),
                }
                for c, rows in sorted(table.items())
            ],
        }

    @staticmethod
    def _retention(views: list[tuple[Session, Event]], zone: ZoneInfo) -> list[dict[str, Any]]:
        days_by_visitor: dict[int, set[dt.date]] = defaultdict(set)
        for session, event in views:
            days_by_visitor[session.visitor].add(local_day(event.created, zone))
        cohorts: dict[dt.date, list[set[dt.date]]] = defaultdict(list)
        for seen in days_by_visitor.values():
            cohorts[min(seen)].append(seen)
        rows = []
        for cohort, members in sorted(cohorts.items()):
            last = max(d for seen in members for d in seen)
            for offset in range((last - cohort).days + 1):
                day = cohort + dt.timedelta(days=offset)
                returned = sum(1 for seen in members if day in seen)
                if offset and not returned:
                    continue
                start = dt.datetime(cohort.year, cohort.month, cohort.day, tzinfo=zone).astimezone(dt.UTC)
                rows.append(
                    {
                        "date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "day": offset,
                        "visitors": len(members),
                        "returnVisitors": returned,
                        "percentage": round(returned / len(members) * 100, 2),
                    }
                )
        return rows

    def _funnel(self, pairs: list[tuple[Session, Event]], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(steps) < 2:
            raise UmamiError(400, "funnel needs at least two steps.", "bad-request")
        by_session: dict[str, list[Event]] = defaultdict(list)
        for session, event in pairs:
            by_session[session.id].append(event)
        reached = [0] * len(steps)
        for events in by_session.values():
            index = 0
            for event in sorted(events, key=lambda e: e.created):
                if index < len(steps) and self._matches(event, steps[index]["type"], steps[index]["value"]):
                    reached[index] += 1
                    index += 1
        rows = []
        for i, step in enumerate(steps):
            previous = reached[i - 1] if i else 0
            dropped = previous - reached[i] if i else 0
            rows.append(
                {
                    "type": step["type"],
                    "value": step["value"],
                    "visitors": reached[i],
                    "previous": previous,
                    "dropped": dropped,
                    "dropoff": round(dropped / previous, 4) if i and previous else None,
                    "remaining": round(reached[i] / reached[0], 4) if reached[0] else 0,
                }
            )
        return rows

    def _attribution(self, pairs: list[tuple[Session, Event]], parameters: dict[str, Any]) -> dict[str, Any]:
        steps = parameters.get("steps") or [{"type": parameters.get("type"), "value": parameters.get("step")}]
        goal = steps[0]
        first = parameters.get("model", "firstClick") == "firstClick"
        by_session: dict[str, list[Event]] = defaultdict(list)
        for session, event in pairs:
            by_session[session.id].append(event)
        channels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for events in by_session.values():
            if not any(self._matches(e, goal.get("type", ""), goal.get("value")) for e in events):
                continue
            touches = [e for e in sorted(events, key=lambda e: e.created) if e.referrer_domain or e.query]
            if not touches:
                continue
            touch = touches[0] if first else touches[-1]
            if touch.referrer_domain:
                channels["referrer"][touch.referrer_domain] += 1
            utm = touch.utm()
            if utm.get("utm_medium") == "cpc":
                channels["paidAds"]["Google"] += 1
            for key, value in utm.items():
                channels[key][value] += 1
        views = [(s, e) for s, e in pairs if e.event_type == 1]
        stats = stats_of(views)
        answer: dict[str, Any] = {
            channel: [{"name": n, "value": v} for n, v in sorted(values.items(), key=lambda i: (-i[1], i[0]))]
            for channel, values in channels.items()
        }
        answer["total"] = {"visitors": stats["visitors"], "visits": stats["visits"], "pageviews": stats["pageviews"]}
        return answer

    def _performance(self, views: list[tuple[Session, Event]], zone: ZoneInfo) -> dict[str, Any]:
        def summary(members: list[tuple[Session, Event]]) -> dict[str, Any]:
            out: dict[str, Any] = {name: p75([e.vitals[i] for _, e in members]) for i, name in enumerate(VITAL_NAMES)}
            return {**out, "count": len(members)}

        def grouped(key: Callable[[Session, Event], str]) -> list[dict[str, Any]]:
            groups: dict[str, list[tuple[Session, Event]]] = defaultdict(list)
            for session, event in views:
                groups[key(session, event)].append((session, event))
            return [{"name": name, **summary(members)} for name, members in sorted(groups.items())]

        def day_start(event: Event) -> str:
            local = local_day(event.created, zone)
            return (
                dt.datetime(local.year, local.month, local.day, tzinfo=zone)
                .astimezone(dt.UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ")
            )

        chart = [
            {"t": row["name"], **{k: v for k, v in row.items() if k != "name"}}
            for row in grouped(lambda s, e: day_start(e))
        ]
        return {
            "chart": chart,
            "summary": summary(views),
            "pages": grouped(lambda s, e: e.path),
            "pageTitles": grouped(lambda s, e: e.title),
            "devices": grouped(lambda s, e: s.device),
            "browsers": grouped(lambda s, e: s.browser),
        }


def parse_instant(value: Any) -> float:
    """Report dates arrive as epoch ms or ISO strings (the doc shows both)."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value) / 1000.0
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def demo_plan(simulator: UmamiSimulator) -> DemoPlan:
    data = simulator.data
    env = {
        "SOURCES__UMAMI__BASE_URL": simulator.url + simulator.prefix.replace("/api", ""),
        "SOURCES__UMAMI__TIMEZONE": "Europe/Berlin",
    }
    if simulator.cloud:
        env["SOURCES__UMAMI__API_KEY"] = DEMO_API_KEY
    else:
        env |= {"SOURCES__UMAMI__USERNAME": DEMO_USERNAME, "SOURCES__UMAMI__PASSWORD": DEMO_PASSWORD}
    return DemoPlan(
        env=env,
        start=max(data.first_day + dt.timedelta(days=1), data.last_day - dt.timedelta(days=6)),
        end=data.last_day - dt.timedelta(days=1),
    )


__all__ = [
    "DEMO_API_KEY",
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "UmamiData",
    "UmamiSimulator",
    "demo_plan",
]
