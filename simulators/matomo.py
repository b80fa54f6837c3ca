"""A Matomo 5 on 127.0.0.1: the tracking endpoint (`/matomo.php`, `/piwik.php`) and the Reporting API calls clickhaul
uses (`/index.php`), answering in the shapes of a real Matomo 5.1.2 (`../shared/real-recordings/matomo-5.1.2.json`,
held there by tests/matomo/test_contract.py) and API-NOTES.md:

- single requests (GET query or POST form) answer a 1x1 GIF, 204 with `send_image=0`, or 400 (a GIF followed by
  text) when invalid;
- bulk requests (POST JSON `{"requests": [...], "token_auth": ...}`, each request a query string or an object)
  answer `{"status": "success", "tracked": N, "invalid": M}`, with `invalid_indices` only for a super-user token and
  a non-empty batch; an empty list or a body that is not JSON answers tracked 0;
- invalid: unknown `idsite`; `cip` or a `cdt` older than 24 h without a token that may write; a missing `url` or a
  malformed `_id`/`cid` unless a valid token is given (Matomo then stores them, under a visitor id of its own); a
  non-numeric `e_v`/`revenue`. A `cdt` in the future or older than 20 years silently becomes now. Requests
  without `rec=1` are ignored;
- a bulk that deadlocks (`transaction_failure_rate`) answers HTTP 500 `{"status": "error", "tracked": N, ...}` with
  N anything from 0 to the batch size, and leaves behind what the real server did (2026-12-04): nothing, the whole
  batch, or the tail after hit k (`failure_outcomes` weighs the three);
- stored hits become visits (one per visitor while hits are < 30 min apart, or `new_visit=1`), read back with
  `Live.getLastVisitsDetails` (period day/range, date, `segment` on visitorId/userId/visitIp, filter_limit and
  filter_offset): each action carries `idpageview` (the hit's `pv_id` cut to 6 characters), `timestamp`, `url`;
- the Reporting API checks like Matomo: a wrong token answers 401 text/html, no token 401 JSON, an unknown method,
  site or date HTTP 200 `{"result": "error", ...}`;
- queued mode (the QueuedTracking plugin): requests without `queuedtracking=0` are queued and answered as all
  tracked, then validated when the queue is processed;
- faults: the harness `Faults` (5xx, dropped connections before or after storing, truncated answers, 429) plus
  `hang_rate` (no answer within `hang_seconds`, nothing stored) and `hold_after_batches` (tests: park requests
  after N stored batches, before or with `hold_after_storing` after storing them, so a client can be killed at a
  known point);
- `hit_cost_seconds` and `cores` make it about as slow as a real server, for benchmarks.

Every stored hit is kept (`hits`) so tests can compare with what was sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from simulators.harness import Faults, Request, Response, SimulatorServer, json_response
from sources.common.clock import wall_time

if TYPE_CHECKING:
    from simulators.registry import DemoPlan

DEMO_SUPERUSER_TOKEN = "c0ffee5a1d2b3c4d5e6f708192a3b4c5"
DEMO_WRITE_TOKEN = "d15ea5e0a1b2c3d4e5f60718293a4b5c"
DEMO_VIEW_TOKEN = "0b5e55ed0a1b2c3d4e5f60718293a4b5"
VERSION = "5.1.2"
TRACKER_PATH = r"/(?:[A-Za-z0-9_.\-]+/)*(?:matomo|piwik)\.php"
REPORTING_PATH = r"/(?:[A-Za-z0-9_.\-]+/)*index\.php"
NOT_FOUND_PAGE = "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
# What a real Matomo appends to the GIF of a refused single request (HTTP 400).
TRACKER_NOTICE = (
    b"This resource is part of Matomo. Keep full control of your data with the leading free and open source "
    b"<a href='https://matomo.org' target='_blank' rel='noopener noreferrer nofollow'>web analytics & conversion "
    b"optimisation platform</a>.<br>\nThis file is the endpoint for the Matomo tracking API. If you want to access "
    b"the Matomo UI or use the Reporting API, please use <a href='index.php'>index.php</a> instead.\n"
)
API_CONTENT_TYPE = "application/json; charset=utf-8"
TOKENLESS_CDT_SECONDS = 24 * 3600
MAX_AGE_SECONDS = 20 * 365 * 86400
VISIT_GAP_SECONDS = 30 * 60  # Matomo's default visit_standard_length
PV_ID_LENGTH = 6  # log_link_visit_action.idpageview is CHAR(6)
_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")
_LAST_N = re.compile(r"^(last|previous)(\d+)$")
BAD_DATE_MESSAGE = (
    "Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword supported by the strtotime function "
    "(see http://php.net/strtotime for more information): false"
)
WRONG_TOKEN_PAGE = """<!DOCTYPE html>
<html>
<head>
\t<meta charset="utf-8">
\t<meta name="robots" content="noindex,nofollow">
\t<title>Matomo &rsaquo; Error</title>
</head>
<body id="simple">
<div class="box"><div class="header"><h1>An error occurred</h1></div>
<div class="content"><h2>Unable to authenticate with the provided token. It is either invalid or expired.</h2></div>
</div>
</body>
</html>
"""


@dataclass
class Visit:
    idvisit: int
    site: int
    visitor_id: str
    user_id: str | None
    ip: str
    user_agent: str
    actions: list[StoredHit] = field(default_factory=list)

    @property
    def first(self) -> float:
        return min(hit.timestamp for hit in self.actions)  # a back-dated hit may join before the others

    @property
    def last(self) -> float:
        return max(hit.timestamp for hit in self.actions)

    @property
    def length(self) -> int:
        """visit_total_time: Matomo adds a second once a visit has a second action (recorded: 2 s for hits 1 s
        apart), a bounce is 0."""
        return int(self.last - self.first) + 1 if len(self.actions) > 1 else 0


@dataclass(frozen=True)
class StoredHit:
    sequence: int  # order in which the server stored it (also its idlink_va, `pageId` in the Live API)
    batch: int  # sequence number of the bulk (or single) request that stored it
    params: dict[str, str]
    timestamp: float  # the time Matomo recorded: cdt, or now when cdt was absent, future or too old

    @property
    def cdt(self) -> str:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class ApiError(Exception):
    """A Reporting API refusal: HTTP 200 `{"result": "error"}` unless another status is given."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.status = status


