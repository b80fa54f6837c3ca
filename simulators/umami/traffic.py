"""What a simulated Umami holds: sessions with their pageviews and custom events, per website.

Two kinds of traffic share one model. Generated websites get sessions per UTC day from a seed (the demo, the
load tests); websites created through `POST /api/websites` hold exactly the hits sent to `POST /api/send`, which
the server classifies the way real Umami 2.20 and 3.1 did in the recordings (browser and OS from the user agent,
device from OS and screen, country from the client address, referrer without `www.`).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulators.harness import stable_seed
from simulators.traffic import TrafficDays, day_rng, utc_midnight, visit_start

PATHS = ["/", "/pricing", "/features", "/docs", "/docs/install", "/docs/api", "/about", "/contact", "/signup"]
TITLES = {"/": "Home", "/signup": "Sign up"}
BROWSERS = ["chrome", "firefox", "safari", "edge-chromium", "ios", "samsung"]
OSES = ["Windows 10", "Mac OS", "Linux", "iOS", "Android OS"]
SCREENS = {
    "Windows 10": "1920x1080",
    "Mac OS": "1440x900",
    "Linux": "1920x1080",
    "iOS": "390x844",
    "Android OS": "412x915",
}
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
REFERRERS = [  # stored as Umami stores them: the domain without `www.`
    ("google.com", "/search", "q=analytics"),
    ("news.ycombinator.com", "/item", "id=1"),
    ("twitter.com", "/status", ""),
    ("duckduckgo.com", "/", ""),
    ("github.com", "/umami-software", ""),
    ("mail.google.com", "/mail", ""),
]
UTM_VALUES = {
    "utm_source": ["newsletter", "google", "partner"],
    "utm_medium": ["email", "cpc", "social"],
    "utm_campaign": ["launch", "spring_sale"],
    "utm_content": ["header", "footer"],
    "utm_term": ["analytics"],
}
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
EVENTS = ["signup", "download", "outbound-link-click", "checkout"]
TAGS = ["", "", "variant-a", "variant-b"]
CURRENCIES = ["USD", "EUR"]
ADMIN_ID = "41e2b680-648e-4b09-bcd7-3e2b10c06264"

# The simulator's GeoIP database: the client addresses the recordings used, placed as the real servers placed them.
GEOIP: dict[str, tuple[str, str | None, str | None]] = {
    "8.8.8.8": ("US", None, None),
    "81.2.69.160": ("GB", "GB-ENG", "East Finchley"),
    "85.214.132.117": ("DE", None, None),
    "133.242.0.3": ("JP", None, None),
    "200.160.2.3": ("BR", "BR-SP", "São Paulo"),
}
DESKTOP_OSES = ("Windows 10", "Windows 11", "Mac OS", "Linux", "Chrome OS", "Ubuntu")
MOBILE_OSES = ("iOS", "Android OS", "Amazon OS")
BOT_MARKERS = ("bot", "crawl", "spider", "curl/", "wget/", "python-requests", "httpclient", "headless")
SEARCH = ("google.", "bing.", "duckduckgo.", "yahoo.", "yandex.", "baidu.", "ecosia.")
SOCIAL = ("twitter.", "x.com", "facebook.", "news.ycombinator.", "reddit.", "linkedin.", "instagram.")
EMAIL = ("mail.", "outlook.", "gmail.")
PAID_AD_PARAMS = ("utm_source=google", "gclid=", "fbclid=", "msclkid=", "dclid=", "twclid=", "li_fat_id=", "ttclid=")
CLICK_IDS = {
    "gclid": "Google Ads",
    "fbclid": "Facebook / Meta",
    "msclkid": "Microsoft Ads",
    "ttclid": "TikTok",
    "li_fat_id": "LinkedIn",
    "twclid": "Twitter (X)",
}
# Umami 2's channel metric lists every one of these, zeros included.
CHANNELS = (
    "direct",
    "referral",
    "affiliate",
    "sms",
    "organicSearch",
    "paidSearch",
    "organicSocial",
    "paidSocial",
    "email",
    "organicShopping",
    "paidShopping",
    "organicVideo",
    "paidVideo",
    "paidAds",
)


@dataclass(frozen=True)
class Event:
    id: str
    session_id: str
    visit_id: str
    created: float  # unix seconds
    event_type: int  # 1 pageview, 2 custom event
    path: str
    query: str
    title: str
    referrer_domain: str  # '' when the hit had no (external) referrer
    referrer_path: str
    referrer_query: str
    name: str
    tag: str
    hostname: str
    data: tuple[tuple[str, Any], ...] = ()
    vitals: tuple[float, ...] = ()  # lcp, inp, cls, fcp, ttfb of a pageview

    @property
    def is_view(self) -> bool:
        return self.event_type == 1

    def utm(self) -> dict[str, str]:
        return {key: value for key, value in parse_qsl(self.query) if key in UTM_KEYS}


@dataclass(frozen=True)
class Session:
    id: str
    website_id: str
    visitor: str  # who returns on later days (retention)
    distinct_id: str | None
    hostname: str
    browser: str | None
    os: str | None
    device: str | None
    screen: str | None
    language: str | None
    country: str | None
    region: str | None
    city: str | None
    events: tuple[Event, ...]
    stored_at: float  # the session row's own created_at: Umami 2 keeps the arrival time, Umami 3 back-dates it


def make_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def name_uuid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(str, parts))))


def iso(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(seconds * 1000) % 1000:03d}Z"
    )


def random_vitals(rng: random.Random) -> tuple[float, ...]:
    """lcp, inp (ms), cls, fcp, ttfb (ms) of one pageview."""
    return (
        round(rng.uniform(800, 4500)),
        round(rng.uniform(40, 600)),
        round(rng.uniform(0, 0.4), 3),
        round(rng.uniform(500, 3200)),
        round(rng.uniform(80, 1900)),
    )


def device_of(os_name: str | None, screen: str | None, version: str) -> str | None:
    """Umami 2 splits desktops by screen width (1920 px and wider: desktop, else laptop); Umami 3.1 calls every
    desktop a laptop. Phones narrower than 480 px are mobiles, wider ones tablets."""
    try:
        width = int((screen or "").split("x")[0])
    except ValueError:
        width = 0
    if os_name in DESKTOP_OSES:
        if version == "3" or os_name == "Chrome OS" or width < 1920:
            return "laptop"
        return "desktop"
    if os_name in MOBILE_OSES:
        return "tablet" if os_name == "Amazon OS" or width > 479 else "mobile"
    if not width:
        return None
    return "desktop" if width >= 1920 else "laptop" if width >= 1024 else "tablet" if width >= 480 else "mobile"


# What a user agent contains → Umami's browser and OS names, first match wins.
BROWSER_MARKERS = (
    ("Edg/", "edge-chromium"),
    ("Firefox/", "firefox"),
    ("SamsungBrowser/", "samsung"),
    ("Chrome/", "chrome"),
    ("Version/", "safari"),
)
OS_MARKERS = (
    ("Windows NT 10.0", "Windows 10"),
    ("Android", "Android OS"),
    ("Mac OS X", "Mac OS"),
    ("CrOS", "Chrome OS"),
    ("Linux", "Linux"),
)


def client_of(user_agent: str) -> tuple[str | None, str | None]:
    """Browser and OS names as Umami's detection writes them, for the user agents browsers send."""
    ua = user_agent or ""
    if "iPhone" in ua or "iPad" in ua:
        return ("crios" if "CriOS/" in ua else "ios"), "iOS"
    browser = next((name for marker, name in BROWSER_MARKERS if marker in ua), None)
    return browser, next((name for marker, name in OS_MARKERS if marker in ua), None)


