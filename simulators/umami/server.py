"""An Umami server on 127.0.0.1 speaking the Umami 2.20 or the Umami 3.1 API (a switch), self-hosted or Cloud.

Every read endpoint, every report type, `POST /api/send`, the paging and the errors answer as the real servers did
in tests/umami/recordings (tests/umami/test_contract.py holds them there). Events later than the simulator's
"now" are not served yet, so today fills up as time passes, as on a live server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from simulators.harness import Faults, Request, Response, SimulatorServer, SlidingWindow, TokenStore, stable_seed
from simulators.registry import DemoPlan
from sources.common.clock import wall_time

from . import answers
from .answers import Pairs
from .traffic import ADMIN_ID, Hit, Traffic, UmamiData, is_bot, iso, make_uuid, name_uuid, website_record
from .validation import (
    MISSING,
    UNITS,
    Invalid,
    Problem,
    Rule,
    array,
    bad_request,
    check_fields,
    coerce_number,
    is_uuid,
    obj,
    optional,
    parse_instant,
    refusal,
    rule,
    valid_timezone,
)

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "umami-demo-password-7c1e4f9a2b"
DEMO_API_KEY = "api_umami_demo_3f8b2c6d9e1a4b7c"
NOT_FOUND_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>Umami</title></head>'
    "<body><h1>Page not found</h1></body></html>"
)
METRIC_TYPES = {
    # metrics?type= names each version accepts → the name the answers use
    "2": {"url": "path", "host": "hostname"}
    | {n: n for n in ("entry", "exit", "referrer", "title", "query", "event", "tag", "channel")}
    | {n: n for n in answers.SESSION_FIELDS},
    "3": {n: n for n in ("path", "hostname", "entry", "exit", "referrer", "domain", "title", "query", "event", "tag")}
    | {n: n for n in ("channel", "utmSource", "utmMedium", "utmCampaign", "utmContent", "utmTerm")}
    | {n: n for n in answers.SESSION_FIELDS},
}
REPORT_TYPES = {
    "2": ("funnel", "insights", "retention", "utm", "goals", "journey", "revenue", "attribution"),
    "3": ("attribution", "breakdown", "funnel", "goal", "journey", "performance", "retention", "revenue", "utm"),
}
V3_FIELDS = (
    "path", "referrer", "title", "query", "os", "browser", "device", "country", "region", "city", "tag", "hostname",
    "language", "event",
)  # fmt: skip


def step(types: str) -> Rule:
    return obj(type=rule("regex", types), value=rule("string"))


DATE_RANGE = obj(
    startDate=rule("date"),
    endDate=rule("date"),
    num=optional("number"),
    offset=optional("number"),
    unit=optional("string"),
    value=optional("string"),
)
# Umami 2.20: a body per report type, `dateRange` at the top (zod 3, `url`/`event` steps checked by regex).
V2_REPORTS: dict[str, dict[str, Rule]] = {
    "funnel": {"window": rule("number", positive=True), "steps": array(step("url|event"), minimum=2)},
    "goals": {
        "goals": array(
            obj(type=rule("regex", "url|event|event-data"), value=rule("string"), goal=rule("number")), minimum=1
        )
    },
    "attribution": {
        "model": rule("regex", "firstClick|lastClick"),
        "steps": array(step("url|event"), minimum=1),
        "currency": optional("string"),
    },
    "insights": {
        "fields": array(obj(name=rule("string"), type=rule("string")), minimum=1),
        "filters": array(Rule("record")),
    },
    "journey": {
        "steps": rule("number", minimum=3, maximum=7),
        "startStep": optional("string"),
        "endStep": optional("string"),
    },
    "retention": {"timezone": optional("timezone")},
    "utm": {},
    "revenue": {"currency": rule("string"), "timezone": optional("timezone")},
}
V3_STEP = obj(type=rule("enum", "path", "event"), value=rule("string"))
# Umami 3.1: `{websiteId, type, filters, parameters}`, the parameters per type (zod 4).
V3_REPORTS: dict[str, dict[str, Rule]] = {
    "funnel": {"window": rule("number", positive=True), "steps": array(V3_STEP, minimum=2, maximum=8)},
    "goal": {
        "type": rule("string"),
        "value": rule("string"),
        "operator": optional("enum", "count", "sum", "average"),
        "property": optional("string"),
    },
    "attribution": {
        "model": rule("enum", "first-click", "last-click"),
        "type": rule("enum", "path", "event"),
        "step": rule("string"),
        "currency": optional("string"),
    },
    "breakdown": {"fields": array(rule("enum", *V3_FIELDS))},
    "journey": {
        "steps": rule("number", minimum=2, maximum=7),
        "startStep": optional("string"),
        "endStep": optional("string"),
    },
    "retention": {"timezone": optional("string")},
    "utm": {},
    "revenue": {"timezone": optional("string"), "currency": rule("string")},
    "performance": {
        "unit": optional("enum", *UNITS),
        "timezone": optional("timezone"),
        "metric": optional("enum", *answers.VITALS),
    },
}


class ServerFailure(Exception):
    """A 500 with an empty body, as Next.js answers an unhandled error (e.g. a website id that is no UUID)."""


class UmamiSimulator(SimulatorServer):
    """`version` "2" or "3" picks the dialect; `cloud=True` serves Umami Cloud (/v1, x-umami-api-key, 50 / 15 s).

    Users: `users` maps name → password; `roles` marks who is not an admin ("user"). An admin may read any website
    id (an unknown one is empty: `null`, zeros), a user only the generated websites (else 401), as on Umami.
    """

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
        roles: Mapping[str, str] | None = None,
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
        self.traffic = Traffic(self.data, version)
        self.tokens = TokenStore(ttl_seconds=10 * 365 * 86400)  # Umami tokens do not expire by time
        self.users = users or {DEMO_USERNAME: DEMO_PASSWORD}
        self.roles = dict(roles or {})
        self._token_users: dict[str, str] = {}
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
        self.created_websites: list[dict[str, Any]] = []
        self.prefix = prefix = "/v1" if cloud else "/api"
        site = prefix + r"/websites/(?P<website>[^/]+)"
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("POST", "/api/send", self.send),
            ("GET", prefix + r"/websites", self.websites),
            ("POST", prefix + r"/websites", self.create_website),
            ("GET", site, self.website),
            ("GET", site + r"/stats", self.reader(self.stats)),
            ("GET", site + r"/pageviews", self.reader(self.pageviews, timezone_required=True)),
            ("GET", site + r"/metrics", self.reader(self.metrics)),
            ("GET", site + r"/sessions", self.reader(self.sessions)),
            ("GET", site + r"/sessions/stats", self.reader(self.session_stats)),
            ("GET", site + r"/sessions/weekly", self.reader(self.weekly)),
            ("GET", site + r"/sessions/(?P<session>[^/]+)", self.session),
            ("GET", site + r"/sessions/(?P<session>[^/]+)/activity", self.reader(self.activity)),
            ("GET", site + r"/sessions/(?P<session>[^/]+)/properties", self.session_properties),
            ("GET", site + r"/events", self.reader(self.events)),
            ("GET", site + r"/events/series", self.reader(self.event_series, timezone_required=True)),
            ("GET", site + r"/event-data/events", self.reader(self.event_data_events)),
            ("GET", site + r"/event-data/fields", self.reader(self.event_data_fields)),
            ("GET", site + r"/event-data/properties", self.reader(self.event_data_properties)),
            ("GET", site + r"/event-data/stats", self.reader(self.event_data_stats)),
            ("GET", site + r"/event-data/values", self.reader(self.event_data_values)),
            ("GET", site + r"/daterange", self.daterange),
            ("GET", site + r"/active", self.active),
            ("GET", prefix + r"/reports", self.reports),
            ("POST", prefix + r"/reports/(?P<type>[^/]+)", self.run_report),
        ]
        if not cloud:
            routes += [
                ("POST", prefix + r"/auth/login", self.login),
                ("POST", prefix + r"/auth/verify", self.verify),
                ("GET", prefix + r"/auth/verify", lambda request: Response(405, b"")),
            ]
        if version == "3":  # Umami 3 only; Umami 2 answers its "page not found" page
            routes += [
                ("GET", site + r"/metrics/expanded", self.reader(self.expanded_metrics)),
                ("GET", site + r"/events/stats", self.reader(self.event_stats)),
                ("GET", site + r"/event-data/(?P<event>[^/]+)", self.event_data),
            ]
        for method, pattern, handler in routes:
            self.route(method, pattern, handler)

    # -- time -----------------------------------------------------------------------------------------
    def now(self) -> float:
        with self._lock:
            return self._now() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @property
    def website_ids(self) -> list[str]:
        return [w["id"] for w in self.website_list()]

    def website_list(self) -> list[dict[str, Any]]:
        return [*self.data.website_list(), *self.created_websites]

    def not_found(self, request: Request) -> Response:
        return Response(404, NOT_FOUND_PAGE, content_type="text/html; charset=utf-8")

    def refuse(self, status: int, message: str, code: str) -> Response:
        return refusal(self.version, status, message, code)

    def pairs(self, website: str, begin: float, end: float, filters: Mapping[str, Any] | None = None) -> Pairs:
        return answers.apply_filters(self.traffic.events(website, begin, end, self.now()), filters or {})

    # -- auth -----------------------------------------------------------------------------------------
    def user(self, username: str) -> dict[str, Any]:
        role = self.roles.get(username, "admin")
        user: dict[str, Any] = {
            "id": ADMIN_ID if role == "admin" else name_uuid("user", username),
            "username": username,
        }
        user |= {"role": role, "createdAt": "2024-03-01T09:00:00.000Z", "isAdmin": role == "admin"}
        return user | ({"teams": []} if self.version == "3" else {})

    def login(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return self.refuse(400, "Bad request", "bad-request")
        username, password = body.get("username"), body.get("password")
        if not username or self.users.get(username) != password:
            if self.version == "2":
                return Response(401, {"error": "message.incorrect-username-password"})
            return self.refuse(401, "Unauthorized", "incorrect-username-password")
        token, _ = self.tokens.issue()
        with self._lock:
            self.logins += 1
            self._token_users[token] = username
        return Response(200, {"token": token, "user": self.user(username)})

    def verify(self, request: Request) -> Response:
        if refused := self._guard(request):
            return refused
        return Response(200, self.user(self._token_users.get(request.bearer or "", DEMO_USERNAME)))

    def _guard(self, request: Request, website: str | None = None) -> Response | None:
        """Auth, the Cloud rate limit, the test hook that expires tokens, and who may read which website."""
        if self.cloud:
            if request.header("x-umami-api-key") not in self.api_keys:
                return self.refuse(401, "Unauthorized", "unauthorized")
            if not self.rate_window.try_hit():
                with self._lock:
                    self.rate_refusals += 1
                return self.refuse(429, "Too many requests", "too-many-requests")
            admin = False
        else:
            with self._lock:
                self._data_requests += 1
                if self.expire_tokens_after is not None and self._data_requests > self.expire_tokens_after:
                    self.expire_tokens_after = None
                    self.tokens.expire_all()
            if not self.tokens.valid(request.bearer):
                return self.refuse(401, "Unauthorized", "unauthorized")
            admin = self.roles.get(self._token_users.get(request.bearer or "", ""), "admin") == "admin"
        if website is not None:
            if not is_uuid(website):
                raise ServerFailure(website)  # the database rejects the id: an unhandled error
            if not admin and website not in self.website_ids:
                return self.refuse(401, "Unauthorized", "unauthorized")
        return None

    def dispatch(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except ServerFailure:
            return Response(500, b"")

    # -- websites -------------------------------------------------------------------------------------
    def website_row(self, website: dict[str, Any], listed: bool) -> dict[str, Any]:
        row = dict(website)
        if self.version == "3":
            row |= {"replayEnabled": False, "replayConfig": None}
        if listed:
            row["user"] = {"username": DEMO_USERNAME, "id": ADMIN_ID}
        return row

    def websites(self, request: Request) -> Response:
        if refused := self._guard(request):
            return refused
        default_size = 10 if self.version == "2" else 20
        try:
            page = int(request.query.get("page") or 1)
            size = int(request.query.get("pageSize") or default_size)
        except ValueError:
            return self.refuse(400, "Bad request", "bad-request")
        # Umami 2 orders the list by name (and says so), Umami 3 by creation
        rows = sorted(
            self.website_list(),
            key=(lambda w: w["name"]) if self.version == "2" else (lambda w: (w["createdAt"], w["id"])),
        )
        answer: dict[str, Any] = {
            "data": [self.website_row(w, True) for w in rows[(page - 1) * size : page * size]],
            "count": len(rows),
            "page": page,
            "pageSize": size,
        }
        return Response(200, answer | ({"orderBy": "name"} if self.version == "2" else {}))

    def create_website(self, request: Request) -> Response:
        if refused := self._guard(request):
            return refused
        try:
            body = request.json() or {}
        except ValueError:
            return self.refuse(400, "Bad request", "bad-request")
        created = iso(self.now())
        rng = random.Random(stable_seed("umami-created", len(self.created_websites), created))
        website = website_record(make_uuid(rng), str(body.get("name") or ""), str(body.get("domain") or ""), created)
        with self._lock:
            self.created_websites.append(website)
        return Response(200, self.website_row(website, False))

    def website(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        found = next((w for w in self.website_list() if w["id"] == website), None)
        return Response(200, self.website_row(found, False) if found else None)  # an admin gets `null`

    @staticmethod
    def _website(request: Request) -> str:
        assert request.match is not None
        return request.match.group("website")

    # -- reading --------------------------------------------------------------------------------------
    def _window(self, request: Request, *, timezone_required: bool = False) -> tuple[float, float, ZoneInfo]:
        """startAt/endAt (epoch ms; Umami 3 also startDate/endDate), timezone and unit, checked as each version."""
        query = request.query
        problems: list[Problem] = []
        begin = end = None
        if self.version == "2":
            for key in ("startAt", "endAt"):
                if query.get(key) is None or coerce_number(query[key]) is None:
                    problems.append(Problem((key,), "Expected number, received nan", None))
            if not problems:
                begin, end = int(float(query["startAt"])) / 1000.0, int(float(query["endAt"])) / 1000.0
        else:
            if query.get("startAt") and query.get("endAt"):
                begin, end = parse_instant(query["startAt"]), parse_instant(query["endAt"])
            elif query.get("startDate") and query.get("endDate"):
                begin, end = parse_instant(query["startDate"]), parse_instant(query["endDate"])
            if begin is None or end is None:
                raise Invalid(form=["Either startAt+endAt or startDate+endDate must be provided"])
        unit = query.get("unit")
        if unit is not None and unit not in UNITS:
            problems.append(Problem(("unit",), "Invalid unit", "Invalid unit"))
        zone_name = query.get("timezone")
        if zone_name is None:
            if timezone_required and self.version == "2":
                problems.append(Problem(("timezone",), "Required", None))
        elif not valid_timezone(zone_name):
            problems.append(Problem(("timezone",), "Invalid timezone", "Invalid timezone"))
        if problems:
            raise Invalid(problems)
        assert begin is not None and end is not None
        return begin, end, ZoneInfo(zone_name or "UTC")

    def reader(
        self, answer: Callable[[Request, str, float, float, ZoneInfo], Any], *, timezone_required: bool = False
    ) -> Callable[[Request], Response]:
        """A read under /websites/:id with a date range: auth, access, the range's checks, then the answer.
        `timezone_required`: Umami 2 refuses the request without `timezone` (its series endpoints)."""

        def handle(request: Request) -> Response:
            website = self._website(request)
            if refused := self._guard(request, website):
                return refused
            try:
                begin, end, zone = self._window(request, timezone_required=timezone_required)
                return Response(200, answer(request, website, begin, end, zone))
            except Invalid as invalid:
                return bad_request(self.version, invalid)

        return handle

    def filters(self, request: Request) -> dict[str, str]:
        names = {*answers.FILTER_ALIASES, "path", "hostname", "referrer", "title", "query", "tag", "event"}
        return {k: v for k, v in request.query.items() if k in names | set(answers.SESSION_FIELDS)}

    def stats(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        filters = self.filters(request)
        before = answers.compare_range(begin, end, request.query.get("compare"))
        return answers.stats_answer(
            self.version,
            answers.stats_of(self.pairs(website, begin, end, filters)),
            answers.stats_of(self.pairs(website, *before, filters)),
        )

    def stats_truth(self, website: str, begin: float, end: float) -> dict[str, int]:
        return answers.stats_of(self.pairs(website, begin, end))

    def pageviews(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        unit = request.query.get("unit") or "day"
        if unit == "day" and end - begin > 215 * 86400:
            unit = "month"  # what Umami does silently for a span too long for days
        filters = self.filters(request)
        answer = answers.series(self.pairs(website, begin, end, filters), zone, unit)
        if "timezone" not in request.query:  # Umami 3 without a timezone: UTC instants
            answer = {
                key: [{**p, "x": answers.iso_label(p["x"], zone)} for p in points] for key, points in answer.items()
            }
        compare = request.query.get("compare")
        if compare:
            before = answers.compare_range(begin, end, compare)
            answer |= {"startDate": iso(begin), "endDate": iso(end)}
            answer["compare"] = {
                **answers.series(self.pairs(website, *before, filters), zone, unit),
                "startDate": iso(before[0]),
                "endDate": iso(before[1]),
            }
        return answer

    def metric_name(self, request: Request) -> str:
        kind = METRIC_TYPES[self.version].get(request.query.get("type", ""))
        if kind is None:
            raise Invalid(bare=True)
        return kind

    def metrics(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        kind = self.metric_name(request)
        rows = answers.ranked(
            answers.metric_values(self.version, kind, self.pairs(website, begin, end, self.filters(request)))
        )
        search = (request.query.get("search") or "").lower()
        if search:
            rows = [row for row in rows if search in str(row["x"]).lower()]
        return self._slice(request, rows)

    def _slice(self, request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`limit` and `offset` page; `page` is ignored."""
        offset = coerce_number(request.query.get("offset") or 0)
        limit = coerce_number(request.query.get("limit") or 500)
        if offset is None or limit is None:
            raise Invalid(bare=True)
        return rows[int(offset) : int(offset) + int(limit)]

    def metrics_truth(self, website: str, metric: str, begin: float, end: float) -> list[dict[str, Any]]:
        return answers.ranked(answers.metric_values(self.version, metric, self.pairs(website, begin, end)))

    def expanded_metrics(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        kind = self.metric_name(request)
        return self._slice(
            request, answers.expanded_metrics(kind, self.pairs(website, begin, end, self.filters(request)))
        )

    def _page(self, request: Request) -> tuple[int, int]:
        default_size = 10 if self.version == "2" else 20
        try:
            page = int(request.query.get("page") or 1)
            size = int(request.query.get("pageSize") or default_size)
        except ValueError:
            raise Invalid(bare=True) from None
        if page < 1 or size < 1:
            raise Invalid(bare=True)
        if self.advance_per_page:
            self.advance(self.advance_per_page)  # the test's new events arrive while the client pages
        return page, size

    def _paged(self, request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
        page, size = self._page(request)
        return {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}

    def sessions(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return self._paged(request, self.session_rows(website, begin, end))

    def session_rows(self, website: str, begin: float, end: float) -> list[dict[str, Any]]:
        """Sessions with an event in the range, newest first (by their latest event in the range)."""
        return answers.session_rows(self.version, self.pairs(website, begin, end))

    def session_stats(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return answers.session_stats(self.pairs(website, begin, end, self.filters(request)))

    def weekly(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return answers.weekly(self.pairs(website, begin, end, self.filters(request)), zone)

    def _session_of(self, request: Request) -> tuple[str, Any]:
        assert request.match is not None
        website = self._website(request)
        return website, self.traffic.session(website, request.match.group("session"))

    def session(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        _, found = self._session_of(request)
        return Response(200, answers.session_detail(found) if found else None)

    def activity(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        _, found = self._session_of(request)
        if found is None:
            return []
        now = self.now()
        events = [e for e in found.events if begin <= e.created <= min(end, now)]
        return answers.activity_rows(self.version, found, events)

    def session_properties(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        return Response(200, [])  # no `identify` data is kept

    def events(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return self._paged(request, self.event_rows(website, begin, end))

    def event_rows(self, website: str, begin: float, end: float) -> list[dict[str, Any]]:
        return answers.event_rows(self.version, self.pairs(website, begin, end))

    def event_series(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        pairs = self.pairs(website, begin, end, self.filters(request))
        return answers.event_series(pairs, zone, request.query.get("unit") or "day")

    def event_stats(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        filters = self.filters(request)
        before = answers.compare_range(begin, end, request.query.get("compare"))
        return answers.event_stats(self.pairs(website, begin, end, filters), self.pairs(website, *before, filters))

    def event_data_events(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        event = request.query.get("event")
        if event is None and self.version == "3":
            raise ServerFailure("event-data/events needs `event` on Umami 3")
        return answers.event_data_events(self.pairs(website, begin, end), event)

    def event_data_fields(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return answers.event_data_fields(self.pairs(website, begin, end))

    def event_data_properties(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return answers.event_data_properties(self.pairs(website, begin, end))

    def event_data_stats(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        return answers.event_data_stats(self.pairs(website, begin, end))

    def event_data_values(self, request: Request, website: str, begin: float, end: float, zone: ZoneInfo) -> Any:
        """Umami 2 reads `eventName`, Umami 3 `event`; each ignores the other's name."""
        event = request.query.get("eventName" if self.version == "2" else "event")
        if event is None and self.version == "2":
            return []
        return answers.event_data_values(self.pairs(website, begin, end), event, request.query.get("propertyName"))

    def event_data(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        assert request.match is not None
        wanted = request.match.group("event")
        now = self.now()
        for session in self.traffic.all_sessions(website):
            for event in session.events:
                if event.id == wanted and event.created <= now:
                    return Response(200, [self._datum(website, event, k, v) for k, v in event.data])
        return self.refuse(404, "Event not found.", "not-found")

    @staticmethod
    def _datum(website: str, event: Any, key: str, value: Any) -> dict[str, Any]:
        number = answers.data_type(value) == 2
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

    def daterange(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        now = self.now()
        times = [e.created for s in self.traffic.all_sessions(website) for e in s.events if e.created <= now]
        first, last = (iso(min(times)), iso(max(times))) if times else (None, None)
        keys = ("mindate", "maxdate") if self.version == "2" else ("startDate", "endDate")
        return Response(200, dict(zip(keys, (first, last), strict=True)))

    def active(self, request: Request) -> Response:
        website = self._website(request)
        if refused := self._guard(request, website):
            return refused
        now = self.now()
        return Response(200, {"visitors": len({s.id for s, _ in self.pairs(website, now - 300, now)})})

    # -- sending --------------------------------------------------------------------------------------
    def send(self, request: Request) -> Response:
        """`POST /api/send`: validated as each version does; a bot's hit is answered `beep boop` and dropped."""
        try:
            body = request.json()
        except ValueError:
            body = MISSING
        if not isinstance(body, dict):
            return bad_request(self.version, Invalid(form=["Invalid input: expected object, received undefined"]))
        kinds = ("event", "identify") if self.version == "2" else ("event", "identify", "performance")
        problems = check_fields({"type": rule("enum", *kinds), "payload": Rule("record")}, body)
        if problems:
            return bad_request(self.version, Invalid(problems))
        payload = body["payload"]
        website = str(payload.get("website") or "")
        if website not in self.website_ids:
            return self.refuse(400, "Website not found.", "bad-request")
        user_agent = request.header("user-agent") or ""
        if is_bot(user_agent):
            return Response(200, {"beep": "boop"})
        timestamp = coerce_number(payload["timestamp"]) if payload.get("timestamp") is not None else None
        if timestamp is not None and timestamp > 253402300799 and self.version == "2":
            return Response(500, prisma_date_error(timestamp))  # past year 9999: the database refuses it
        if body["type"] != "event":
            return Response(200, {"cache": self.tokens.issue()[0], "sessionId": None, "visitId": None})
        address = (request.header("x-forwarded-for") or "127.0.0.1").split(",")[0].strip()
        hit = Hit(
            website,
            str(payload.get("hostname") or ""),
            str(payload.get("url") or "/"),
            str(payload.get("title") or ""),
            payload.get("referrer"),
            payload.get("name"),
            dict(payload.get("data") or {}),
            payload.get("language"),
            payload.get("screen"),
            payload.get("id"),
            payload.get("tag"),
            timestamp,
            user_agent,
            address,
        )
        session, event = self.traffic.record(hit, self.now())
        return Response(200, {"cache": self.tokens.issue()[0], "sessionId": session.id, "visitId": event.visit_id})

    # -- reports --------------------------------------------------------------------------------------
    def saved_reports(self, website: str) -> list[dict[str, Any]]:
        """What the generated websites have saved: one report of each type, in the server's own dialect."""
        if website not in self.traffic.hostnames:
            return []
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
                {"fields": [{"name": "country", "type": "string"}, {"name": "device", "type": "string"}], "filters": []}
                if v2
                else {"fields": ["country", "device"]},
            ),
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
            else ("goal", "Signups", {"type": "event", "value": "signup"}),
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
                {"model": "firstClick", "steps": [{"type": "event", "value": "checkout"}]}
                if v2
                else {"model": "first-click", "type": "event", "step": "checkout"},
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
                    "userId": ADMIN_ID,
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
        default_size = 10 if self.version == "2" else 20
        try:
            page, size = int(request.query.get("page") or 1), int(request.query.get("pageSize") or default_size)
        except ValueError:
            return self.refuse(400, "Bad request", "bad-request")
        rows = [r for w in ([website] if website else self.website_ids) for r in self.saved_reports(w)]
        return Response(
            200, {"data": rows[(page - 1) * size : page * size], "count": len(rows), "page": page, "pageSize": size}
        )

    def run_report(self, request: Request) -> Response:
        assert request.match is not None
        kind = request.match.group("type")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return bad_request(self.version, Invalid(form=["Invalid input: expected object, received undefined"]))
        try:
            website, parameters, filters = self._report_request(kind, body)
        except Invalid as invalid:
            return bad_request(self.version, invalid)
        if refused := self._guard(request, website):
            return refused
        begin, end, zone = self._report_range(parameters, body)
        return Response(200, self.report_answer(kind, website, begin, end, zone, parameters, filters))

    def _report_request(self, kind: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Validate as the version does; an unknown report name lands in `/api/reports/[reportId]` (an update)."""
        website = body.get("websiteId")
        if self.version == "2":
            if kind not in V2_REPORTS:
                base = {
                    "websiteId": rule("uuid"),
                    "type": rule("enum", *REPORT_TYPES["2"]),
                    "name": rule("string"),
                    "description": rule("string"),
                    "parameters": Rule("record"),
                }
                raise Invalid(check_fields(base, body), bare=not check_fields(base, body))
            schema = {"websiteId": rule("uuid"), "dateRange": DATE_RANGE, **V2_REPORTS[kind]}
            problems = check_fields(schema, body)
            if problems:
                raise Invalid(problems)
            filters = {str(f.get("name")): f.get("value") for f in body.get("filters") or [] if isinstance(f, dict)}
            return str(website), body, filters
        if kind not in V3_REPORTS:
            base = {
                "websiteId": rule("uuid"),
                "name": rule("string"),
                "description": optional("string"),
                "parameters": Rule("record"),
            }
            problems = check_fields(base, body)
            if body.get("type") not in REPORT_TYPES["3"]:  # zod 4 names the options even when `type` is missing
                problems += rule("enum", *REPORT_TYPES["3"]).check("", ("type",))
            raise Invalid(problems, bare=not problems)
        problems = check_fields({"websiteId": rule("uuid"), "filters": Rule("object")}, body)
        if body.get("type") != kind:
            problems.append(Problem(("type",), None, "Invalid input"))  # the union's discriminator
        else:
            dates = {"startDate": rule("date"), "endDate": rule("date")}
            problems += check_fields({"parameters": obj(**dates, **V3_REPORTS[kind])}, body)
        if problems:
            raise Invalid(problems)
        return str(website), dict(body["parameters"]), dict(body.get("filters") or {})

    def _report_range(self, parameters: dict[str, Any], body: dict[str, Any]) -> tuple[float, float, ZoneInfo]:
        span = body["dateRange"] if self.version == "2" else parameters
        zone = parameters.get("timezone") or body.get("timezone") or "UTC"
        begin, end = parse_instant(span["startDate"]), parse_instant(span["endDate"])
        assert begin is not None and end is not None
        return begin, end, ZoneInfo(zone if valid_timezone(zone) else "UTC")

    def report_answer(
        self,
        kind: str,
        website: str,
        begin: float,
        end: float,
        zone: ZoneInfo,
        parameters: dict[str, Any],
        filters: Mapping[str, Any] | None = None,
    ) -> Any:
        pairs = self.pairs(website, begin, end, filters)
        version = self.version
        if kind == "funnel":
            return answers.funnel(pairs, parameters["steps"], float(parameters["window"]))
        if kind == "retention":
            return answers.retention(version, pairs, begin, end, zone)
        if kind == "utm":
            return answers.utm_report(version, pairs)
        if kind == "journey":
            return answers.journey(
                pairs, int(parameters["steps"]), parameters.get("startStep"), parameters.get("endStep")
            )
        if kind == "revenue":
            unit = (parameters.get("dateRange") or {}).get("unit") if version == "2" else parameters.get("unit")
            before = self.pairs(website, *answers.compare_range(begin, end, None), filters)
            return answers.revenue(version, pairs, before, zone, unit or "day", parameters.get("currency"))
        if kind == "goals":
            return answers.goals_v2(pairs, parameters["goals"])
        if kind == "goal":
            return answers.goal_v3(pairs, parameters)
        if kind == "attribution":
            return answers.attribution(version, pairs, parameters)
        if kind in ("insights", "breakdown"):
            fields = [f if isinstance(f, str) else f.get("name") for f in parameters["fields"]]
            return answers.breakdown(pairs, fields)
        if kind == "performance":
            return answers.performance(pairs, zone, parameters.get("unit") or "day", parameters.get("metric") or "lcp")
        raise KeyError(kind)

    def report_truth(
        self, kind: str, website: str, begin: float, end: float, zone: ZoneInfo, parameters: dict[str, Any]
    ) -> Any:
        """The answer to a report whose parameters are in this server's dialect (tests compare tables with it)."""
        return self.report_answer(kind, website, begin, end, zone, parameters, parameters.get("filters") or None)


def prisma_date_error(timestamp: float) -> dict[str, Any]:
    """Umami 2's answer to a millisecond timestamp: Prisma cannot store a date past year 9999."""
    year = 1970 + int(timestamp // 31_556_952)
    message = (
        "\nInvalid `prisma.websiteEvent.create()` invocation:\n\n\nCould not convert argument value Object "
        f'{{"$type": String("DateTime"), "value": String("+0{year}-01-01T00:00:00.000Z")}} to ArgumentValue.'
    )
    return {
        "error": {
            "clientVersion": "6.19.3",
            "name": "PrismaClientUnknownRequestError",
            "message": message,
            "stack": "PrismaClientUnknownRequestError: " + message,
        }
    }


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