class MatomoSimulator(SimulatorServer):
    vendor = "matomo"

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        sites: tuple[int, ...] = (1, 2, 3),
        tokens: dict[str, str] | None = None,
        bulk_enabled: bool = True,
        queued: bool = False,
        transaction_failure_rate: float = 0.0,
        failure_outcomes: dict[str, float] | None = None,
        hang_rate: float = 0.0,
        hang_seconds: float = 2.0,
        hold_after_batches: int | None = None,
        hold_after_storing: bool = False,
        hit_cost_seconds: float = 0.0,
        cores: int = 2,
        reporting_api: bool = True,
        timezones: dict[int, str] | None = None,
        browser_archiving: bool = True,
        report_max_rows: int = 500,
        clock: Callable[[], float] = wall_time,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        super().__init__(faults, port=port)
        self.sites = set(sites)
        self.timezones = {site: (timezones or {}).get(site, "UTC") for site in sites}
        # token -> role: "superuser" (every site, sees invalid_indices), "write" (may back-date), "view" (may not)
        self.tokens = (
            tokens
            if tokens is not None
            else {DEMO_SUPERUSER_TOKEN: "superuser", DEMO_WRITE_TOKEN: "write", DEMO_VIEW_TOKEN: "view"}
        )
        self.bulk_enabled = bulk_enabled
        self.queued = queued
        self.transaction_failure_rate = transaction_failure_rate
        # What a deadlocked bulk leaves behind (weights): "nothing", "all" hits, or the "tail" after hit k.
        self.failure_outcomes = failure_outcomes or {"nothing": 1.0, "all": 1.0, "tail": 1.0}
        self.hang_rate = hang_rate
        self.hang_seconds = hang_seconds
        self.hold_after_batches = hold_after_batches
        self.hold_after_storing = hold_after_storing  # park a request once its hits are stored, not before
        # To benchmark against something like a real server: each stored hit costs this much time on one of
        # `cores` (a real Matomo on 2 cores stores ~340 hits/s from one sender, ~700-760 from 2-4).
        self.hit_cost_seconds = hit_cost_seconds
        self.reporting_api = reporting_api  # False: a host that only tracks (index.php answers 404)
        self._cores = threading.BoundedSemaphore(max(1, cores))
        self.clock = clock
        self.hits: list[StoredHit] = []
        self.visits: list[Visit] = []
        self._visits_of: dict[tuple[int, str], list[Visit]] = {}
        self.queue: list[tuple[dict[str, str], str | None]] = []
        self.batches_stored = 0
        self.failed_transactions = 0
        self.failure_kinds: dict[str, int] = {"nothing": 0, "all": 0, "tail": 0}
        self.hung = 0
        self.held = 0
        self._release = threading.Event()
        self._store_lock = threading.Lock()
        self._sequence = 0
        self._batch_sequence = 0
        self._fault_rng = random.Random(seed)
        self._fault_lock = threading.Lock()
        self.route("POST", TRACKER_PATH, self.track)
        self.route("GET", TRACKER_PATH, self.track)
        self.route("POST", REPORTING_PATH, self.reporting)
        self.route("GET", REPORTING_PATH, self.reporting)
        self.invalidations: list[tuple[str, list[str]]] = []  # (idSites, dates) of invalidateArchivedReports
        # Reports come from archives, as in Matomo: a day's archive is built on its first request (browser-triggered
        # archiving) and then served as it is: a past day's until it is invalidated, today's for
        # `today_archive_ttl` seconds. Without browser archiving an invalidated archive is served stale until
        # `run_archiving()` (the cron's `core:archive`) rebuilds it.
        self.browser_archiving = browser_archiving
        self.today_archive_ttl = 900.0
        self.report_max_rows = report_max_rows  # datatable_archiving_maximum_rows_*: the rest is one "Others" row
        self.archives: dict[tuple[int, dt.date], Archive] = {}
        self.archives_built = 0
        # Tests: called with (method, params) before each Reporting API answer (e.g. to track visits between pages).
        self.before_reporting: Callable[[str, dict[str, str]], None] | None = None
        self.api_methods: dict[str, Callable[[dict[str, str], str | None], Any]] = {
            "API.getMatomoVersion": self.api_version,
            "SitesManager.addSite": self.api_add_site,
            "CoreAdminHome.invalidateArchivedReports": self.api_invalidate,
            "Live.getLastVisitsDetails": self.api_last_visits,
            "VisitsSummary.get": self.api_visits_summary,
            "SitesManager.getSitesWithAtLeastViewAccess": self.api_sites,
            "Goals.getGoals": self.api_goals,
            **{method: self._report_api(method) for method in REPORTS},
        }

    # -- what tests read --------------------------------------------------------------------------------
    def stored(self) -> list[StoredHit]:
        with self._store_lock:
            return list(self.hits)

    def release_held(self) -> None:
        """Let parked requests go: they answer 503 and store nothing (their client is gone)."""
        self.hold_after_batches = None
        self._release.set()

    # -- validation -------------------------------------------------------------------------------------
    def role(self, token: str | None) -> str | None:
        return self.tokens.get(token) if token else None

    def evaluate(self, params: dict[str, str], token: str | None, now: float) -> tuple[str, float]:
        """("ignored" | "invalid" | "stored", recorded timestamp) for one tracking request."""
        if params.get("rec") != "1":
            return "ignored", now
        role = self.role(params.get("token_auth") or token)
        may_write = role in ("superuser", "write")
        try:
            idsite = int(params.get("idsite", ""))
        except ValueError:
            return "invalid", now
        if idsite not in self.sites:
            return "invalid", now
        if not may_write:
            # With a valid token Matomo 5.1 stores these anyway (API-NOTES); without one they are invalid.
            if not params.get("url"):
                return "invalid", now
            if any(name in params and not _HEX16.match(params[name]) for name in ("_id", "cid")):
                return "invalid", now
            if "cip" in params:
                return "invalid", now
        for name in ("e_v", "revenue"):
            if name in params:
                try:
                    float(params[name])
                except ValueError:
                    return "invalid", now
        timestamp = now
        if "cdt" in params:
            parsed = parse_cdt(params["cdt"])
            if parsed is None:
                return "invalid", now
            if parsed > now or parsed < now - MAX_AGE_SECONDS:
                parsed = now  # silently replaced, as Matomo does
            elif now - parsed > TOKENLESS_CDT_SECONDS and not may_write:
                return "invalid", now
            timestamp = float(int(parsed))  # Matomo keeps whole seconds
        return "stored", timestamp

    # -- tracking ---------------------------------------------------------------------------------------
    def track(self, request: Request) -> Response:
        body = request.body.strip()
        if request.method == "POST" and body and not _is_form(request):
            return self.bulk(request)
        params = dict(request.query)
        if request.method == "POST" and body:
            params.update(request.form())
        return self.single(params)

    def single(self, params: dict[str, str]) -> Response:
        now = self.clock()
        outcome, timestamp = self.evaluate(params, None, now)
        if outcome == "invalid":
            return Response(400, GIF + TRACKER_NOTICE, content_type="image/gif")
        if outcome == "stored":
            with self._store_lock:
                self._batch_sequence += 1
                self._store([(params, timestamp)], self._batch_sequence)
        if params.get("send_image") == "0":
            return Response(204, content_type="text/html; charset=UTF-8")
        return Response(200, GIF, content_type="image/gif")

    def bulk(self, request: Request) -> Response:
        if not self.bulk_enabled:
            # Without bulk tracking the JSON body is read as one request without idsite.
            return Response(400, "Error: Invalid idSite: ''", content_type="text/plain")
        try:
            payload = request.json()
            raw_requests = payload["requests"]
            if not isinstance(raw_requests, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            # A real Matomo 5.1.2 answers a body it cannot read as an empty, successful bulk.
            return json_response({"status": "success", "tracked": 0, "invalid": 0})
        token = payload.get("token_auth") or request.query.get("token_auth")
        if not self.hold_after_storing and self._hold():
            return Response(503, "held")
        if self._draw(self.hang_rate):
            self.hung += 1
            time.sleep(self.hang_seconds)  # the client gives up first; nothing is stored
            return Response(503, "too slow")
        requests = [parse_request(item) for item in raw_requests]
        now = self.clock()
        if self.queued and not all(params.get("queuedtracking") == "0" for params in requests):
            with self._store_lock:
                self.queue.extend((params, token) for params in requests)
            self.process_queue()
            return json_response({"status": "success", "tracked": len(requests), "invalid": 0})
        outcomes = [self.evaluate(params, token, now) for params in requests]
        if self.hit_cost_seconds:
            with self._cores:
                time.sleep(self.hit_cost_seconds * len(requests))
        stored = [
            (params, timestamp) for params, (outcome, timestamp) in zip(requests, outcomes, strict=True)
            if outcome == "stored"
        ]  # fmt: skip
        if requests and self._draw(self.transaction_failure_rate):
            return self._deadlock(stored, len(requests))
        with self._store_lock:
            self._batch_sequence += 1
            self._store(stored, self._batch_sequence)
            self.batches_stored += 1
        invalid_indices = [i for i, (outcome, _) in enumerate(outcomes) if outcome == "invalid"]
        answer: dict[str, Any] = {"status": "success", "tracked": len(stored), "invalid": len(invalid_indices)}
        if self.role(token) == "superuser" and requests:
            answer["invalid_indices"] = invalid_indices
        if self.hold_after_storing and self._hold(stored_already=True):
            return Response(503, "held after storing")
        return json_response(answer)

    def _deadlock(self, stored: list[tuple[dict[str, str], float]], size: int) -> Response:
        """What a real Matomo did when a parallel bulk deadlocked: the transaction is rolled back, the rest of the
        batch runs in autocommit and is stored, the final COMMIT fails. Left behind: nothing, all, or a tail."""
        with self._fault_lock:
            kinds = list(self.failure_outcomes)
            kind = self._fault_rng.choices(kinds, weights=[self.failure_outcomes[k] for k in kinds])[0]
            first_kept = self._fault_rng.randint(1, max(1, len(stored) - 1)) if stored else 0
            tracked = self._fault_rng.randint(0, size)
        kept = {"nothing": [], "all": stored, "tail": stored[first_kept:]}[kind]
        with self._store_lock:
            self._batch_sequence += 1
            self._store(kept, self._batch_sequence)
            self.failed_transactions += 1
            self.failure_kinds[kind] += 1
        return json_response({"status": "error", "tracked": tracked, "invalid": 0, "invalid_indices": []}, 500)

    def process_queue(self) -> None:
        """What the QueuedTracking workers do: validate queued requests and store the valid ones."""
        with self._store_lock:
            queued, self.queue = self.queue, []
            now = self.clock()
            keep = []
            for params, token in queued:
                outcome, timestamp = self.evaluate(params, token, now)
                if outcome == "stored":
                    keep.append((params, timestamp))
            self._batch_sequence += 1
            self._store(keep, self._batch_sequence)

    def _store(self, hits: list[tuple[dict[str, str], float]], batch: int) -> None:
        for params, timestamp in hits:
            self._sequence += 1
            hit = StoredHit(self._sequence, batch, params, timestamp)
            self.hits.append(hit)
            self._visit_for(hit).actions.append(hit)

    def _visit_for(self, hit: StoredHit) -> Visit:
        """The visit a hit joins: the visitor's visit with an action less than 30 minutes away, else a new one."""
        params = hit.params
        site = int(params["idsite"])
        visitor = visitor_id_of(params)
        visits = self._visits_of.setdefault((site, visitor), [])
        if params.get("new_visit") != "1":
            for visit in reversed(visits):
                if visit.first - VISIT_GAP_SECONDS <= hit.timestamp <= visit.last + VISIT_GAP_SECONDS:
                    return visit
        visit = Visit(
            len(self.visits) + 1, site, visitor, params.get("uid"), params.get("cip", "127.0.0.1"), params.get("ua", "")
        )
        self.visits.append(visit)
        visits.append(visit)
        return visit

    def _hold(self, stored_already: bool = False) -> bool:
        limit = self.hold_after_batches
        if limit is None or self.batches_stored - int(stored_already) < limit:
            return False
        with self._fault_lock:
            self.held += 1
        self._release.wait()
        with self._fault_lock:
            self.held -= 1
        return True

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._fault_lock:
            return self._fault_rng.random() < rate

    # -- the Reporting API ------------------------------------------------------------------------------
    def reporting(self, request: Request) -> Response:
        """Matomo checks the token first (a wrong one: 401 HTML), then the method, the site, the access and the
        date; every refusal but the token's answers HTTP 200 with `result: error`."""
        if not self.reporting_api:  # a tracking-only host: the web server has no index.php
            return Response(404, NOT_FOUND_PAGE, content_type="text/html; charset=utf-8")
        params = {**request.query, **(request.form() if request.method == "POST" else {})}
        token = params.get("token_auth") or None
        if token is not None and token != "anonymous" and self.role(token) is None:
            return Response(401, WRONG_TOKEN_PAGE, content_type="text/html; charset=utf-8")
        try:
            if params.get("module") != "API":
                raise ApiError("The parameter 'module' must be API.")
            module, _, name = params.get("method", "").partition(".")
            handler = self.api_methods.get(params.get("method", ""))
            if handler is None:
                raise ApiError(
                    f"The method '{name}' does not exist or is not available in the module "
                    f"'\\Piwik\\Plugins\\{module}\\API'."
                )
            if self.before_reporting is not None:
                self.before_reporting(params.get("method", ""), params)
            answer = handler(params, self.role(token))
        except ApiError as error:
            return Response(error.status, {"result": "error", "message": str(error)}, content_type=API_CONTENT_TYPE)
        return Response(200, answer, content_type=API_CONTENT_TYPE)

    def _site(self, params: dict[str, str], key: str = "idSite") -> int:
        value = params.get(key, "")
        try:
            site = int(value)
        except ValueError:
            raise ApiError(f"The parameter '{key}' is not valid.") from None
        if site not in self.sites:
            raise ApiError(f"An unexpected website was found in the request: website id was set to '{site}' .")
        return site

    @staticmethod
    def _require(role: str | None, allowed: tuple[str, ...], access: str, site: int | None = None) -> None:
        if role not in allowed:
            where = f"for the website id = {site}" if site is not None else "for at least one website"
            raise ApiError(f"You can't access this resource as it requires '{access}' access {where}.", 401)

    def api_version(self, params: dict[str, str], role: str | None) -> Any:
        self._require(role, ("superuser", "write", "view"), "view")
        return {"value": VERSION}

    def api_add_site(self, params: dict[str, str], role: str | None) -> Any:
        self._require(role, ("superuser",), "superuser")
        with self._store_lock:
            site = max(self.sites, default=0) + 1
            self.sites.add(site)
            self.timezones[site] = params.get("timezone") or "UTC"
        return {"value": site}

    def api_invalidate(self, params: dict[str, str], role: str | None) -> Any:
        sites, dates = params.get("idSites", ""), [d for d in params.get("dates", "").split(",") if d]
        if not sites or not dates:
            raise ApiError("Please specify a value for 'idSites' and 'dates'.")
        self._require(role, ("superuser", "write"), "admin")
        days = [parse_day(date, self.clock()) for date in dates]
        with self._store_lock:
            self.invalidations.append((sites, dates))
            for site in (int(part) for part in sites.split(",") if part.strip().isdigit()):
                for day in days:
                    if (site, day) in self.archives:
                        self.archives[(site, day)].invalidated = True
        return [f"Success. The following dates were invalidated successfully: {', '.join(dates)}"]

    def _period(self, params: dict[str, str], tz: str = "UTC") -> list[tuple[dt.date, dt.date]]:
        """The sub-periods asked for: one for `date=D` or a range, one per day for `lastN`/`previousN`; "today"
        is the site's."""
        period, date, now = params.get("period", "day"), params.get("date", ""), self.clock()
        if period == "range":
            first, _, last = date.partition(",")
            return [(parse_day(first, now, tz), parse_day(last or first, now, tz))]
        if period != "day":
            raise ApiError(f"The period '{period}' is not supported. Try any of the following instead: day, range")
        match = _LAST_N.match(date)
        if match:
            end = parse_day("today", now, tz) - dt.timedelta(days=1 if match.group(1) == "previous" else 0)
            days = [end - dt.timedelta(days=n) for n in range(int(match.group(2)) - 1, -1, -1)]
            return [(day, day) for day in days]
        day = parse_day(date, now, tz)
        return [(day, day)]

    def _visits(self, site: int, first: dt.date, last: dt.date, segment: str) -> list[Visit]:
        """Visits whose last action falls in [first, last] (days in the site's timezone), newest first, as
        Live.getLastVisitsDetails orders them."""
        matches = parse_segment(segment)
        zone = ZoneInfo(self.timezones.get(site, "UTC"))
        start = dt.datetime.combine(first, dt.time(), zone).timestamp()
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).timestamp()
        with self._store_lock:
            found = [
                visit
                for visit in self.visits
                if visit.site == site and start <= visit.last < end and (matches is None or matches(visit))
            ]
        return sorted(found, key=lambda visit: (visit.last, visit.idvisit), reverse=True)

    def api_last_visits(self, params: dict[str, str], role: str | None) -> Any:
        site = self._site(params)
        self._require(role, ("superuser", "write", "view"), "view", site)
        (first, last), *_ = self._period(params, self.timezones[site])
        visits = self._visits(site, first, last, params.get("segment", ""))
        if params.get("filter_sort_order") == "asc":
            visits.reverse()
        offset = int(params.get("filter_offset") or 0)
        limit = int(params.get("filter_limit") or 100)
        chosen = visits[offset:] if limit < 0 else visits[offset : offset + limit]
        with self._store_lock:
            rendered = [render_visit(visit, self.timezones[site]) for visit in chosen]
        if params.get("doNotFetchActions") in ("1", "true"):
            for visit in rendered:
                visit["actionDetails"] = []
        return rendered

    def api_sites(self, params: dict[str, str], role: str | None) -> Any:
        self._require(role, ("superuser", "write", "view"), "view")
        return [site_info(site, self.timezones[site]) for site in sorted(self.sites)]

    def api_goals(self, params: dict[str, str], role: str | None) -> Any:
        site = self._site(params)
        self._require(role, ("superuser", "write", "view"), "view", site)
        return []  # goals are not simulated: every site has none

    # -- archives -----------------------------------------------------------------------------------------
    def archive(self, site: int, day: dt.date) -> Archive:
        """The day's archive as Matomo would serve it now (see `browser_archiving`)."""
        now = self.clock()
        today = parse_day("today", now, self.timezones[site])
        with self._store_lock:
            current = self.archives.get((site, day))
        stale = current is None or (
            (current.invalidated and self.browser_archiving)
            or (day >= today and now - current.built_at >= self.today_archive_ttl)
        )
        if stale:
            current = self._build(site, day)
        assert current is not None
        return current

    def run_archiving(self) -> int:
        """`core:archive`: rebuild every invalidated archive; how many were rebuilt."""
        with self._store_lock:
            invalid = [key for key, archive in self.archives.items() if archive.invalidated]
        for site, day in invalid:
            self._build(site, day)
        return len(invalid)

    def _build(self, site: int, day: dt.date) -> Archive:
        visits = self._visits(site, day, day, "")
        zone = ZoneInfo(self.timezones[site])
        with self._store_lock:
            archive = Archive(self.clock(), build_reports(visits, day, zone, self.report_max_rows))
            self.archives[(site, day)] = archive
            self.archives_built += 1
        return archive

    def _archived(self, params: dict[str, str], role: str | None, report: str) -> Any:
        site = self._site(params)
        self._require(role, ("superuser", "write", "view"), "view", site)
        periods = self._period(params, self.timezones[site])
        figures = {}
        limit = int(params.get("filter_limit") or 100)  # the API's default: 100 rows of a report
        for first, last in periods:
            if first != last:
                raise ApiError("The simulator archives days only: ask period=day")
            answer = self.archive(site, first).reports[report]
            figures[first.isoformat()] = answer[:limit] if isinstance(answer, list) and limit >= 0 else answer
        if len(periods) == 1 and not _LAST_N.match(params.get("date", "")):
            return next(iter(figures.values()))
        return figures

    def api_visits_summary(self, params: dict[str, str], role: str | None) -> Any:
        return self._archived(params, role, "VisitsSummary.get")

    def _report_api(self, method: str) -> Callable[[dict[str, str], str | None], Any]:
        return lambda params, role: self._archived(params, role, method)


