"""An Opentracker sessions API on 127.0.0.1 with deterministic visits.

Sessions are generated per site and UTC day from a seed (thousands a day, every documented field). The sessions
endpoint walks back through the requested window hour by hour as the real one does: each `jsondatatable` page
holds whole hours until `limit` is reached (so a busy hour makes a page larger than `limit`), at most a few hours
(so quiet hours make short or even empty pages that still carry a `nextToken`), and some pages are cut inside an
hour with a `nextToken` that restarts that hour, so the next page repeats sessions already sent. Errors are plain
text (`Error: <exception>: <message>`), a refused ticket is the literal `false`, tickets expire.

`now` (epoch seconds, default the real clock) is the moment the account is looked at: sessions that have not
started are absent and sessions still running show only their events so far, so a later run sees them grow.
"""

from __future__ import annotations

import bisect
import datetime as dt
import fnmatch
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.harness import Faults, Request, Response, SimulatorServer, TokenStore, json_response, stable_seed
from simulators.registry import DemoPlan
from simulators.traffic import TrafficDays, day_rng, visit_start
from sources.common.clock import wall_time

DEMO_LOGIN = "demo@opentracker.example"
DEMO_PASSWORD = "ot-demo-password-3c9b1e7a5d2f4806"
DEMO_SITES = ("www.example.com", "shop.example.com")
OTHER_LOGIN = "other@opentracker.example"
OTHER_PASSWORD = "ot-other-password-8e1f0d2c6b4a"
OTHER_SITES = ("www.other-account.net",)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
PAGE_LIMIT = 1000
BY_USER_LIMIT = 10000
SITE_MISMATCH = "Error: java.lang.RuntimeException: Login/ site combination is not valid"

FIELDS = [
    "lastEvent",
    "duration",
    "status",
    "flag",
    "country",
    "visits_pageviews",
    "currentPage",
    "area",
    "area_code",
    "browser",
    "browser_version",
    "city",
    "company_org",
    "connection",
    "country_code",
    "country_name",
    "currentTitle",
    "currentVisitDuration",
    "dma_code",
    "email",
    "entryPage",
    "entry_query",
    "entry_root_url",
    "entry_title",
    "eventUnixTimestamp",
    "event_id",
    "exit_query_id",
    "exit_root_url",
    "exit_title",
    "firstMeasurement",
    "first_session_unix_timestamp",
    "inet_aton",
    "ip_number",
    "isp",
    "isp_org",
    "latitude",
    "longitude",
    "machine_id",
    "machine_idx",
    "number_of_pages_viewed",
    "number_visits",
    "pages_viewed",
    "platform",
    "postal_code",
    "provider",
    "referrer",
    "referrersLogo",
    "region",
    "region_code",
    "resolution",
    "rnd",
    "search",
    "session_end_unix_timestamp",
    "session_id",
    "session_referrer",
    "session_referrer_hostname",
    "session_referrer_unix_timestamp",
    "session_search",
    "session_start_unix_timestamp",
    "site",
    "timezone",
    "total_duration",
    "total_number_visits",
    "total_pages_viewed",
    "type",
    "use_id",
    "user_status",
    "visit_id",
    "zipCode",
]
LABELS = {
    "lastEvent": "last event",
    "visits_pageviews": "visits(pv)",
    "currentPage": "current page (exit page)",
    "area": "area code (tel)",
    "company_org": "company/ org",
    "currentVisitDuration": "current visit duration",
    "entryPage": "entry page (landing page)",
    "entry_title": "entry title",
    "exit_title": "exit title",
    "firstMeasurement": "first measurement",
    "ip_number": "IP address",
    "isp_org": "isp/ org",
    "number_of_pages_viewed": "pages viewed during visits (avg.)",
    "number_visits": "number of visits",
    "pages_viewed": "pageviews",
    "platform": "operating systems",
    "search": "search term",
    "total_duration": "total duration",
    "total_pages_viewed": "total pages viewed",
    "user_status": "status",
    "zipCode": "zip code",
}
FILTER_PARAMS = (  # what `matches` reads
    "includeCountryCode",
    "excludeInUrl",
    "excludeInFilteredCompany",
    "maxDuration",
    "maxEventThreshold",
    "filterByCurrentTitle",
    "search",
    "useOr",
)
COMPANY_FILTERS = ("excludeInFilteredCompany", "includeCountryCode", "excludeInUrl", "maxEventThreshold")

