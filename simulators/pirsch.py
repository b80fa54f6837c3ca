"""A Pirsch API v1 server on 127.0.0.1 with deterministic traffic.

Traffic is generated as sessions (visitor, pages viewed, referrer, device, events...) per UTC day from a seed;
every statistics endpoint aggregates the sessions that started within the requested local days in `tz`, so all
endpoints agree with each other the way a real Pirsch does, and daylight-saving days have 23 or 25 hours.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.harness import (
    Faults,
    Request,
    Response,
    SimulatorServer,
    SlidingWindow,
    TokenStore,
    json_response,
    stable_seed,
)
from simulators.registry import DemoPlan
from simulators.traffic import TrafficDays, day_rng, visit_start
from sources.common.clock import wall_time

DEMO_CLIENT_ID = "clickhaul-demo-client-0000000000000"
DEMO_CLIENT_SECRET = "pirsch-demo-secret-5f0c9e2b7d4a41c8b3e6a9d2c7f1e8b4"
PAGE_LIMIT = 100

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "pt", "ja", "zh", "sv", "da"]
COUNTRIES = {
    "us": ["New York", "San Francisco", "Chicago"],
    "de": ["Berlin", "Munich", "Hamburg"],
    "gb": ["London", "Manchester"],
    "fr": ["Paris", "Lyon"],
    "jp": ["Tokyo", "Osaka"],
    "nl": ["Amsterdam"],
    "es": ["Madrid", "Barcelona"],
    "br": ["São Paulo"],
    "in": ["Bangalore"],
    "ca": ["Toronto", "Montréal"],
}
OS_VERSIONS = {
    "Windows": ["10", "11"],
    "Mac": ["13.6", "14.2", "15.1"],
    "Linux": [""],
    "iOS": ["17.5", "18.1"],
    "Android": ["13", "14", "15"],
}
BROWSERS = {
    "Chrome": ["129.0", "130.0", "131.0"],
    "Firefox": ["131.0", "132.0"],
    "Safari": ["17.6", "18.1"],
    "Edge": ["130.0"],
    "Opera": ["114.0"],
}
MOBILE_OS = {"iOS", "Android"}
SCREEN_CLASSES = ["XXL", "XL", "L", "M", "S"]
REFERRERS = [
    ("https://www.google.com/", "Google"),
    ("https://news.ycombinator.com/", "Hacker News"),
    ("https://twitter.com/", "Twitter"),
    ("https://www.reddit.com/", "Reddit"),
    ("https://duckduckgo.com/", "DuckDuckGo"),
    ("https://github.com/", "GitHub"),
    ("https://www.bing.com/", "Bing"),
    ("https://www.linkedin.com/", "LinkedIn"),
]
UTM = {
    "utm_source": ["newsletter", "twitter", "partner"],
    "utm_medium": ["email", "social", "cpc"],
    "utm_campaign": ["spring_sale", "launch", "black_friday"],
    "utm_content": ["header", "footer"],
    "utm_term": ["analytics", "privacy analytics"],
}
EVENTS = {
    "Signup": {"plan": ["free", "pro", "team"]},
    "Download": {"file": ["guide.pdf", "sdk.zip"]},
    "Button Clicked": {"button": ["hero", "pricing", "footer"], "variant": ["a", "b"]},
    "Newsletter": {},
}


@dataclass(frozen=True)
class Session:
    start: float  # unix seconds
    visitor: int
    pages: tuple[str, ...]
    seconds_per_page: tuple[int, ...]
    language: str
    country: str
    city: str
    os: str
    os_version: str
    browser: str
    browser_version: str
    platform: str
    screen_class: str
    referrer: str
    referrer_name: str
    utm: tuple[tuple[str, str], ...]
    events: tuple[tuple[str, tuple[tuple[str, str], ...], int], ...]

    @property
    def duration(self) -> int:
        return sum(self.seconds_per_page)


@dataclass
class PirschData(TrafficDays):
    """What the simulated account holds. Days run from `last_day - days + 1` to `last_day` (UTC)."""

    seed: int = 42
    domains: int = 2
    paths: int = 150
    sessions_per_day: tuple[int, int] = (120, 260)
    visitor_pool: int = 2000
    goals_per_domain: int = 3

    def domain_list(self) -> list[dict[str, Any]]:
        created = "2021-05-22T10:11:12.123456Z"
        return [
            {
                "id": f"dom{index:02d}{stable_seed(self.seed, index) % 10**6:06d}",
                "def_time": created,
                "mod_time": created,
                "user_id": "pzy1bjD1lv",
                "hostname": f"site{index}.example.com",
                "subdomain": f"site{index}",
                "identification_code": f"code{index}",
                "public": False,
                "google_user_id": None,
                "google_user_email": None,
                "gsc_domain": f"sc-domain:site{index}.example.com",
                "new_owner": None,
                "timezone": "Europe/Berlin",
                "group_by_title": False,
                "user_role": "Owner",
            }
            for index in range(1, self.domains + 1)
        ]

    def path_list(self) -> list[str]:
        fixed = ["/", "/pricing", "/features", "/about", "/contact", "/signup", "/checkout/cart", "/checkout/done"]
        return fixed + [f"/blog/post-{index:03d}" for index in range(1, max(1, self.paths - len(fixed)) + 1)]

    def goal_list(self, domain_id: str) -> list[dict[str, Any]]:
        patterns = [
            ("Checkout", "/checkout/**"),
            ("Read blog", "/blog/**"),
            ("Pricing", "/pricing"),
            ("Signup", "/signup"),
        ]
        created = "2022-01-10T09:00:00Z"
        return [
            {
                "id": f"goal{index}{domain_id[-4:]}",
                "def_time": created,
                "mod_time": created,
                "domain_id": domain_id,
                "name": name,
                "path_pattern": pattern,
                "pattern": glob_to_regex(pattern),
                "visitor_goal": None if index % 2 else 100 * index,
                "cr_goal": None if index % 2 == 0 else 2.5,
                "delete_reached": False,
                "email_reached": index == 1,
            }
            for index, (name, pattern) in enumerate(patterns[: self.goals_per_domain], start=1)
        ]


def glob_to_regex(pattern: str) -> str:
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return f"(?i)^{regex}$"


def title_of(path: str) -> str:
    return "Home" if path == "/" else path.strip("/").replace("/", " · ").replace("-", " ").title()


class Traffic:
    """Sessions per domain and UTC day, generated on demand from the seed and cached."""

    def __init__(self, data: PirschData) -> None:
        self.data = data
        self.paths = data.path_list()
        self._cache = lru_cache(maxsize=4096)(self._generate)

    def sessions_utc_day(self, domain_id: str, day: dt.date) -> tuple[Session, ...]:
        return self._cache(domain_id, day) if self.data.covers(day) else ()

    def _generate(self, domain_id: str, day: dt.date) -> tuple[Session, ...]:
        rng = day_rng(self.data.seed, domain_id, day)
        low, high = self.data.sessions_per_day
        count = rng.randint(low, high)
        sessions = []
        for _ in range(count):
            start = visit_start(rng, day)
            views = min(8, max(1, int(rng.expovariate(0.55)) + 1))
            pages = tuple(self._path(rng) for _ in range(views))
            country = rng.choice(list(COUNTRIES))
            os_name = rng.choices(list(OS_VERSIONS), [40, 20, 8, 17, 15])[0]
            browser = rng.choices(list(BROWSERS), [55, 15, 20, 8, 2])[0]
            platform = "mobile" if os_name in MOBILE_OS else rng.choices(["desktop", "unknown"], [95, 5])[0]
            referrer, referrer_name = rng.choice(REFERRERS) if rng.random() < 0.55 else ("", "")
            utm = tuple((key, rng.choice(values)) for key, values in UTM.items()) if rng.random() < 0.15 else ()
            events = []
            for _ in range(rng.choices([0, 1, 2], [70, 25, 5])[0]):
                name = rng.choice(list(EVENTS))
                meta = tuple(sorted((key, rng.choice(values)) for key, values in EVENTS[name].items()))
                events.append((name, meta, rng.randint(0, 120)))
            sessions.append(
                Session(
                    start=start,
                    visitor=rng.randrange(self.data.visitor_pool),
                    pages=pages,
                    seconds_per_page=tuple(rng.randint(5, 300) for _ in pages),
                    language=rng.choice(LANGUAGES),
                    country=country,
                    city=rng.choice(COUNTRIES[country]),
                    os=os_name,
                    os_version=rng.choice(OS_VERSIONS[os_name]),
                    browser=browser,
                    browser_version=rng.choice(BROWSERS[browser]),
                    platform=platform,
                    screen_class=("S" if platform == "mobile" else rng.choice(SCREEN_CLASSES[:4])),
                    referrer=referrer,
                    referrer_name=referrer_name,
                    utm=utm,
                    events=tuple(events),
                )
            )
        return tuple(sorted(sessions, key=lambda session: session.start))

    def _path(self, rng: random.Random) -> str:
        if rng.random() < 0.5:
            return self.paths[min(len(self.paths) - 1, int(rng.paretovariate(1.2)) - 1)]
        return rng.choice(self.paths)

    def sessions(self, domain_id: str, first: dt.date, last: dt.date, tz: str) -> list[Session]:
        """Sessions that started on local days first..last in `tz`."""
        zone = ZoneInfo(tz)
        begin = dt.datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()
        after = last + dt.timedelta(days=1)
        end = dt.datetime(after.year, after.month, after.day, tzinfo=zone).timestamp()
        found: list[Session] = []
        day = dt.datetime.fromtimestamp(begin, dt.UTC).date()
        while dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() < end:
            found.extend(s for s in self.sessions_utc_day(domain_id, day) if begin <= s.start < end)
            day += dt.timedelta(days=1)
        return found


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def group(sessions: Iterable[Session], key: Callable[[Session], Any]) -> dict[Any, list[Session]]:
    groups: dict[Any, list[Session]] = defaultdict(list)
    for session in sessions:
        groups[key(session)].append(session)
    return groups


def visitor_share(
    sessions: list[Session], key: Callable[[Session], Any], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    total = len({s.visitor for s in sessions})
    rows = []
    for value, members in group(sessions, key).items():
        visitors = len({s.visitor for s in members})
        values = value if isinstance(value, tuple) else (value,)
        rows.append(
            {**dict(zip(names, values, strict=True)), "visitors": visitors, "relative_visitors": ratio(visitors, total)}
        )
    return rows


def counts(sessions: list[Session]) -> dict[str, Any]:
    visits = len(sessions)
    bounces = sum(1 for s in sessions if len(s.pages) == 1)
    return {
        "visitors": len({s.visitor for s in sessions}),
        "views": sum(len(s.pages) for s in sessions),
        "sessions": visits,
        "bounces": bounces,
        "bounce_rate": ratio(bounces, visits),
    }


class Statistics:
    """The statistics endpoints as functions of (sessions, request) → unpaged rows, sorted for stable paging."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic

    def breakdown(self, name: str, sessions: list[Session], query: dict[str, str], domain_id: str) -> Any:
        total_visitors = len({s.visitor for s in sessions})
        if name == "page":
            return self._pages(sessions, total_visitors)
        if name in ("page/entry", "page/exit"):
            return self._entry_exit(sessions, name.endswith("entry"))
        if name == "referrer":
            rows = []
            for (referrer, referrer_name), members in group(sessions, lambda s: (s.referrer, s.referrer_name)).items():
                c = counts(members)
                rows.append(
                    {
                        "referrer": referrer or None,
                        "referrer_name": referrer_name or None,
                        "referrer_icon": f"https://icons.example/{referrer_name.lower()}.png" if referrer else None,
                        "visitors": c["visitors"],
                        "sessions": c["sessions"],
                        "relative_visitors": ratio(c["visitors"], total_visitors),
                        "bounces": c["bounces"],
                        "bounce_rate": c["bounce_rate"],
                    }
                )
            return rows
        if name.startswith("utm/"):
            key = "utm_" + name.split("/")[1]
            tagged = [s for s in sessions if dict(s.utm).get(key)]
            return [
                {**row, "relative_visitors": ratio(row["visitors"], total_visitors)}
                for row in visitor_share(tagged, lambda s: dict(s.utm)[key], (key,))
            ]
        simple = {
            "language": ("language",),
            "country": ("country",),
            "city": ("city",),
            "os": ("os",),
            "os/version": ("os", "os_version"),
            "browser": ("browser",),
            "browser/version": ("browser", "browser_version"),
            "screen": ("screen_class",),
        }
        if name in simple:
            fields = simple[name]
            return visitor_share(sessions, lambda s: tuple(getattr(s, f) for f in fields), fields)
        if name == "hours":
            zone = ZoneInfo(query.get("tz") or "UTC")
            by_hour = group(sessions, lambda s: dt.datetime.fromtimestamp(s.start, zone).hour)
            return [{"hour": hour, **counts(by_hour.get(hour, []))} for hour in range(24)]
        if name == "events":
            return self._events(sessions, total_visitors)
        if name == "event/meta":
            return self._event_meta(sessions, total_visitors, query)
        if name == "event/list":
            found: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = defaultdict(list)
            for s in sessions:
                for event_name, meta, _ in s.events:
                    found[(event_name, meta)].append(s.visitor)
            return [
                {"name": event_name, "meta": dict(meta), "visitors": len(set(visitors)), "count": len(visitors)}
                for (event_name, meta), visitors in found.items()
            ]
        if name == "goals":
            rows = []
            for goal in self.traffic.data.goal_list(domain_id):
                pattern = re.compile(goal["pattern"])
                hits = [(s, sum(1 for p in s.pages if pattern.match(p))) for s in sessions]
                reached = [s for s, n in hits if n]
                visitors = len({s.visitor for s in reached})
                rows.append(
                    {
                        "page_goal": goal,
                        "stats": {
                            "visitors": visitors,
                            "views": sum(n for _, n in hits),
                            "cr": ratio(visitors, total_visitors),
                        },
                    }
                )
            return rows
        if name == "keywords":
            rng = random.Random(stable_seed("kw", domain_id, query.get("from"), query.get("to")))
            words = [
                "privacy analytics",
                "cookie free analytics",
                "google analytics alternative",
                "web stats",
                "pirsch",
                "gdpr analytics",
                "simple analytics",
                "open source analytics",
            ]
            rows = []
            for word in words[: 3 + len(sessions) % 6]:
                impressions = rng.randint(20, 900)
                clicks = rng.randint(0, impressions // 4)
                rows.append(
                    {
                        "keys": word.split(),
                        "clicks": clicks,
                        "impressions": impressions,
                        "ctr": ratio(clicks, impressions),
                        "position": round(rng.uniform(1, 30), 2),
                    }
                )
            return rows
        return None

    def _pages(self, sessions: list[Session], total_visitors: int) -> list[dict[str, Any]]:
        views: dict[str, int] = defaultdict(int)
        visitors: dict[str, set[int]] = defaultdict(set)
        visits: dict[str, int] = defaultdict(int)
        bounces: dict[str, int] = defaultdict(int)
        seconds: dict[str, int] = defaultdict(int)
        for s in sessions:
            for path, spent in zip(s.pages, s.seconds_per_page, strict=True):
                views[path] += 1
                visitors[path].add(s.visitor)
                seconds[path] += spent
            for path in set(s.pages):
                visits[path] += 1
            if len(s.pages) == 1:
                bounces[s.pages[0]] += 1
        total_views = sum(views.values())
        return [
            {
                "path": path,
                "title": title_of(path),
                "visitors": len(visitors[path]),
                "views": views[path],
                "sessions": visits[path],
                "bounces": bounces[path],
                "relative_visitors": ratio(len(visitors[path]), total_visitors),
                "relative_views": ratio(views[path], total_views),
                "bounce_rate": ratio(bounces[path], visits[path]),
                "average_time_spent_seconds": seconds[path] // views[path],
            }
            for path in views
        ]

    def _entry_exit(self, sessions: list[Session], entry: bool) -> list[dict[str, Any]]:
        visits: dict[str, int] = defaultdict(int)
        for s in sessions:
            for path in set(s.pages):
                visits[path] += 1
        rows = []
        for path, members in group(sessions, lambda s: s.pages[0] if entry else s.pages[-1]).items():
            row: dict[str, Any] = {
                "path": path,
                "title": title_of(path),
                "visitors": len({s.visitor for s in members}),
                "sessions": visits[path],
            }
            if entry:
                row.update(
                    entries=len(members),
                    entry_rate=ratio(len(members), visits[path]),
                    average_time_spent_seconds=sum(s.seconds_per_page[0] for s in members) // len(members),
                )
            else:
                row.update(exits=len(members), exit_rate=ratio(len(members), visits[path]))
            rows.append(row)
        return rows

    def _events(self, sessions: list[Session], total_visitors: int) -> list[dict[str, Any]]:
        found: dict[str, list[tuple[int, int, tuple[tuple[str, str], ...]]]] = defaultdict(list)
        for s in sessions:
            for name, meta, seconds in s.events:
                found[name].append((s.visitor, seconds, meta))
        rows = []
        for name, hits in found.items():
            visitors = len({visitor for visitor, _, _ in hits})
            keys = sorted({key for _, _, meta in hits for key, _ in meta})
            rows.append(
                {
                    "name": name,
                    "visitors": visitors,
                    "views": len(hits),
                    "cr": ratio(visitors, total_visitors),
                    "average_duration_seconds": sum(sec for _, sec, _ in hits) // len(hits),
                    "meta_keys": keys,
                }
            )
        return rows

    def _event_meta(self, sessions: list[Session], total_visitors: int, query: dict[str, str]) -> Any:
        event, key = query.get("event"), query.get("event_meta_key")
        if not event or not key:
            return None
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for s in sessions:
            for name, meta, seconds in s.events:
                value = dict(meta).get(key)
                if name == event and value is not None:
                    found[value].append((s.visitor, seconds))
        return [
            {
                "name": event,
                "visitors": len({v for v, _ in hits}),
                "views": len(hits),
                "cr": ratio(len({v for v, _ in hits}), total_visitors),
                "average_duration_seconds": sum(sec for _, sec in hits) // len(hits),
                "meta_value": value,
            }
            for value, hits in found.items()
        ]


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most visitors first, ties broken by every other value: paging must be stable between requests."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        lead = row.get("visitors", (row.get("stats") or {}).get("visitors", 0))
        if "hour" in row:
            return (row["hour"],)
        return (-(lead or 0), repr(sorted((k, str(v)) for k, v in row.items())))

    return sorted(rows, key=key)


class PirschSimulator(SimulatorServer):
    vendor = "pirsch"

    def __init__(
        self,
        data: PirschData | None = None,
        faults: Faults | None = None,
        *,
        token_ttl: float = 900.0,
        token_limit_per_minute: int = 10,
        config_limit_per_minute: int = 60,
        clock: Callable[[], float] = wall_time,
        port: int = 0,
        clients: dict[str, str] | None = None,
    ) -> None:
        super().__init__(faults or Faults(exempt_paths=(r"/api/v1/token$",)), port=port)
        self.data = data or PirschData()
        self.traffic = Traffic(self.data)
        self.statistics = Statistics(self.traffic)
        self.tokens = TokenStore(token_ttl, clock)
        self.clients = clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self._token_windows: dict[str, SlidingWindow] = defaultdict(lambda: SlidingWindow(token_limit_per_minute, 60))
        self._config_window = SlidingWindow(config_limit_per_minute, 60)
        self._lock = threading.Lock()
        self.route("POST", r"/api/v1/token", self.token)
        self.route("GET", r"/api/v1/domain", self.domains)
        self.route("GET", r"/api/v1/goal", self.goals)
        self.route("GET", r"/api/v1/statistics/(?P<name>[a-z/]+)", self.statistic)

    @property
    def domain_ids(self) -> list[str]:
        return [domain["id"] for domain in self.data.domain_list()]

    # -- auth -----------------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return error(400, "request body is not valid JSON")
        client_id, secret = body.get("client_id"), body.get("client_secret")
        with self._lock:
            window = self._token_windows[str(client_id)]
        if not window.try_hit():
            return error(429, "too many token requests", headers={"Retry-After": f"{window.retry_after():.0f}"})
        if not client_id or self.clients.get(client_id) != secret:
            return error(401, "client not found or secret invalid")
        token, expires_at = self.tokens.issue()
        expires = dt.datetime.fromtimestamp(expires_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "271Z"
        return json_response({"access_token": token, "expires_at": expires})

    def _authorized(self, request: Request) -> Response | None:
        if not self.tokens.valid(request.bearer):
            return error(401, "unauthorized")
        return None

    def _config_limit(self) -> tuple[Response | None, dict[str, str]]:
        allowed = self._config_window.try_hit()
        headers = {
            "X-RateLimit-Limit": str(self._config_window.limit),
            "X-RateLimit-Remaining": str(max(0, self._config_window.limit - self._config_window.count())),
        }
        if not allowed:
            retry = f"{max(1.0, self._config_window.retry_after()):.0f}"
            return error(429, "rate limit exceeded", headers={**headers, "Retry-After": retry}), headers
        return None, headers

    # -- management ------------------------------------------------------------------------------------
    def domains(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        limited, headers = self._config_limit()
        return limited or json_response(self.data.domain_list(), headers=headers)

    def goals(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        limited, headers = self._config_limit()
        if limited:
            return limited
        domain_id = request.query.get("id", "")
        if domain_id not in self.domain_ids:
            return error(400, "domain not found", validation={"id": "unknown domain"})
        return json_response(self.data.goal_list(domain_id), headers=headers)

    # -- statistics ------------------------------------------------------------------------------------
    def statistic(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        assert request.match is not None
        name = request.match.group("name").strip("/")
        query = request.query
        problems = {}
        domain_id = query.get("id", "")
        if domain_id not in self.domain_ids:
            problems["id"] = "domain not found"
        tz = query.get("tz") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems["tz"] = "invalid time zone"
        dates = {}
        for field_name in ("from", "to"):
            try:
                dates[field_name] = dt.date.fromisoformat(query.get(field_name, ""))
            except ValueError:
                problems[field_name] = "required, format YYYY-MM-DD"
        try:
            offset = int(query.get("offset") or 0)
            limit = min(PAGE_LIMIT, int(query.get("limit") or PAGE_LIMIT))
            if offset < 0 or limit < 1:
                raise ValueError
        except ValueError:
            problems["limit"] = "offset and limit must be positive integers"
        if problems:
            return error(400, "invalid filter", validation=problems)
        first, last = dates["from"], dates["to"]
        if last < first:
            return error(400, "invalid filter", validation={"to": "must not be before from"})
        answer = self.answer(name, domain_id, first, last, tz, query)
        if answer is None:
            return error(404, f"statistics endpoint {name!r} not found or missing required filter")
        if isinstance(answer, list):
            answer = sort_rows(answer)[offset : offset + limit]
        return json_response(answer)

    def answer(self, name: str, domain_id: str, first: dt.date, last: dt.date, tz: str, query: dict[str, str]) -> Any:
        """The unpaged answer of one statistics endpoint: what the tests call the truth."""
        sessions = self.traffic.sessions(domain_id, first, last, tz)
        if path := query.get("path"):
            sessions = [s for s in sessions if path in s.pages]
        if name in ("visitor", "duration/session", "duration/page"):
            rows = []
            day = first
            while day <= last:
                members = self.traffic.sessions(domain_id, day, day, tz)
                stamp = f"{day.isoformat()}T00:00:00Z"
                if name == "visitor":
                    c = counts(members)
                    rows.append({"day": stamp, **c})
                elif name == "duration/session":
                    rows.append(
                        {
                            "day": stamp,
                            "average_time_spent_seconds": sum(s.duration for s in members) // len(members)
                            if members
                            else 0,
                        }
                    )
                else:
                    spent = [
                        sec
                        for s in members
                        for p, sec in zip(s.pages, s.seconds_per_page, strict=True)
                        if not path or p == path
                    ]
                    rows.append(
                        {
                            "day": stamp,
                            "path": path or None,
                            "average_time_spent_seconds": sum(spent) // len(spent) if spent else 0,
                        }
                    )
                day += dt.timedelta(days=1)
            return rows
        if name == "total":
            return counts(sessions)
        if name == "platform":
            total = len({s.visitor for s in sessions})
            out: dict[str, Any] = {}
            for platform in ("desktop", "mobile", "unknown"):
                visitors = len({s.visitor for s in sessions if s.platform == platform})
                out[f"platform_{platform}"] = visitors
                out[f"relative_platform_{platform}"] = ratio(visitors, total)
            return out
        if name == "growth":
            span = (last - first).days + 1
            before = self.traffic.sessions(domain_id, first - dt.timedelta(days=span), first - dt.timedelta(days=1), tz)
            now, then = counts(sessions), counts(before)
            growth = {
                f"{key}_growth": ratio(now[key] - then[key], then[key])
                for key in ("visitors", "views", "sessions", "bounces")
            }
            spent_now, spent_then = sum(s.duration for s in sessions), sum(s.duration for s in before)
            return {**growth, "time_spent_growth": ratio(spent_now - spent_then, spent_then)}
        if name == "active":
            return {"stats": [], "visitors": 0}
        return self.statistics.breakdown(name, sessions, query, domain_id)

    def truth(self, table_path: str, domain_id: str, day: dt.date, tz: str = "UTC", **query: str) -> Any:
        return self.answer(table_path, domain_id, day, day, tz, {"tz": tz, **query})


def error(
    status: int, message: str, validation: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(status, {"validation": validation or {}, "error": [message]}, headers=headers or {})


def demo_plan(simulator: PirschSimulator) -> DemoPlan:
    data = simulator.data
    return DemoPlan(
        env={
            "SOURCES__PIRSCH__BASE_URL": simulator.url,
            "SOURCES__PIRSCH__CLIENT_ID": DEMO_CLIENT_ID,
            "SOURCES__PIRSCH__CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "SOURCES__PIRSCH__TIMEZONE": "Europe/Berlin",
        },
        start=max(data.first_day + dt.timedelta(days=1), data.last_day - dt.timedelta(days=13)),
        end=data.last_day - dt.timedelta(days=1),
    )


__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "PirschData", "PirschSimulator", "demo_plan"]