@dataclass
class Archive:
    built_at: float
    reports: dict[str, Any]
    invalidated: bool = False


def site_info(site: int, timezone: str) -> dict[str, Any]:
    """One site of SitesManager.getSitesWithAtLeastViewAccess (the fields clickhaul reads, as Matomo 5 names them)."""
    return {
        "idsite": site,
        "name": f"Site {site}",
        "main_url": f"https://site{site}.example",
        "ts_created": "2024-01-01 00:00:00",
        "ecommerce": 0,
        "sitesearch": 1,
        "timezone": timezone,
        "currency": "USD",
        "exclude_unknown_urls": 0,
        "type": "website",
        "group": "",
        "creator_login": "admin",
    }


def _is_form(request: Request) -> bool:
    return (request.header("content-type") or "").startswith("application/x-www-form-urlencoded")


def visitor_id_of(params: dict[str, str]) -> str:
    """Matomo's visitorId: from `uid` (a hash of it, as Matomo 5 overwrites the visitor id with the user id),
    else `cid`, else `_id` when it is 16 hex characters, else a hash of IP and user agent of its own."""
    if params.get("uid"):
        return hashlib.sha1(params["uid"].encode()).hexdigest()[:16]
    for name in ("cid", "_id"):
        value = params.get(name, "")
        if _HEX16.match(value):
            return value.lower()
    config = f"{params.get('cip', '127.0.0.1')}|{params.get('ua', '')}|{params.get('idsite')}"
    return hashlib.sha1(config.encode()).hexdigest()[:16]