def is_bot(user_agent: str | None) -> bool:
    """A hit without a User-Agent is accepted; a crawler's or a command-line tool's is dropped."""
    lowered = (user_agent or "").lower()
    return bool(lowered) and any(marker in lowered for marker in BOT_MARKERS)


def referrer_of(referrer: str | None, hostname: str) -> tuple[str, str, str]:
    """(domain without www., path, query) of an external referrer; a page of the site itself is no referrer."""
    if not referrer:
        return "", "", ""
    parts = urlsplit(referrer)
    domain = (parts.hostname or "").removeprefix("www.")
    if not domain or domain == hostname.removeprefix("www."):
        return "", "", ""
    return domain, parts.path or "/", parts.query


def channel_of(event: Event) -> str:
    """Umami's channel of one pageview: '' when none applies (Umami 3 leaves those out, Umami 2 too, except
    `direct`: a page seen without referrer and without query)."""
    domain, query = event.referrer_domain, event.query
    medium = event.utm().get("utm_medium", "")
    source = event.utm().get("utm_source", "")
    prefix = "paid" if any(key in medium for key in ("cp", "ppc", "retargeting", "paid")) else "organic"
    if not domain and not query:
        return "direct"
    if any(param in query for param in PAID_AD_PARAMS):
        return "paidAds"
    if any(key in medium for key in ("referral", "app", "link")):
        return "referral"
    if "affiliate" in medium:
        return "affiliate"
    if "sms" in medium or "sms" in source:
        return "sms"
    if any(domain.startswith(s) for s in SEARCH) or "organic" in medium:
        return prefix + "Search"
    if any(domain.startswith(s) for s in SOCIAL):
        return prefix + "Social"
    if any(domain.startswith(s) for s in EMAIL) or "mail" in medium:
        return "email"
    if "shop" in medium:
        return prefix + "Shopping"
    if "video" in medium:
        return prefix + "Video"
    return ""


