"""A Pirsch API v1 server on 127.0.0.1 with deterministic traffic.

Traffic is generated as sessions (visitor, pages viewed, referrer, device, events...) per UTC day from a seed;
every statistics endpoint aggregates the sessions that started within the requested local days in `tz`, so all
endpoints agree with each other the way a real Pirsch does, and daylight-saving days have 23 or 25 hours.

Writes: `POST /api/v1/hit/batch` and `/api/v1/event/batch` (a JSON list, each hit with its `time`) store hits for
the domain whose hostname the hit's URL names, counted as Pirsch counts them: a visitor is a fingerprint of IP and
User-Agent salted per UTC day (the same person on two days is two visitors), a session ends after 30 minutes
without a hit (or after 24 hours), events do not count as page views, and hits of bots (a User-Agent on the
blacklist, shorter than 10 or longer than 300 characters, or not ASCII), of unknown hostnames, or older than
`max_age_days` are answered 200 and dropped. A batch with an invalid hit is refused whole (HTTP 400).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
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
# How far back a written hit's `time` may lie. Pirsch's documentation names no limit for the batch endpoints (they
# are meant for page views buffered by a server); this is the limit the simulator enforces, and the default of
# destination.pirsch.max_age_days: older hits are answered 200 and dropped.
MAX_AGE_DAYS = 30

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


@dataclass(frozen=True)
class SentHit:
    """One page view or event written through the API, as Pirsch keeps it."""

    time: float
    fingerprint: str  # IP, User-Agent and the UTC day: Pirsch's daily-salted visitor
    path: str
    query: str
    referrer: str
    language: str
    screen_class: str
    platform: str
    os: str
    browser: str
    event: tuple[str, tuple[tuple[str, str], ...], int] | None
    tags: tuple[tuple[str, str], ...]


SESSION_GAP_SECONDS = 30 * 60
SESSION_MAX_SECONDS = 24 * 3600
BOT_MARKERS = ("bot", "crawl", "spider", "slurp", "curl", "wget", "python", "httpx", "java/", "headless", "scrapy")


def is_bot(user_agent: str) -> bool:
    """Pirsch ignores these User-Agents (its blacklist, length limits and non-ASCII rule)."""
    lowered = user_agent.lower()
    return not 10 <= len(user_agent) <= 300 or not user_agent.isascii() or any(m in lowered for m in BOT_MARKERS)


def screen_class(width: int) -> str:
    for limit, name in ((2560, "XXL"), (1920, "XL"), (1280, "L"), (1024, "M")):
        if width >= limit:
            return name
    return "S" if width > 0 else ""


def client_of(user_agent: str) -> tuple[str, str, str]:
    """(os, browser, platform) of a User-Agent, as far as the statistics need them."""
    lowered = user_agent.lower()
    os_name = next(
        (name for marker, name in (("iphone", "iOS"), ("ipad", "iOS"), ("android", "Android"), ("windows", "Windows"),
                                   ("mac os", "Mac"), ("linux", "Linux")) if marker in lowered),
        "",
    )  # fmt: skip
    browser = next(
        (name for marker, name in (("edg/", "Edge"), ("opr/", "Opera"), ("firefox", "Firefox"), ("chrome", "Chrome"),
                                   ("safari", "Safari")) if marker in lowered),
        "",
    )  # fmt: skip
    return os_name, browser, "mobile" if os_name in MOBILE_OS else ("desktop" if os_name else "unknown")


def sessions_of(hits: Iterable[SentHit]) -> list[Session]:
    """Pirsch's sessions of written hits: per daily visitor, split after 30 minutes without a hit (or 24 hours)."""
    by_visitor: dict[str, list[SentHit]] = defaultdict(list)
    for hit in hits:
        by_visitor[hit.fingerprint].append(hit)
    sessions = []
    for fingerprint, visitor_hits in by_visitor.items():
        visitor_hits.sort(key=lambda h: h.time)
        runs: list[list[SentHit]] = []
        for hit in visitor_hits:
            last = runs[-1] if runs else None
            if (
                last
                and hit.time - last[-1].time <= SESSION_GAP_SECONDS
                and hit.time - last[0].time < SESSION_MAX_SECONDS
            ):
                last.append(hit)
            else:
                runs.append([hit])
        for run in runs:
            views = [h for h in run if h.event is None]
            first = run[0]
            seconds = [int(b.time - a.time) for a, b in itertools.pairwise(views)] + [0] if views else []
            utm = tuple((k, v) for k, v in (tuple(p.split("=", 1)) for p in first.query.split("&") if "=" in p)
                        if k in UTM)  # fmt: skip
            sessions.append(
                Session(
                    start=first.time,
                    visitor=stable_seed("visitor", fingerprint) % 10**12,
                    pages=tuple(h.path for h in views),
                    seconds_per_page=tuple(seconds),
                    language=first.language,
                    country="",
                    city="",
                    os=first.os,
                    os_version="",
                    browser=first.browser,
                    browser_version="",
                    platform=first.platform,
                    screen_class=first.screen_class,
                    referrer=first.referrer,
                    referrer_name=urlsplit(first.referrer).hostname or "" if first.referrer else "",
                    utm=utm,
                    events=tuple(h.event for h in run if h.event is not None),
                )
            )
    return sessions