def parse_segment(segment: str) -> Callable[[Visit], bool] | None:
    """`visitorId==a,visitorId==b;visitIp==1.2.3.4`: ',' is OR, ';' is AND (binds looser); values URL-encoded;
    `visitId` also compares numerically (`visitId>=120`)."""
    if not segment:
        return None
    fields: dict[str, Callable[[Visit], str]] = {
        "visitorId": lambda visit: visit.visitor_id,
        "userId": lambda visit: visit.user_id or "",
        "visitIp": lambda visit: visit.ip,
        "visitId": lambda visit: str(visit.idvisit),
    }
    groups: list[list[tuple[Callable[[Visit], str], str, str]]] = []
    for part in segment.split(";"):
        conditions = []
        for condition in part.split(","):
            match = re.fullmatch(r"([A-Za-z0-9_.]+)(==|!=|>=|<=|>|<)(.*)", condition)
            if match is None:
                raise ApiError(f"The segment condition '{condition}' is not valid.")
            name, operator, value = match.groups()
            if name not in fields:
                raise ApiError(f"Segment '{name}' is not a supported segment.")
            conditions.append((fields[name], operator, unquote(value)))
        groups.append(conditions)

    def holds(actual: str, operator: str, value: str) -> bool:
        if operator in ("==", "!="):
            return (actual == value) == (operator == "==")
        try:
            left, right = float(actual), float(value)
        except ValueError:
            return False
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[operator]

    def matches(visit: Visit) -> bool:
        return all(any(holds(read(visit), operator, value) for read, operator, value in group) for group in groups)

    return matches