def website_record(
    website_id: str, name: str, domain: str, created: str, share_id: str | None = None
) -> dict[str, Any]:
    """A website as Umami keeps it (Umami 3 adds replay settings when it answers)."""
    return {
        "id": website_id,
        "name": name,
        "domain": domain,
        "shareId": share_id,
        "resetAt": None,
        "userId": ADMIN_ID,
        "teamId": None,
        "createdBy": ADMIN_ID,
        "createdAt": created,
        "updatedAt": created,
        "deletedAt": None,
    }


@dataclass
class UmamiData(TrafficDays):
    """What the simulated account holds. Days run from `last_day - days + 1` to `last_day` (UTC)."""

    seed: int = 5
    websites: int = 2
    sessions_per_day: tuple[int, int] = (60, 120)
    visitor_pool: int = 900
    extra_paths: int = 40  # /blog/post-NNN pages: more `path` rows than one metrics page in tests
    idle_websites: int = 0  # websites listed after the others that never have generated traffic

    def website_list(self) -> list[dict[str, Any]]:
        created = "2024-03-01T09:30:00.000Z"
        rows = []
        for index in range(1, self.websites + self.idle_websites + 1):
            rng = random.Random(stable_seed("umami-website", self.seed, index))
            share = None if index % 2 else f"share{index}abcd"
            rows.append(website_record(make_uuid(rng), f"Site {index}", f"site{index}.example.com", created, share))
        return rows

    def paths(self) -> list[str]:
        return PATHS + [f"/blog/post-{index:03d}" for index in range(1, self.extra_paths + 1)]


@dataclass(frozen=True)
class Hit:
    """One `POST /api/send` as the server reads it."""

    website_id: str
    hostname: str
    url: str
    title: str
    referrer: str | None
    name: str | None
    data: dict[str, Any]
    language: str | None
    screen: str | None
    distinct_id: str | None
    tag: str | None
    timestamp: float | None
    user_agent: str
    address: str