# (country code, country, city, region, region code, lat, long, visitor timezone, isp, provider, postal, area, dma)
GEO = [
    ("US", "United States", "Brooklyn", "New York", "NY", "40.633194", "-73.9967", "America/New_York",
     "Optimum Online", "optonline.net", "11219", "718", "501"),
    ("US", "United States", "Raleigh", "North Carolina", "NC", "35.887405", "-78.751", "America/New_York",
     "Itc Deltacom", "", "27617", "919", "560"),
    ("ES", "Spain", "Vitoria", "Pais Vasco", "59", "42.850006", "-2.6667023", "Europe/Madrid",
     "Telefonica De Espana", "", "", "", ""),
    ("GB", "United Kingdom", "Liverpool", "Liverpool", "H8", "53.416702", "-3.0", "Europe/London",
     "British Telecommunications", "btcentralplus.com", "", "", ""),
    ("NL", "Netherlands", "Amsterdam", "Noord-Holland", "07", "52.35", "4.9166", "Europe/Amsterdam",
     "Ziggo", "ziggo.nl", "1012", "", ""),
    ("DE", "Germany", "Berlin", "Berlin", "16", "52.5167", "13.4", "Europe/Berlin",
     "Deutsche Telekom AG", "t-ipconnect.de", "10115", "", ""),
    ("BR", "Brazil", "Montes Claros", "Minas Gerais", "15", "-16.716705", "-43.8667", "America/Sao_Paulo",
     "Rede Brasileira De Comunicacao Ltda", "mastercabo.com.br", "", "", ""),
    ("CA", "Canada", "Nanaimo", "British Columbia", "BC", "49.149994", "-123.9167", "America/Vancouver",
     "Shaw Communications", "shawcable.net", "", "", ""),
    ("IT", "Italy", "Cicciano", "Campania", "04", "40.966705", "14.533295", "Europe/Rome",
     "Telecom Italia", "telecomitalia.it", "", "", ""),
    ("JP", "Japan", "Tokyo", "Tokyo", "40", "35.685", "139.7514", "Asia/Tokyo", "NTT", "ocn.ne.jp", "", "", ""),
]  # fmt: skip
DEVICES = [
    ("Chrome 129.0", "129.0", "Windows 11", "1920 x 1080", "Cable/DSL"),
    ("Firefox 131.0", "131.0", "Windows 10", "1600 x 900", "Cable/DSL"),
    ("Safari 18.1", "18.1", "Intel Mac OS X 14.2", "1440 x 900", "Corporate"),
    ("Chrome 130.0", "130.0", "Android 14", "412 x 915", "Cellular"),
    ("Safari 17.6", "17.6", "iOS 17.5", "390 x 844", "Cellular"),
    ("Edge 130.0", "130.0", "Windows 11", "2560 x 1440", ""),
]
COMPANIES = ["", "", "", "", "Webfargo Data Security", "Kintiskton Llc", "Acme Corp", "Globex"]
PATHS = [
    ("/", "Home"),
    ("/pricing", "Pricing"),
    ("/features", "Get More"),
    ("/loginpage", "Get in here."),
    ("/article/hits-or-pageviews", "Hits or pageviews?"),
    ("/article/clickstream-or-clickpath-analysis", "Clickstream or clickpath analysis"),
    ("/resources/video-screencasts", "Video Screencasts"),
    ("/company/contact", "Contact"),
    ("/checkout/cart", "Cart"),
    ("/checkout/done", "Thank you"),
]
REFERRERS = [
    ("https://www.google.com/search?q={q}", "google", "google.com", True),
    ("https://www.bing.com/search?q={q}", "bing", "bing.com", True),
    ("https://news.ycombinator.com/item?id=123", "ycombinator", "news.ycombinator.com", False),
    ("https://twitter.com/someone/status/1", "twitter", "twitter.com", False),
    ("https://www.partner.example/links", "partner", "partner.example", False),
]
SEARCH_TERMS = ["web analytics", "track user on website", "open tracker", "pageviews", "clickpath"]