def parse_day(text: str, now: float, tz: str = "UTC") -> dt.date:
    today = dt.datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    if text == "today":
        return today
    if text == "yesterday":
        return today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(BAD_DATE_MESSAGE) from None


def _php_number(value: float) -> float | int:
    """PHP's json_encode writes a whole float as an integer (`2`, not `2.0`)."""
    return int(value) if value == int(value) else value


def summary_of(visits: list[Visit]) -> dict[str, Any] | list[Any]:
    """VisitsSummary.get's figures; a period without visits is an empty list, as in Matomo."""
    if not visits:
        return []
    lengths = [visit.length for visit in visits]
    actions = [len(visit.actions) for visit in visits]
    bounces = sum(1 for count in actions if count == 1)
    return {
        "nb_uniq_visitors": len({visit.visitor_id for visit in visits}),
        "nb_users": len({visit.user_id for visit in visits if visit.user_id}),
        "nb_visits": len(visits),
        "nb_actions": sum(actions),
        "nb_visits_converted": 0,
        "bounce_count": bounces,
        "sum_visit_length": sum(lengths),
        "max_actions": max(actions),
        "bounce_rate": f"{round(100 * bounces / len(visits))}%",
        "nb_actions_per_visit": _php_number(round(sum(actions) / len(visits), 1)),
        "avg_time_on_site": round(sum(lengths) / len(visits)),
    }


def _pretty_seconds(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest}s" if minutes else f"{rest}s"