class Traffic:
    """Generated sessions per website and UTC day (from the seed, cached), and sessions built from sent hits."""

    def __init__(self, data: UmamiData, version: str) -> None:
        self.data = data
        self.version = version
        self.paths = data.paths()
        self.hostnames = {w["id"]: w["domain"] for w in data.website_list()}
        self.idle = {w["id"] for w in data.website_list()[data.websites :]}
        self._cache = lru_cache(maxsize=2048)(self._generate)
        self.sent: dict[str, dict[str, Session]] = {}
        self._sent_lock = threading.Lock()

    # -- generated ------------------------------------------------------------------------------------
    def day(self, website_id: str, day: dt.date) -> tuple[Session, ...]:
        if not self.data.covers(day) or website_id not in self.hostnames:
            return ()
        if website_id in self.idle:
            return ()
        return self._cache(website_id, day)

    def _generate(self, website_id: str, day: dt.date) -> tuple[Session, ...]:
        rng = day_rng(self.data.seed, website_id, day)
        hostname = self.hostnames[website_id]
        sessions = []
        for _ in range(rng.randint(*self.data.sessions_per_day)):
            start = visit_start(rng, day)
            os_name = rng.choice(OSES)
            country, region, city = rng.choice(PLACES)
            session_id = make_uuid(rng)
            referrer, referrer_path, referrer_query = rng.choice(REFERRERS) if rng.random() < 0.5 else ("", "", "")
            utm = {k: rng.choice(v) for k, v in UTM_VALUES.items()} if rng.random() < 0.2 else {}
            query = "&".join(f"{k}={v}" for k, v in utm.items())
            tag = rng.choice(TAGS)
            events: list[Event] = []
            at = start
            views = min(7, max(1, int(rng.expovariate(0.6)) + 1))

            landing = Event(
                "", session_id, "", 0.0, 1, "", query, "", referrer, referrer_path, referrer_query, "", tag, hostname
            )
            later = replace(landing, query="", referrer_domain="", referrer_path="", referrer_query="")
            for index in range(views):
                path = self._path(rng)
                title = TITLES.get(path, path.strip("/").split("/")[-1].replace("-", " ").title())
                events.append(
                    replace(
                        landing if index == 0 else later,
                        id=make_uuid(rng),
                        visit_id=name_uuid(session_id, int(at // 3600)),  # a visit: the session's activity in an hour
                        created=at,
                        path=path,
                        title=title,
                        vitals=random_vitals(rng),
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
                        replace(
                            later,
                            id=make_uuid(rng),
                            visit_id=name_uuid(session_id, int(at // 3600)),
                            created=at,
                            event_type=2,
                            path=path,
                            title=title,
                            name=name,
                            data=payload,
                        )
                    )
                at += rng.randint(5, 400)
            screen = SCREENS[os_name]
            sessions.append(
                Session(
                    session_id,
                    website_id,
                    f"visitor-{rng.randrange(self.data.visitor_pool)}",
                    None,
                    hostname,
                    rng.choice(BROWSERS),
                    os_name,
                    device_of(os_name, screen, self.version),
                    screen,
                    rng.choice(LANGUAGES),
                    country,
                    region,
                    city,
                    tuple(events),
                    events[0].created,
                )
            )
        return tuple(sorted(sessions, key=lambda s: s.events[0].created))

    def _path(self, rng: random.Random) -> str:
        if rng.random() < 0.6:
            return self.paths[min(len(self.paths) - 1, int(rng.paretovariate(1.1)) - 1)]
        return rng.choice(self.paths)

    # -- sent -----------------------------------------------------------------------------------------
    def record(self, hit: Hit, now: float) -> tuple[Session, Event]:
        """Store one hit: its session is found by distinct id (or address and user agent), its visit by the hour
        it arrived in (not the back-dated time: that is how Umami salts visit ids)."""
        key = hit.distinct_id or f"{hit.address}|{hit.user_agent}"
        session_id = name_uuid("session", hit.website_id, key)
        visit_id = name_uuid("visit", session_id, int(now // 3600))
        parts = urlsplit(hit.url if "://" in hit.url else "http://site" + (hit.url if hit.url else "/"))
        domain, referrer_path, referrer_query = referrer_of(hit.referrer, hit.hostname)
        created = hit.timestamp if hit.timestamp is not None else now
        with self._sent_lock:
            sessions = self.sent.setdefault(hit.website_id, {})
            session = sessions.get(session_id)
            event = Event(
                name_uuid("event", session_id, len(session.events) if session else 0, created),
                session_id,
                visit_id,
                created,
                2 if hit.name else 1,
                parts.path or "/",
                parts.query,
                hit.title,
                domain,
                referrer_path,
                referrer_query,
                hit.name or "",
                hit.tag or "",
                hit.hostname,
                tuple(sorted(hit.data.items())),
            )
            if session is None:
                browser, os_name = client_of(hit.user_agent)
                country, region, city = GEOIP.get(hit.address, (None, None, None))
                session = Session(
                    session_id,
                    hit.website_id,
                    hit.distinct_id or session_id,
                    hit.distinct_id,
                    hit.hostname,
                    browser,
                    os_name,
                    device_of(os_name, hit.screen, self.version),
                    hit.screen,
                    hit.language,
                    country,
                    region,
                    city,
                    (),
                    now if self.version == "2" else created,
                )
            session = replace(session, events=tuple(sorted((*session.events, event), key=lambda e: e.created)))
            sessions[session_id] = session
        return session, event

    def sent_sessions(self, website_id: str) -> list[Session]:
        with self._sent_lock:
            return list(self.sent.get(website_id, {}).values())

    # -- reading --------------------------------------------------------------------------------------
    def events(self, website_id: str, begin: float, end: float, now: float) -> list[tuple[Session, Event]]:
        """Events with begin <= createdAt <= end that exist at `now` (Umami's ranges include endAt)."""
        end = min(end, now)
        found: list[tuple[Session, Event]] = []
        if begin > end:
            return found
        for session in self.sent_sessions(website_id):
            found.extend((session, e) for e in session.events if begin <= e.created <= end)
        if website_id in self.hostnames:
            day = max(
                self.data.first_day, dt.datetime.fromtimestamp(max(begin, 0), dt.UTC).date() - dt.timedelta(days=1)
            )
            while day <= self.data.last_day and utc_midnight(day) <= end:
                for session in self.day(website_id, day):
                    found.extend((session, e) for e in session.events if begin <= e.created <= end)
                day += dt.timedelta(days=1)
        return sorted(found, key=lambda pair: pair[1].created)

    def all_sessions(self, website_id: str) -> Iterable[Session]:
        yield from self.sent_sessions(website_id)
        if website_id in self.hostnames:
            for index in range(self.data.days):
                yield from self.day(website_id, self.data.first_day + dt.timedelta(days=index))

    def session(self, website_id: str, session_id: str) -> Session | None:
        return next((s for s in self.all_sessions(website_id) if s.id == session_id), None)