@dataclass(frozen=True, slots=True)
class Session:
    start: int  # epoch ms
    uid: int
    events: tuple[int, ...]  # epoch ms of each pageview; the first is `start`
    pages: tuple[int, ...]  # index into PATHS per pageview
    geo: int
    device: int
    company: int
    referrer: int  # index into REFERRERS, -1 for direct
    term: int
    first_session: int  # epoch ms of the user's first visit
    visit_number: int
    earlier_pages: int  # pageviews of the user's earlier visits
    rnd: int
    ip: int


@dataclass
class OpentrackerData(TrafficDays):
    """The simulated accounts' traffic. Days run from `last_day - days + 1` to `last_day` (UTC)."""

    seed: int = 11
    sites: tuple[str, ...] = DEMO_SITES
    days: int = 30
    sessions_per_day: tuple[int, int] = (2000, 4000)  # per site
    users_per_site: int = 20000
    now: float | None = None  # epoch seconds the account is looked at; None: the real clock
    max_hours_per_page: int = 6
    cut_share: float = 0.35  # share of page ends cut inside an hour (the next page repeats part of it)
    token_past_window: bool = True  # the last page's nextToken points before the window (clients must stop)

    def now_ms(self) -> int:
        return int((self.now if self.now is not None else wall_time()) * 1000)


class Traffic:
    """Sessions per site and UTC day, generated on demand from the seed and cached."""

    def __init__(self, data: OpentrackerData) -> None:
        self.data = data
        self._day = lru_cache(maxsize=1024)(self._generate)

    def utc_day(self, site: str, day: dt.date) -> tuple[Session, ...]:
        if site not in self.data.sites or not self.data.covers(day):
            return ()
        return self._day(site, day)

    def _generate(self, site: str, day: dt.date) -> tuple[Session, ...]:
        data = self.data
        rng = day_rng(data.seed, site, day)
        low, high = data.sessions_per_day
        sessions: dict[tuple[int, int], Session] = {}
        for _ in range(rng.randint(low, high)):
            start = int(visit_start(rng, day, per_second=1000))
            uid = rng.randrange(1, data.users_per_site)
            views = min(12, max(1, int(rng.expovariate(0.45)) + 1))
            gap_cap = 5_400_000 if rng.random() < 0.05 else 600_000  # a few visits last hours
            events = [start]
            for _ in range(views - 1):
                events.append(events[-1] + rng.randint(5_000, gap_cap))
            referrer = rng.randrange(len(REFERRERS)) if rng.random() < 0.55 else -1
            sessions[(start, uid)] = Session(
                start=start,
                uid=uid,
                events=tuple(events),
                pages=tuple(rng.randrange(len(PATHS)) for _ in range(views)),
                geo=rng.randrange(len(GEO)),
                device=rng.randrange(len(DEVICES)),
                company=rng.randrange(len(COMPANIES)),
                referrer=referrer,
                term=rng.randrange(len(SEARCH_TERMS)),
                first_session=self.first_session(site, uid),
                visit_number=rng.randint(2, 60),
                earlier_pages=rng.randint(1, 400),
                rnd=rng.randrange(10_000, 100_000),
                ip=rng.randrange(16_777_216, 3_758_096_383),
            )
        return tuple(sorted(sessions.values(), key=lambda s: (s.start, s.uid)))

    def first_session(self, site: str, uid: int) -> int:
        """A user's first visit: fixed per user, up to 400 days before the data begins."""
        offset = stable_seed(self.data.seed, site, "user", uid) % (400 * DAY_MS)
        anchor = int(dt.datetime.combine(self.data.first_day, dt.time(), dt.UTC).timestamp() * 1000)
        return anchor - DAY_MS - offset

    def between(self, site: str, begin: int, end: int, now: int) -> list[Session]:
        """Sessions that started in [begin, end) and before `now`, oldest first."""
        found: list[Session] = []
        day = dt.datetime.fromtimestamp(begin / 1000, dt.UTC).date()
        while int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000) < end:
            found.extend(s for s in self.utc_day(site, day) if begin <= s.start < end and s.start <= now)
            day += dt.timedelta(days=1)
        return found

    def all_sessions(self, site: str, now: int) -> Iterable[Session]:
        day = self.data.first_day
        while day <= self.data.last_day:
            yield from (s for s in self.utc_day(site, day) if s.start <= now)
            day += dt.timedelta(days=1)