def _moment(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def hit_kind(params: dict[str, str]) -> str:
    """The Live `type` a tracking request becomes: event, download, outlink, search, goal, ecommerceOrder, action."""
    if params.get("e_c") and params.get("e_a"):
        return "event"
    if params.get("download"):
        return "download"
    if params.get("link"):
        return "outlink"
    if params.get("search"):
        return "search"
    if params.get("idgoal") == "0" and params.get("ec_id"):
        return "ecommerceOrder"
    if params.get("idgoal", "0") != "0":
        return "goal"
    return "action"


def render_other(kind: str, hit: StoredHit, common: dict[str, Any], position: int) -> dict[str, Any]:
    """Downloads, outlinks, site searches, goal conversions and ecommerce orders in `actionDetails` (Matomo 5's
    field names; the icons and pretty strings are left out)."""
    params = hit.params
    action: dict[str, Any] = {"type": kind, **common}
    if kind in ("download", "outlink"):
        action |= {"url": params.get("download") or params.get("link"), "title": kind.title()}
    elif kind == "search":
        action |= {"siteSearchKeyword": params["search"], "siteSearchCategory": params.get("search_cat")}
        action["siteSearchCount"] = int(params["search_count"]) if params.get("search_count") else None
        action["title"] = "Site Search"
    elif kind == "goal":
        action |= {"goalName": f"Goal {params['idgoal']}", "goalId": int(params["idgoal"]), "goalPageId": None}
        action["revenue"] = _php_number(float(params.get("revenue") or 0))
    else:
        items = [item for item in json.loads(params.get("ec_items") or "[]") if isinstance(item, list)]
        action |= {"orderId": params["ec_id"], "revenue": _php_number(float(params.get("revenue") or 0))}
        action["items"] = sum(int(item[4]) if len(item) > 4 else 1 for item in items)
        action["itemDetails"] = [
            {"itemSKU": item[0], "itemName": item[1] if len(item) > 1 else "", "price": item[3] if len(item) > 3 else 0}
            for item in items
        ]
    return action | {"pageviewPosition": position, "timestamp": int(hit.timestamp)}


def render_action(hit: StoredHit, position: int, time_spent: int) -> dict[str, Any]:
    """One entry of a visit's `actionDetails`, as Matomo 5's Actions and Events plugins write it."""
    params = hit.params
    moment = _moment(hit.timestamp)
    common: dict[str, Any] = {
        "url": params.get("url"),
        "pageIdAction": 700 + hit.sequence % 1000,
        "idpageview": params.get("pv_id", "")[:PV_ID_LENGTH],
        "serverTimePretty": f"{moment:%b} {moment.day}, {moment:%Y %H:%M:%S}",
        "pageId": hit.sequence,
    }
    kind = hit_kind(params)
    if kind not in ("event", "action"):
        return render_other(kind, hit, common, position)
    if kind == "event":
        action: dict[str, Any] = {"type": "event", **common, "eventCategory": params["e_c"]}
        action["eventAction"] = params["e_a"]
        if params.get("e_n"):
            action["eventName"] = params["e_n"]
        if params.get("e_v"):
            action["eventValue"] = _php_number(round(float(params["e_v"]), 3))
        subtitle = f'Category "{params["e_c"]}\', Action "{params["e_a"]}"'
        action |= {"pageviewPosition": position, "title": "Event", "subtitle": subtitle}
        action |= {"icon": "plugins/Morpheus/images/event.png", "timestamp": int(hit.timestamp)}
        return action
    title = params.get("action_name")
    return {
        "type": "action",
        "url": common["url"],
        "pageTitle": title,
        "pageIdAction": common["pageIdAction"],
        "idpageview": common["idpageview"],
        "serverTimePretty": common["serverTimePretty"],
        "pageId": common["pageId"],
        "timeSpent": time_spent,
        "timeSpentPretty": _pretty_seconds(time_spent),
        "pageviewPosition": position,
        "title": title,
        "subtitle": common["url"],
        "icon": "",
        "iconSVG": "plugins/Morpheus/images/action.svg",
        "timestamp": int(hit.timestamp),
    }


def render_actions(actions: Iterable[StoredHit]) -> list[dict[str, Any]]:
    ordered = sorted(actions, key=lambda hit: (hit.timestamp, hit.sequence))
    rendered = []
    for index, hit in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        spent = int(following.timestamp - hit.timestamp) if following is not None else 0
        rendered.append(render_action(hit, index + 1, spent))
    return rendered


def referrer_of(visit: Visit) -> tuple[str, str, str, str | None]:
    """(type, type name, name, url) from the first hit's `urlref`: another host is a website, else direct."""
    url = visit.actions[0].params.get("urlref") if visit.actions else None
    host = urlsplit(url).hostname if url else None
    own = urlsplit(visit.actions[0].params.get("url") or "").hostname if visit.actions else None
    if url and host and host != own:
        return "website", "Websites", host.removeprefix("www."), url
    return "direct", "Direct Entry", "", None


def render_visit(visit: Visit, tz: str = "UTC") -> dict[str, Any]:
    """One visit of Live.getLastVisitsDetails with the fields (and value types) of a real Matomo 5.1.2; dates in
    the site's timezone."""
    zone = ZoneInfo(tz)
    first, last = _moment(visit.first).astimezone(zone), _moment(visit.last).astimezone(zone)
    referrer_type, referrer_type_name, referrer_name, referrer_url = referrer_of(visit)
    duration = visit.length
    kinds = [hit_kind(hit.params) for hit in visit.actions]
    events, searches = kinds.count("event"), kinds.count("search")
    return {
        "idSite": visit.site,
        "idVisit": visit.idvisit,
        "visitIp": visit.ip,
        "visitorId": visit.visitor_id,
        "fingerprint": hashlib.sha1(f"{visit.ip}|{visit.user_agent}".encode()).hexdigest()[:16],
        "actionDetails": render_actions(visit.actions),
        "goalConversions": 0,
        "siteCurrency": "USD",
        "siteCurrencySymbol": "$",
        "serverDate": f"{last:%Y-%m-%d}",
        "visitServerHour": f"{last:%H}",
        "lastActionTimestamp": int(visit.last),
        "lastActionDateTime": f"{_moment(visit.last):%Y-%m-%d %H:%M:%S}",  # UTC, as stored
        "siteName": f"Site {visit.site}",
        "serverTimestamp": int(visit.last),
        "firstActionTimestamp": int(visit.first),
        "serverTimePretty": f"{last:%H:%M:%S}",
        "serverDatePretty": f"{last:%A, %B} {last.day}, {last:%Y}",
        "serverDatePrettyFirstAction": f"{first:%A, %B} {first.day}, {first:%Y}",
        "serverTimePrettyFirstAction": f"{first:%H:%M:%S}",
        "userId": visit.user_id,
        "visitorType": "new",
        "visitorTypeIcon": None,
        "visitConverted": 0,
        "visitConvertedIcon": None,
        "visitCount": 1,
        "visitEcommerceStatus": "none",
        "visitEcommerceStatusIcon": None,
        "daysSinceFirstVisit": 0,
        "secondsSinceFirstVisit": 0,
        "daysSinceLastEcommerceOrder": 0,
        "secondsSinceLastEcommerceOrder": None,
        "visitDuration": duration,
        "visitDurationPretty": _pretty_seconds(duration),
        "searches": searches,
        "actions": len(visit.actions),
        "interactions": len(visit.actions),
        "referrerType": referrer_type,
        "referrerTypeName": referrer_type_name,
        "referrerName": referrer_name,
        "referrerKeyword": "",
        "referrerKeywordPosition": None,
        "referrerUrl": referrer_url,
        "referrerSearchEngineUrl": None,
        "referrerSearchEngineIcon": None,
        "referrerSocialNetworkUrl": None,
        "referrerSocialNetworkIcon": None,
        "languageCode": "",
        "language": "Unknown",
        "deviceType": "Desktop",
        "deviceTypeIcon": "plugins/Morpheus/icons/dist/devices/desktop.png",
        "deviceBrand": "Unknown",
        "deviceModel": "Generic Desktop",
        "operatingSystem": "Windows 10",
        "operatingSystemName": "Windows",
        "operatingSystemIcon": "plugins/Morpheus/icons/dist/os/WIN.png",
        "operatingSystemCode": "WIN",
        "operatingSystemVersion": "10",
        "browserFamily": "Blink",
        "browserFamilyDescription": "Blink (Chrome, Opera)",
        "browser": "Chrome 124.0",
        "browserName": "Chrome",
        "browserIcon": "plugins/Morpheus/icons/dist/browsers/CH.png",
        "browserCode": "CH",
        "browserVersion": "124.0",
        "events": events,
        "continent": "Unknown",
        "continentCode": "unk",
        "country": "Unknown",
        "countryCode": "xx",
        "countryFlag": "plugins/Morpheus/icons/dist/flags/xx.png",
        "region": None,
        "regionCode": None,
        "city": None,
        "location": "Unknown",
        "latitude": None,
        "longitude": None,
        "visitLocalTime": f"{first:%H:%M:%S}",
        "visitLocalHour": f"{first:%H}",
        "daysSinceLastVisit": 0,
        "secondsSinceLastVisit": 0,
        "resolution": "unknown",
        "plugins": "",
        "pluginsIcons": None,
    }


# The archived reports the simulator serves, by API method (each a list of rows, VisitsSummary/Goals an object).
REPORTS = (
    "Actions.getPageUrls",
    "Actions.getEntryPageUrls",
    "Actions.getExitPageUrls",
    "Referrers.getAll",
    "Events.getCategory",
    "Events.getAction",
    "Events.getName",
    "Goals.get",
    "DevicesDetection.getType",
    "UserCountry.getCountry",
)
OTHERS = "Others"  # the label of the row Matomo sums a truncated table's remaining rows into


def build_reports(visits: list[Visit], day: dt.date, zone: ZoneInfo, max_rows: int) -> dict[str, Any]:
    """Every report of one site and day: visit reports count visits whose last action is that day, action reports
    the actions made that day (as Matomo's archivers do)."""
    on_day = [
        (visit, hit, index)
        for visit in visits
        for index, hit in enumerate(sorted(visit.actions, key=lambda hit: (hit.timestamp, hit.sequence)))
        if _moment(hit.timestamp).astimezone(zone).date() == day
    ]
    pages = [(visit, hit, index) for visit, hit, index in on_day if hit_kind(hit.params) == "action"]
    events = [(visit, hit) for visit, hit, _ in on_day if hit_kind(hit.params) == "event"]
    reports: dict[str, Any] = {
        "VisitsSummary.get": summary_of(visits),
        "Actions.getPageUrls": truncated(page_rows(pages), max_rows),
        "Actions.getEntryPageUrls": truncated(edge_rows(visits, "entry"), max_rows),
        "Actions.getExitPageUrls": truncated(edge_rows(visits, "exit"), max_rows),
        "Referrers.getAll": truncated(
            visit_rows(visits, lambda visit: referrer_of(visit)[2] or referrer_of(visit)[1], referrer_kind), max_rows
        ),
        "Events.getCategory": truncated(event_rows(events, ("e_c",)), max_rows),
        "Events.getAction": truncated(event_rows(events, ("e_a",)), max_rows),
        "Events.getName": truncated(event_rows(events, ("e_n",)), max_rows),
        "Goals.get": {"nb_conversions": 0, "nb_visits_converted": 0, "revenue": 0, "conversion_rate": "0%"},
        "DevicesDetection.getType": truncated(visit_rows(visits, lambda visit: "Desktop"), max_rows),
        "UserCountry.getCountry": truncated(
            visit_rows(visits, lambda visit: "Unknown", lambda label: {"code": "xx"}), max_rows
        ),
    }
    return reports


def referrer_kind(label: str) -> dict[str, Any]:
    return {"referer_type": 1 if label == "Direct Entry" else 3}


def visit_rows(
    visits: list[Visit], label_of: Callable[[Visit], str], extra: Callable[[str], dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """A visit report: one row per label with Matomo's core visit metrics."""
    groups: dict[str, list[Visit]] = {}
    for visit in visits:
        groups.setdefault(label_of(visit), []).append(visit)
    rows = []
    for label, members in groups.items():
        actions = [len(visit.actions) for visit in members]
        rows.append(
            {
                "label": label,
                "nb_uniq_visitors": len({visit.visitor_id for visit in members}),
                "nb_visits": len(members),
                "nb_actions": sum(actions),
                "nb_users": len({visit.user_id for visit in members if visit.user_id}),
                "max_actions": max(actions),
                "sum_visit_length": sum(visit.length for visit in members),
                "bounce_count": sum(1 for count in actions if count == 1),
                "nb_visits_converted": 0,
                **(extra(label) if extra else {}),
            }
        )
    return rows


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole) if whole else 0}%"


def page_rows(pages: list[tuple[Visit, StoredHit, int]]) -> list[dict[str, Any]]:
    """Actions.getPageUrls with flat=1: one row per URL path, with entry and exit figures (the recorded shape:
    some of them strings)."""
    groups: dict[str, list[tuple[Visit, StoredHit, int]]] = {}
    for visit, hit, index in pages:
        groups.setdefault(hit.params.get("url") or "", []).append((visit, hit, index))
    rows = []
    for url, members in groups.items():
        visits = {id(visit): visit for visit, _, _ in members}.values()
        spent = sum(_time_spent(visit, index) for visit, _, index in members)
        entries = [visit for visit in visits if _first_page_url(visit) == url]
        exits = [visit for visit in visits if _last_page_url(visit) == url]
        entry_bounces = sum(1 for visit in entries if len(visit.actions) == 1)
        label = _path(url)
        rows.append(
            {
                "label": label,
                "nb_visits": len(visits),
                "nb_uniq_visitors": len({visit.visitor_id for visit in visits}),
                "nb_hits": len(members),
                "sum_time_spent": spent,
                "entry_nb_uniq_visitors": len({visit.visitor_id for visit in entries}),
                "entry_nb_visits": str(len(entries)),
                "entry_nb_actions": str(sum(len(visit.actions) for visit in entries)),
                "entry_sum_visit_length": str(sum(visit.length for visit in entries)),
                "entry_bounce_count": str(entry_bounces),
                "exit_nb_uniq_visitors": len({visit.visitor_id for visit in exits}),
                "exit_nb_visits": str(len(exits)),
                "avg_page_load_time": 0,
                "avg_time_on_page": round(spent / len(members)),
                "bounce_rate": _percent(entry_bounces, len(entries)),
                "exit_rate": _percent(len(exits), len(visits)),
                "url": url,
                "Actions_PageUrl": label,
                "segment": "pageUrl==" + quote(quote(url, safe=""), safe=""),
            }
        )
    return rows


def edge_rows(visits: list[Visit], edge: str) -> list[dict[str, Any]]:
    """Actions.getEntryPageUrls / getExitPageUrls (flat): the visits that began or ended on each page."""
    groups: dict[str, list[Visit]] = {}
    for visit in visits:
        url = _first_page_url(visit) if edge == "entry" else _last_page_url(visit)
        if url is not None:
            groups.setdefault(url, []).append(visit)
    rows = []
    for url, members in groups.items():
        row: dict[str, Any] = {"label": _path(url), f"{edge}_nb_uniq_visitors": len({v.visitor_id for v in members})}
        row[f"{edge}_nb_visits"] = len(members)
        if edge == "entry":
            row["entry_nb_actions"] = sum(len(visit.actions) for visit in members)
            row["entry_sum_visit_length"] = sum(visit.length for visit in members)
            row["entry_bounce_count"] = sum(1 for visit in members if len(visit.actions) == 1)
        rows.append({**row, "url": url})
    return rows


def event_rows(events: list[tuple[Visit, StoredHit]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[Visit, StoredHit]]] = {}
    for visit, hit in events:
        label = " - ".join(hit.params.get(name) or "" for name in names)
        groups.setdefault(label, []).append((visit, hit))
    rows = []
    for label, members in groups.items():
        values = [float(hit.params["e_v"]) for _, hit in members if hit.params.get("e_v")]
        visits = {id(visit): visit for visit, _ in members}.values()
        rows.append(
            {
                "label": label,
                "nb_uniq_visitors": len({visit.visitor_id for visit in visits}),
                "nb_visits": len(visits),
                "nb_events": len(members),
                "nb_events_with_value": len(values),
                "sum_event_value": _php_number(round(sum(values), 3)),
                "min_event_value": _php_number(min(values)) if values else 0,
                "max_event_value": _php_number(max(values)) if values else 0,
                "avg_event_value": _php_number(round(sum(values) / len(values), 2)) if values else 0,
            }
        )
    return rows


def truncated(rows: list[dict[str, Any]], max_rows: int) -> list[dict[str, Any]]:
    """Sorted by visits; beyond `max_rows` the rest becomes one "Others" row of summed counts, as Matomo archives."""
    ordered = sorted(
        rows, key=lambda row: (-int(row.get("nb_visits") or row.get("entry_nb_visits") or 0), row["label"])
    )
    if len(ordered) <= max_rows:
        return ordered
    kept, rest = ordered[: max_rows - 1], ordered[max_rows - 1 :]
    others: dict[str, Any] = {"label": OTHERS}
    for row in rest:
        for name, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool):
                others[name] = others.get(name, 0) + value
    return [*kept, others]