class Traffic:
    """Sessions per domain and UTC day, generated on demand from the seed and cached, plus the written ones."""

    def __init__(self, data: PirschData) -> None:
        self.data = data
        self.paths = data.path_list()
        self._cache = lru_cache(maxsize=4096)(self._generate)
        self.generated = {str(domain["id"]) for domain in data.domain_list()}  # domains added later start empty
        self.sent: dict[str, list[SentHit]] = defaultdict(list)
        self._sent_lock = threading.Lock()
        self._sent_sessions: dict[str, dict[dt.date, list[Session]]] = {}

    def record(self, domain_id: str, hits: list[SentHit]) -> None:
        with self._sent_lock:
            self.sent[domain_id].extend(hits)
            self._sent_sessions.pop(domain_id, None)

    def sent_sessions(self, domain_id: str, tags: dict[str, str] | None = None) -> dict[dt.date, list[Session]]:
        """Written sessions by the UTC day they started; with `tags`, only of the hits carrying them."""
        with self._sent_lock:
            if not tags and domain_id in self._sent_sessions:
                return self._sent_sessions[domain_id]
            hits = [h for h in self.sent.get(domain_id, []) if not tags or tags.items() <= dict(h.tags).items()]
        by_day: dict[dt.date, list[Session]] = defaultdict(list)
        for session in sessions_of(hits):
            by_day[dt.datetime.fromtimestamp(session.start, dt.UTC).date()].append(session)
        if not tags:
            with self._sent_lock:
                self._sent_sessions[domain_id] = by_day
        return by_day

    def sessions_utc_day(self, domain_id: str, day: dt.date, tags: dict[str, str] | None = None) -> tuple[Session, ...]:
        generated = (
            self._cache(domain_id, day) if domain_id in self.generated and self.data.covers(day) and not tags else ()
        )
        return generated + tuple(self.sent_sessions(domain_id, tags).get(day, ()))

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

    def sessions(
        self, domain_id: str, first: dt.date, last: dt.date, tz: str, tags: dict[str, str] | None = None
    ) -> list[Session]:
        """Sessions that started on local days first..last in `tz` (with `tags`: written hits carrying them)."""
        zone = ZoneInfo(tz)
        begin = dt.datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()
        after = last + dt.timedelta(days=1)
        end = dt.datetime(after.year, after.month, after.day, tzinfo=zone).timestamp()
        found: list[Session] = []
        day = dt.datetime.fromtimestamp(begin, dt.UTC).date()
        while dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() < end:
            found.extend(s for s in self.sessions_utc_day(domain_id, day, tags) if begin <= s.start < end)
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
        max_age_days: int = MAX_AGE_DAYS,
    ) -> None:
        super().__init__(faults or Faults(exempt_paths=(r"/api/v1/token$",)), port=port)
        self.max_age_days = max_age_days
        self.clock = clock
        self.added_domains: list[dict[str, Any]] = []
        self.dropped: dict[str, int] = defaultdict(int)  # why written hits were answered 200 and not kept
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
        self.route("POST", r"/api/v1/hit/batch", lambda request: self.write(request, events=False))
        self.route("POST", r"/api/v1/event/batch", lambda request: self.write(request, events=True))

    def domain_list(self) -> list[dict[str, Any]]:
        return self.data.domain_list() + self.added_domains

    @property
    def domain_ids(self) -> list[str]:
        return [domain["id"] for domain in self.domain_list()]

    def add_domain(self, hostname: str) -> str:
        """A new domain without traffic (as created in Pirsch's dashboard): it holds exactly what is written."""
        domain = {**self.data.domain_list()[0], "hostname": hostname, "subdomain": hostname.split(".")[0]}
        domain["id"] = f"new{stable_seed(hostname, len(self.added_domains)) % 10**7:07d}"
        with self._lock:
            self.added_domains.append(domain)
        return str(domain["id"])

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, request: Request, *, events: bool) -> Response:
        """A batch of page views or events, each with its `time`: validated whole, then stored in order."""
        if refused := self._authorized(request):
            return refused
        try:
            body = request.json()
        except ValueError:
            return error(400, "request body is not valid JSON")
        if not isinstance(body, list):
            return error(400, "expected a list of hits")
        hosts = {str(domain["hostname"]).removeprefix("www."): str(domain["id"]) for domain in self.domain_list()}
        now = self.clock()
        kept: dict[str, list[SentHit]] = defaultdict(list)
        for index, item in enumerate(body):
            problem, hit = self._hit(item, events, now)
            if problem:
                return error(400, "invalid hit", validation={f"{index}": problem})
            assert hit is not None
            url = urlsplit(str(item["url"]))
            domain_id = hosts.get((url.hostname or "").removeprefix("www."))
            reason = (
                "bot" if is_bot(str(item["user_agent"]))
                else "hostname" if domain_id is None
                else "too_old" if hit.time < now - self.max_age_days * 86400
                else "future" if hit.time > now + 60
                else None
            )  # fmt: skip
            if reason:
                with self._lock:
                    self.dropped[reason] += 1
                continue
            assert domain_id is not None
            kept[domain_id].append(hit)
        for domain_id, hits in kept.items():
            self.traffic.record(domain_id, hits)
        return Response(200, "")

    def _hit(self, item: Any, events: bool, now: float) -> tuple[str | None, SentHit | None]:
        if not isinstance(item, dict):
            return "not an object", None
        if not item.get("url") or not urlsplit(str(item["url"])).hostname:
            return "url: required, an absolute URL", None
        if not item.get("user_agent"):
            return "user_agent: required", None
        try:
            moment = dt.datetime.fromisoformat(str(item.get("time") or "").replace("Z", "+00:00")).timestamp()
        except ValueError:
            moment = now if item.get("time") is None else -1.0
        if moment < 0:
            return "time: invalid format, use RFC 3339", None
        event = None
        if events:
            name = str(item.get("event_name") or "").strip()
            if not name:
                return "event_name: required", None
            meta = item.get("event_meta") or {}
            if not isinstance(meta, dict) or any(isinstance(v, (dict, list)) for v in meta.values()):
                return "event_meta: a single-level object of scalar values", None
            event = (
                name,
                tuple(sorted((str(k), str(v)) for k, v in meta.items())),
                int(item.get("event_duration") or 0),
            )
        url = urlsplit(str(item["url"]))
        agent = str(item["user_agent"])
        os_name, browser, platform = client_of(agent)
        day = dt.datetime.fromtimestamp(moment, dt.UTC).date()
        tags = item.get("tags") or {}
        return None, SentHit(
            moment,
            f"{item.get('ip') or ''}|{agent}|{day.isoformat()}",
            url.path or "/",
            url.query,
            str(item.get("referrer") or ""),
            str(item.get("accept_language") or "")[:2].lower(),
            screen_class(int(item.get("screen_width") or 0)),
            platform,
            os_name,
            browser,
            event,
            tuple(sorted((str(k), str(v)) for k, v in tags.items())) if isinstance(tags, dict) else (),
        )

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
        return limited or json_response(self.domain_list(), headers=headers)

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
        """The unpaged answer of one statistics endpoint: what the tests call the truth. `tag_<key>=<value>`
        filters keep only the written hits carrying those tags."""
        tags = {key[4:]: value for key, value in query.items() if key.startswith("tag_")}
        if tags:
            return self.tagged(name, domain_id, first, last, tz, tags)
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

    def tagged(self, name: str, domain_id: str, first: dt.date, last: dt.date, tz: str, tags: dict[str, str]) -> Any:
        """`total` and `events` of the hits carrying `tags`: what a client reads back to find its own hits."""
        sessions = self.traffic.sessions(domain_id, first, last, tz, tags)
        if name == "total":
            return counts(sessions)
        if name == "events":
            return self.statistics.breakdown(name, sessions, {}, domain_id)
        return None

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


__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "MAX_AGE_DAYS", "PirschData", "PirschSimulator", "demo_plan"]