def local_label(ms: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%b %d %I:%M %p")


def duration_label(ms: int) -> str:
    seconds = ms // 1000
    if seconds <= 0:
        return "s.e."  # single event, as the API shows it
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or hours else []
    return " ".join([*parts, f"{seconds}s"])


def ip_text(number: int) -> str:
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


def render(session: Session, site: str, now: int, zone: ZoneInfo) -> dict[str, str]:
    """Every documented field of one session as the API shows it at `now` (all cells strings)."""
    seen = sum(1 for event in session.events if event <= now)
    events, pages = session.events[:seen], session.pages[:seen]
    end = events[-1]
    last_event = end + 350 + session.rnd % 700  # the last beacon arrives a little after the last pageview
    online = now - last_event < 1_800_000
    code, country, city, region, region_code, lat, lon, tz, isp_org, provider, postal, area, dma = GEO[session.geo]
    browser, browser_version, platform, resolution, connection = DEVICES[session.device]
    host = f"http://{site}"
    entry_path, entry_title = PATHS[pages[0]]
    exit_path, exit_title = PATHS[pages[-1]]
    suffix = f" | {site}"
    duration = duration_label(end - session.start)
    sid = f"{session.start}.{session.uid}"
    machine_idx = f"{session.first_session}.{session.uid}"
    if session.referrer >= 0:
        template, referrer_host, logo, searchable = REFERRERS[session.referrer]
        term = SEARCH_TERMS[session.term] if searchable else ""
        referrer = template.format(q=term.replace(" ", "+"))
        referrer_time = str(session.start)
    else:
        referrer = referrer_host = logo = term = referrer_time = ""
    total_pages = session.earlier_pages + seen
    return {
        "lastEvent": local_label(last_event, zone),
        "duration": duration,
        "status": "puppet_online" if online else "puppet_offline",
        "flag": code.lower(),
        "country": country,
        "visits_pageviews": f"{session.visit_number} ({seen})",
        "currentPage": host + exit_path,
        "area": area,
        "area_code": area,
        "browser": browser,
        "browser_version": browser_version,
        "city": city,
        "company_org": COMPANIES[session.company],
        "connection": connection,
        "country_code": code,
        "country_name": country,
        "currentTitle": exit_title + suffix,
        "currentVisitDuration": duration,
        "dma_code": dma,
        "email": "",
        "entryPage": host + entry_path,
        "entry_query": "",
        "entry_root_url": host + entry_path,
        "entry_title": entry_title + suffix,
        "eventUnixTimestamp": str(last_event),
        "event_id": f"{end}.{session.uid}",
        "exit_query_id": "",
        "exit_root_url": host + exit_path,
        "exit_title": exit_title + suffix,
        "firstMeasurement": local_label(session.first_session, zone),
        "first_session_unix_timestamp": str(session.first_session),
        "inet_aton": str(session.ip),
        "ip_number": ip_text(session.ip),
        "isp": isp_org if session.company % 2 else "",
        "isp_org": isp_org,
        "latitude": lat,
        "longitude": lon,
        "machine_id": f"10.245.194.182:{session.first_session}",
        "machine_idx": machine_idx,
        "number_of_pages_viewed": str(seen),
        "number_visits": str(session.visit_number),
        "pages_viewed": str(seen),
        "platform": platform,
        "postal_code": postal,
        "provider": provider,
        "referrer": referrer,
        "referrersLogo": logo,
        "region": region,
        "region_code": region_code,
        "resolution": resolution,
        "rnd": str(session.rnd),
        "search": term,
        "session_end_unix_timestamp": str(end),
        "session_id": sid,
        "session_referrer": referrer,
        "session_referrer_hostname": referrer_host,
        "session_referrer_unix_timestamp": referrer_time,
        "session_search": term,
        "session_start_unix_timestamp": str(session.start),
        "site": site,
        "timezone": tz,
        "total_duration": "",
        "total_number_visits": str(session.visit_number + session.rnd % 7),
        "total_pages_viewed": str(total_pages),
        "type": "session",
        "use_id": machine_idx,
        "user_status": "online" if online else "offline",
        "visit_id": sid,
        "zipCode": postal,
    }


def matches(session: Session, site: str, now: int, params: dict[str, str]) -> bool:
    """The documented filters, applied the way their descriptions read."""
    seen = [event for event in session.events if event <= now]
    pages = [PATHS[index] for index in session.pages[: len(seen)]]
    codes = params.get("includeCountryCode")
    if codes and GEO[session.geo][0].lower() not in {code.strip().lower() for code in codes.split(",")}:
        return False
    if words := params.get("excludeInUrl"):
        urls = [f"http://{site}{path}" for path, _ in pages]
        if any(word.strip() and word.strip() in url for word in words.split(",") for url in urls):
            return False
    if words := params.get("excludeInFilteredCompany"):
        company = COMPANIES[session.company] or GEO[session.geo][8]
        if any(word.strip() and word.strip().lower() in company.lower() for word in words.split(",")):
            return False
    if (limit := params.get("maxDuration")) and (seen[-1] - session.start) // 1000 >= int(limit):
        return False
    if (limit := params.get("maxEventThreshold")) and session.earlier_pages + len(seen) >= int(limit):
        return False
    if (title := params.get("filterByCurrentTitle")) and pages[-1][1] + f" | {site}" != title:
        return False
    if words := params.get("search"):
        haystack = " ".join(
            [*(f"{path} {name}" for path, name in pages), GEO[session.geo][1], GEO[session.geo][2]]
            + ([SEARCH_TERMS[session.term]] if session.referrer >= 0 else [])
        ).lower()
        terms = [word.lower() for word in words.replace(",", " ").split() if word]
        hits = [fnmatch.fnmatch(haystack, f"*{term}*") for term in terms]
        if terms and not (any(hits) if params.get("useOr", "").lower() in ("or", "true") else all(hits)):
            return False
    return True


class OpentrackerSimulator(SimulatorServer):
    vendor = "opentracker"

    def __init__(
        self,
        data: OpentrackerData | None = None,
        faults: Faults | None = None,
        *,
        accounts: dict[str, tuple[str, tuple[str, ...]]] | None = None,
        clock: Callable[[], float] = wall_time,
        port: int = 0,
    ) -> None:
        super().__init__(faults, port=port)
        self.data = data or OpentrackerData()
        self.traffic = Traffic(self.data)
        self.accounts = accounts or {
            DEMO_LOGIN: (DEMO_PASSWORD, self.data.sites),
            OTHER_LOGIN: (OTHER_PASSWORD, OTHER_SITES),
        }
        self.tickets = TokenStore(clock=clock, new_token=lambda: str(uuid.uuid4()))
        self.stuck_token = False  # answer every nextToken request with the token it was sent (a broken server)
        self.expire_tickets_every: int | None = None  # expire every ticket after this many data requests
        self._data_requests = 0
        self.refused_tickets = 0  # `false` answers to a data request
        self.served: list[tuple[int, int, str]] = []  # per sessions page: rows, limit, nextToken
        self._selections: dict[tuple[Any, ...], tuple[list[Session], list[int]]] = {}
        self._lock = threading.Lock()
        self.route("GET", r"/api/management/login_user\.jsp", self.login_user)
        self.route("POST", r"/api/management/login_user\.jsp", self.login_user)
        for method in ("GET", "POST"):
            self.route(method, r"/api/views/c_view_session\.jsp", self.view_sessions)
            self.route(method, r"/api/views/c_view_sessions_by_user\.jsp", self.sessions_by_user)

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/views/"

    # -- auth -----------------------------------------------------------------------------------------
    @staticmethod
    def params(request: Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST" and request.body:
            params.update(request.form())
        return params

    def login_user(self, request: Request) -> Response:
        params = self.params(request)
        login = params.get("login", "")
        account = self.accounts.get(login)
        if account is None or account[0] != params.get("password"):
            return Response(200, "false")
        try:
            seconds = float(params.get("expires") or 60)
        except ValueError:
            return Response(200, "false")
        return Response(200, self.tickets.issue(login, seconds)[0])

    def authorize(self, params: dict[str, str]) -> tuple[Response | None, list[str]]:
        """The sites of the request if the credentials may read them all, else the API's refusal."""
        with self._lock:
            self._data_requests += 1
            if self.expire_tickets_every and self._data_requests % self.expire_tickets_every == 0:
                self.tickets.expire_all()
        if ticket := params.get("ticketId"):
            login = self.tickets.owner(ticket)
            if login is None:
                with self._lock:
                    self.refused_tickets += 1
                return Response(200, "false"), []
        else:
            login = params.get("login", "")
            account = self.accounts.get(login)
            if account is None or account[0] != params.get("password"):
                return Response(200, SITE_MISMATCH), []
        sites = [site.strip() for site in params.get("site", DEMO_SITES[0]).split(",") if site.strip()]
        allowed = self.accounts[login][1]
        if not sites or any(site not in allowed for site in sites):
            return Response(200, SITE_MISMATCH), []
        return None, sites

    # -- sessions -------------------------------------------------------------------------------------
    def view_sessions(self, request: Request) -> Response:
        params = self.params(request)
        refused, sites = self.authorize(params)
        if refused:
            return refused
        if params.get("dataType", "json") != "jsondatatable":
            return Response(200, "Error: java.lang.UnsupportedOperationException: this simulator serves jsondatatable")
        try:
            zone = ZoneInfo(params.get("timeZone") or "EST")
        except (ZoneInfoNotFoundError, ValueError):
            return Response(200, f"Error: java.lang.IllegalArgumentException: Unknown time zone {params['timeZone']}")
        try:
            day = dt.date.fromisoformat(params.get("date", ""))
        except ValueError:
            return Response(200, f'Error: java.text.ParseException: Unparseable date: "{params.get("date", "")}"')
        period = params.get("period") or "1d"
        try:
            days = int(period.rstrip("d"))
            limit = max(1, min(PAGE_LIMIT, int(params.get("limit") or 40)))
        except ValueError:
            return Response(200, f'Error: java.lang.NumberFormatException: For input string: "{period}"')
        columns, problem = self.columns(params)
        if problem:
            return problem
        begin = int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)
        after = day + dt.timedelta(days=days)
        end = int(dt.datetime(after.year, after.month, after.day, tzinfo=zone).timestamp() * 1000)
        token = params.get("nextToken") or ""
        position: int | None = None
        if token:
            try:
                position = int(token.partition(".")[2] or token)
            except ValueError:
                return Response(200, f'Error: java.lang.NumberFormatException: For input string: "{token}"')
        now = self.data.now_ms()
        rows: list[list[str]] = []
        following = ""
        for site in sites:  # a comma list merges sites; each walks the same hours
            picked, next_hour = self.page(site, begin, end, position, limit, now, params)
            rows.extend(self.row(session, site, now, zone, columns, params) for session in picked)
            following = self.token(next_hour, begin, zone)
        if self.stuck_token and token:
            following = token
        with self._lock:
            self.served.append((len(rows), limit, following))
        return json_response(self.answer(columns, rows, following))

    def page(
        self, site: str, begin: int, end: int, position: int | None, limit: int, now: int, params: dict[str, str]
    ) -> tuple[list[Session], int | None]:
        """Whole hours newest first from `position` down, until `limit`; see the module docstring."""
        sessions, starts = self.selection(site, begin, end, now, params)
        first_hour = begin - begin % HOUR_MS
        top = min(end, now + 1) - 1
        hour = top - top % HOUR_MS
        if position is not None:
            hour = min(hour, position - position % HOUR_MS)
        picked: list[Session] = []
        hours = 0
        while hour >= first_hour:
            low = bisect.bisect_left(starts, max(hour, begin))
            high = bisect.bisect_left(starts, min(hour + HOUR_MS, end))
            in_hour = sessions[low:high][::-1]
            hours += 1
            if picked and len(picked) + len(in_hour) > limit and self.cuts(site, hour):
                take = limit - len(picked)
                picked.extend(in_hour[:take])
                return picked, hour  # cut inside the hour: the next page starts this hour over
            picked.extend(in_hour)
            hour -= HOUR_MS
            if len(picked) >= limit or hours >= self.data.max_hours_per_page:
                break
        return picked, hour if hour >= first_hour else None

    def selection(
        self, site: str, begin: int, end: int, now: int, params: dict[str, str]
    ) -> tuple[list[Session], list[int]]:
        """The window's matching sessions (oldest first) and their starts; kept for the pages that follow."""
        settled = now >= end + DAY_MS  # every session of the window has ended: the selection no longer changes
        filters = tuple((name, params.get(name, "")) for name in FILTER_PARAMS)
        key = (site, begin, end, "settled" if settled else now, filters)
        with self._lock:
            cached = self._selections.get(key)
        if cached is None:
            sessions = [s for s in self.traffic.between(site, begin, end, now) if matches(s, site, now, params)]
            cached = (sessions, [s.start for s in sessions])
            with self._lock:
                self._selections[key] = cached
                while len(self._selections) > 64:
                    self._selections.pop(next(iter(self._selections)))
        return cached

    def cuts(self, site: str, hour: int) -> bool:
        return stable_seed(self.data.seed, site, "cut", hour) % 1000 < self.data.cut_share * 1000

    def token(self, hour: int | None, begin: int, zone: ZoneInfo) -> str:
        if hour is None:
            if not self.data.token_past_window:
                return ""
            hour = begin - begin % HOUR_MS - HOUR_MS  # walking on into the day before the window
        local = dt.datetime.fromtimestamp(hour / 1000, zone)
        day_start = int(dt.datetime(local.year, local.month, local.day, tzinfo=zone).timestamp() * 1000)
        return f"{day_start}.{hour}"

    def columns(self, params: dict[str, str]) -> tuple[list[str], Response | None]:
        columns = list(FIELDS)
        if wanted := params.get("showColumns"):
            columns = [name.strip() for name in wanted.split(",") if name.strip()]
            unknown = [name for name in columns if name not in FIELDS]
            if unknown:
                message = f"Error: java.lang.IllegalArgumentException: Unknown column: {unknown[0]}"
                return [], Response(200, message)
        if any(params.get(name) for name in COMPANY_FILTERS):
            columns.append("filtered_company")
        return columns, None

    def row(
        self, session: Session, site: str, now: int, zone: ZoneInfo, columns: list[str], params: dict[str, str]
    ) -> list[str]:
        values = render(session, site, now, zone)
        values["filtered_company"] = COMPANIES[session.company] or GEO[session.geo][8]
        return [values[name] for name in columns]

    @staticmethod
    def answer(columns: list[str], rows: list[list[str]], next_token: str) -> dict[str, Any]:
        return {
            "rows": len(rows),
            "field": columns,
            "label": [LABELS.get(name, name) for name in columns],
            "className": columns,
            "caption": "No caption",
            "pager": "apager",
            "nextToken": next_token,
            "expandable": True,
            "rowsPerPageOptions": [20, 40],
            "resultsList": rows,
        }

    def sessions_by_user(self, request: Request) -> Response:
        params = self.params(request)
        refused, sites = self.authorize(params)
        if refused:
            return refused
        machine_idx = params.get("filterByMachineId") or params.get("uid") or ""
        visit_id = params.get("filterByVisitId") or ""
        if not machine_idx and not visit_id:
            return Response(200, "Error: java.lang.IllegalArgumentException: uid, filterByMachineId or filterByVisitId")
        zone = ZoneInfo(params.get("timeZone") or "EST")
        limit = max(1, min(BY_USER_LIMIT, int(params.get("limit") or 40)))
        now = self.data.now_ms()
        rows = []
        for site in sites:
            for session in self.user_sessions(site, now, machine_idx=machine_idx, visit_id=visit_id)[:limit]:
                rows.append(self.row(session, site, now, zone, list(FIELDS), params))
        return json_response(self.answer(list(FIELDS), rows[:limit], ""))

    def user_sessions(self, site: str, now: int, *, machine_idx: str = "", visit_id: str = "") -> list[Session]:
        found = [
            s
            for s in self.traffic.all_sessions(site, now)
            if (machine_idx and f"{s.first_session}.{s.uid}" == machine_idx)
            or (visit_id and f"{s.start}.{s.uid}" == visit_id)
        ]
        return sorted(found, key=lambda s: s.start, reverse=True)

    # -- what tests compare against -------------------------------------------------------------------
    def truth(
        self, site: str, first: dt.date, last: dt.date, tz: str = "UTC", **params: str
    ) -> dict[str, dict[str, str]]:
        """Every session of `site` that started on local days first..last in `tz`, as the API renders it now."""
        zone = ZoneInfo(tz)
        begin = int(dt.datetime(first.year, first.month, first.day, tzinfo=zone).timestamp() * 1000)
        after = last + dt.timedelta(days=1)
        end = int(dt.datetime(after.year, after.month, after.day, tzinfo=zone).timestamp() * 1000)
        now = self.data.now_ms()
        return {
            f"{s.start}.{s.uid}": render(s, site, now, zone)
            for s in self.traffic.between(site, begin, end, now)
            if matches(s, site, now, params)
        }


def demo_plan(simulator: OpentrackerSimulator) -> DemoPlan:
    data = simulator.data
    return DemoPlan(
        env={
            "SOURCES__OPENTRACKER__BASE_URL": simulator.base_url,
            "SOURCES__OPENTRACKER__LOGIN": DEMO_LOGIN,
            "SOURCES__OPENTRACKER__PASSWORD": DEMO_PASSWORD,
            "SOURCES__OPENTRACKER__SITES": ",".join(data.sites),
            "SOURCES__OPENTRACKER__TIMEZONE": "Europe/Amsterdam",
        },
        start=max(data.first_day + dt.timedelta(days=1), data.last_day - dt.timedelta(days=3)),
        end=data.last_day - dt.timedelta(days=1),
    )


__all__ = [
    "DEMO_LOGIN",
    "DEMO_PASSWORD",
    "DEMO_SITES",
    "OTHER_LOGIN",
    "OTHER_PASSWORD",
    "OTHER_SITES",
    "OpentrackerData",
    "OpentrackerSimulator",
    "demo_plan",
]