def _page_hits(visit: Visit) -> list[StoredHit]:
    ordered = sorted(visit.actions, key=lambda hit: (hit.timestamp, hit.sequence))
    return [hit for hit in ordered if hit_kind(hit.params) == "action"]


def _first_page_url(visit: Visit) -> str | None:
    hits = _page_hits(visit)
    return hits[0].params.get("url") if hits else None


def _last_page_url(visit: Visit) -> str | None:
    hits = _page_hits(visit)
    return hits[-1].params.get("url") if hits else None


def _time_spent(visit: Visit, index: int) -> int:
    ordered = sorted(visit.actions, key=lambda hit: (hit.timestamp, hit.sequence))
    return int(ordered[index + 1].timestamp - ordered[index].timestamp) if index + 1 < len(ordered) else 0


def parse_request(item: Any) -> dict[str, str]:
    """One bulk entry: a query string (`?a=1&b=2`) or an object of parameters."""
    if isinstance(item, dict):
        return {str(key): str(value) for key, value in item.items()}
    text = str(item)
    if "?" in text:
        text = text.split("?", 1)[1]
    return dict(parse_qsl(text, keep_blank_values=True))


def parse_cdt(value: str) -> float | None:
    """UTC `YYYY-MM-DD HH:MM:SS` (or another ISO form) or unix seconds."""
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def demo_plan(simulator: MatomoSimulator) -> DemoPlan:
    """The Matomo source pointed at the simulator, over the days its stored hits cover (days of site 1's timezone)."""
    from simulators.registry import DemoPlan

    stored = simulator.stored()
    zone = ZoneInfo(simulator.timezones.get(1, "UTC"))
    days = [dt.datetime.fromtimestamp(hit.timestamp, zone).date() for hit in stored] or [
        parse_day("today", simulator.clock())
    ]
    return DemoPlan(
        env={
            "SOURCES__MATOMO__BASE_URL": simulator.url,
            "SOURCES__MATOMO__TOKEN_AUTH": DEMO_VIEW_TOKEN,
            "SOURCES__MATOMO__SITE_IDS": "1",
        },
        start=min(days),
        end=max(days),
    )


DEMO_PATHS = ("/", "/pricing", "/docs", "/docs/install", "/blog/launch", "/blog/tips", "/signup", "/about")
DEMO_REFERRERS = (
    None,
    None,
    "https://www.google.com/search",
    "https://news.ycombinator.com/item",
    "https://partner.example/",
)


def seed_demo_traffic(simulator: MatomoSimulator, days: int = 3, visits_per_day: int = 40, seed: int = 0) -> int:
    """Store `days` whole days of traffic for site 1 (ending yesterday in its timezone): visits of 1-5 page views
    a minute or two apart, some with an event, referrers from search, social and other sites. Returns the hits."""
    rng = random.Random(seed)
    zone = ZoneInfo(simulator.timezones.get(1, "UTC"))
    last = parse_day("today", simulator.clock(), simulator.timezones.get(1, "UTC")) - dt.timedelta(days=1)
    hits: list[tuple[dict[str, str], float]] = []
    for back in range(days):
        day = last - dt.timedelta(days=back)
        start = dt.datetime.combine(day, dt.time(), zone).timestamp()
        for _ in range(visits_per_day):
            moment = start + rng.uniform(600, 86400 - 1800)
            visitor = f"{rng.getrandbits(64):016x}"
            referrer = rng.choice(DEMO_REFERRERS)
            for index in range(rng.randint(1, 5)):
                params = {
                    "idsite": "1",
                    "rec": "1",
                    "_id": visitor,
                    "url": f"https://site1.example{rng.choice(DEMO_PATHS)}",
                }
                params["action_name"] = params["url"].rsplit("/", 1)[-1] or "home"
                if index == 0 and referrer:
                    params["urlref"] = referrer
                hits.append((params, float(int(moment))))
                if rng.random() < 0.2:
                    event = {
                        **params,
                        "e_c": "cta",
                        "e_a": rng.choice(("click", "view")),
                        "e_v": str(rng.randint(1, 9)),
                    }
                    hits.append((event, float(int(moment) + 5)))
                moment += rng.uniform(20, 180)
    hits.sort(key=lambda pair: pair[1])
    with simulator._store_lock:
        simulator._batch_sequence += 1
        simulator._store(hits, simulator._batch_sequence)
    return len(hits)


class MatomoDemoSimulator(MatomoSimulator):
    """A Matomo whose site 1 already holds three days of traffic (`seed_demo_traffic`): what `clickhaul simulate
    matomo` serves and what the test suites read."""

    def __init__(self, faults: Faults | None = None, *, port: int = 0, **options: Any) -> None:
        super().__init__(faults, port=port, **options)
        seed_demo_traffic(self)
