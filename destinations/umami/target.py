"""Umami as a target of the shared push engine: a hit is one `POST /api/send` (Umami 2 and 3 alike), a ledger
batch is a few dozen of them sent in order by one worker, and a batch in an unknown state is read back through
Umami's own API: the website's events in the batch's span.

A raw hit uses clickhaul's hit vocabulary (the Matomo Tracking API names, see `destinations.matomo.mappings`), so
every mapping serves every destination: `url`, `action_name` (title), `urlref` (referrer), `lang`, `res` (screen),
`_id`/`cid`/`uid` (the distinct id, `payload.id`), `cdt` (`payload.timestamp`, unix seconds), `ua` (the User-Agent
header), `cip` (X-Forwarded-For, Umami's GeoIP), and events: `e_a` becomes the event's name, `e_c`, `e_n` and `e_v`
its data (`category`, `name`, `value`), or `event_data` (a JSON object) as it is.

What the answers mean (real Umami 2.20 and 3.1, `real-recordings/`):
- 200 with a `sessionId`: stored. Umami has no de-duplication: a hit sent twice is counted twice;
- 200 `{"beep": "boop"}`: dropped as a bot, silently: recorded in `umami_rejected` (the User-Agent is checked
  before sending, so this only happens for agents Umami's own list knows and clickhaul's does not);
- 400: the hit is refused (its reason recorded), except "Website not found", which is the configuration's fault;
- 429: refused, sent again after Retry-After (Umami Cloud); 5xx, an answer lost or cut: unknown.

Reading back: the events of the website between the batch's first and last second (a second's margin), each
matched to a sent hit by (second, path, query, event name, title) and, where this run learnt the visitor's Umami
session from an earlier answer, by that session. k sent hits with one fingerprint are matched by at most k events.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from destinations.common.push import BulkOutcome, InvalidHit, Prepared, Verdict, encode_request
from destinations.matomo.validation import to_utc_datetime
from sources.common.clock import SYSTEM_CLOCK, Clock, wall_time
from sources.common.errors import ConfigError
from sources.common.http import RequestStats, RetryPolicy, parse_retry_after
from sources.common.monitor import current_monitor
from sources.common.redact import redact
from sources.umami.client import UmamiClient, error_message

from .settings import (
    BOT_USER_AGENT,
    MAX_TIMESTAMP_SECONDS,
    READ_BACK_MARGIN_SECONDS,
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    VENDOR,
)

DEFAULT_RETRY = RetryPolicy(
    max_attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY, max_elapsed_seconds=600.0
)
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# Umami's payload limits (both versions' schemas): longer values are refused with HTTP 400.
LIMITS = {"url": 500, "title": 500, "referrer": 500, "hostname": 100, "language": 35, "screen": 11, "name": 50}
# Hits Umami has no place for.
UNSUPPORTED = {
    "idgoal": "a goal conversion",
    "ec_id": "an e-commerce order",
    "ec_items": "an e-commerce cart",
    "ping": "a heartbeat ping",
}

Fingerprint = tuple[str | None, int | None, str, str, str, str]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def event_of(raw: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(name, data) of a custom event; ("", None) for a page view."""
    data_value = raw.get("event_data")
    data: dict[str, Any] | None = None
    if data_value not in (None, ""):
        data = json.loads(data_value) if isinstance(data_value, str) else data_value
        if not isinstance(data, dict):
            raise InvalidHit("event_data must be a JSON object")
    name = _text(raw.get("e_a")) or _text(raw.get("event_name"))
    if not name and not data:
        if _text(raw.get("e_c")) or _text(raw.get("e_n")):
            raise InvalidHit("an event needs e_a (its action: Umami's event name)")
        return "", None
    if not name:
        raise InvalidHit("event_data without an event name (e_a or event_name)")
    if data is None:
        extra = {"category": _text(raw.get("e_c")), "name": _text(raw.get("e_n"))}
        data = {key: value for key, value in extra.items() if value}
        if raw.get("e_v") not in (None, ""):
            try:
                data["value"] = float(raw["e_v"])
            except (TypeError, ValueError):
                raise InvalidHit(f"e_v {raw['e_v']!r} is not numeric") from None
    return name, data or None


def payload_of(raw: Mapping[str, Any], website: str, default_hostname: str, now: float) -> dict[str, Any]:
    """The `payload` of one `/api/send`, with `ua` and `ip` beside it for the headers; `InvalidHit` says why not."""
    for name, what in UNSUPPORTED.items():
        if raw.get(name) not in (None, "", 0, "0"):
            raise InvalidHit(f"{what} ({name}) has no equivalent in Umami")
    url = _text(raw.get("url"))
    if not url:
        raise InvalidHit("url is missing")
    parts = urlsplit(url if "://" in url or url.startswith("/") else "/" + url)
    hostname = parts.hostname or default_hostname
    if not hostname:
        raise InvalidHit(
            f"url {url!r} has no host and destination.umami.hostname is not set: Umami needs the site's hostname"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    ua = _text(raw.get("ua"))
    if not ua:
        raise InvalidHit("no user agent (ua): Umami drops hits that do not come from a browser")
    if BOT_USER_AGENT.search(ua):
        raise InvalidHit(f"user agent {ua[:80]!r} is a bot's or a tool's: Umami drops it without saying so")
    payload: dict[str, Any] = {"website": website, "hostname": hostname, "url": path}
    if raw.get("cdt") not in (None, ""):
        moment = to_utc_datetime(raw["cdt"])
        seconds = int(moment.timestamp())
        if seconds > now:
            raise InvalidHit(f"cdt {moment:%Y-%m-%d %H:%M:%S} is in the future")
        if not 0 < seconds <= MAX_TIMESTAMP_SECONDS:
            raise InvalidHit(f"cdt {raw['cdt']!r} is out of range")
        payload["timestamp"] = seconds
    for key, name in (("action_name", "title"), ("urlref", "referrer"), ("lang", "language"), ("res", "screen")):
        value = _text(raw.get(key))
        if value:
            payload[name] = value
    visitor = _text(raw.get("uid")) or _text(raw.get("_id")) or _text(raw.get("cid"))
    if visitor:
        payload["id"] = visitor
    name, data = event_of(raw)
    if name:
        payload["name"] = name
    if data:
        payload["data"] = data
    for field, limit in LIMITS.items():
        if len(str(payload.get(field, ""))) > limit:
            raise InvalidHit(f"{field} is longer than Umami's {limit} characters")
    return {"payload": payload, "ua": ua, "ip": _text(raw.get("cip")) or None}


def utc_day(seconds: int | None) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat() if seconds else ""


def fingerprint(payload: Mapping[str, Any], session: str | None) -> Fingerprint:
    url = urlsplit(str(payload.get("url") or "/"))
    second = int(payload["timestamp"]) if payload.get("timestamp") is not None else None
    return (
        session,
        second,
        url.path or "/",
        url.query,
        str(payload.get("name") or ""),
        str(payload.get("title") or ""),
    )


def event_fingerprints(event: Mapping[str, Any]) -> tuple[Fingerprint, ...]:
    """An event row of `/websites/:id/events` under each key a sent hit may look for: with and without its
    session, with and without its second."""
    created = dt.datetime.fromisoformat(str(event.get("createdAt")).replace("Z", "+00:00"))
    second = int(created.timestamp())
    rest = (
        str(event.get("urlPath") or "/"),
        str(event.get("urlQuery") or ""),
        str(event.get("eventName") or ""),
        str(event.get("pageTitle") or ""),
    )
    session = str(event.get("sessionId") or "")
    return tuple((s, t, *rest) for s in (session, None) for t in (second, None))  # type: ignore[misc]


class UmamiTarget:
    """`POST /api/send` one hit at a time; read-backs through the API (`UmamiClient`, logged in)."""

    vendor = VENDOR

    def __init__(
        self,
        send_url: str,
        website_id: str,
        reader: UmamiClient,
        *,
        hostname: str = "",
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        connections: int = 4,
    ) -> None:
        self.url = send_url
        self.website_id = website_id
        self.reader = reader
        self.hostname = hostname
        self.clock = clock
        self.retry = retry or DEFAULT_RETRY
        self.stats = RequestStats()
        # distinct id -> the Umami sessions answers or read-backs named (a visitor's hits may span two sessions)
        self.sessions: dict[str, set[str]] = defaultdict(set)
        pool = max(4, connections)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=httpx.HTTPTransport(
                verify=send_url.startswith("https:"),
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            ),
        )

    def close(self) -> None:
        self._http.close()

    # -- encoding -----------------------------------------------------------------------------------------
    def prepare(self, raw: Mapping[str, Any], hit_id: str, now: float) -> Prepared:
        request = payload_of(raw, self.website_id, self.hostname, now)
        payload = request["payload"]
        visitor = payload.get("id") or f"{request['ip']}|{request['ua']}"
        return Prepared(encode_request(request), visitor, self.website_id, utc_day(payload.get("timestamp")))

    def locate(self, request: str) -> tuple[str, str]:
        payload = orjson.loads(request)["payload"]
        return str(payload.get("website")), utc_day(payload.get("timestamp"))

    # -- sending ------------------------------------------------------------------------------------------
    def send(
        self, requests: Sequence[str], is_first: Callable[[], bool], on_sent: Callable[[], None] | None
    ) -> BulkOutcome:
        """The batch's hits one after another, in order; the first unknown or refused answer ends it. A batch some
        of whose hits were stored before that is unknown as a whole: reading back tells which."""
        invalid: dict[int, str] = {}
        for index, request in enumerate(requests):
            outcome = self._send_one(request)
            if index == 0 and on_sent is not None:
                on_sent()
            state, reason = outcome
            if state == "stored":
                continue
            if state == "invalid":
                invalid[index] = reason
                continue
            if state == "refused" and index == 0:
                return BulkOutcome("refused", reason=reason, retry_after=self._retry_after)
            return BulkOutcome("unknown", answered=state != "lost", reason=reason)
        return BulkOutcome(
            "stored",
            tracked=len(requests) - len(invalid),
            invalid=len(invalid),
            invalid_indices=sorted(invalid),
            reasons=invalid,
        )

    _retry_after: float | None = None

    def _send_one(self, request: str) -> tuple[str, str]:
        """("stored" | "invalid" | "refused" | "unknown" | "lost", reason) of one hit."""
        hit = orjson.loads(request)
        headers = {"User-Agent": hit["ua"], "Content-Type": "application/json"}
        if hit.get("ip"):
            headers["X-Forwarded-For"] = hit["ip"]
        self.stats.add(requests=1)
        current_monitor().count(requests=1)
        self._retry_after = None
        try:
            response = self._http.post(
                self.url, content=orjson.dumps({"type": "event", "payload": hit["payload"]}), headers=headers
            )
        except NOT_SENT_ERRORS as error:
            return "refused", f"{type(error).__name__}: {redact(str(error))}"
        except httpx.TransportError as error:
            return "lost", f"no answer: {type(error).__name__}"
        status = response.status_code
        try:
            answer: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if status == 200 and isinstance(answer, dict):
            if answer.get("beep") == "boop":
                return "invalid", f"Umami dropped this hit as a bot's (User-Agent {hit['ua'][:80]!r})"
            if answer.get("sessionId") or answer.get("cache"):
                visitor = hit["payload"].get("id")
                if visitor and answer.get("sessionId"):
                    self.sessions[str(visitor)].add(str(answer["sessionId"]))
                return "stored", ""
        if status == 429:
            self._retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock, self.retry)
            return "refused", "HTTP 429"
        if status == 400 and isinstance(answer, dict):
            message = error_message(response)
            if "website not found" in message.lower():
                raise ConfigError(
                    f"umami: {self.url} does not know website {self.website_id} (Website not found): check "
                    "destination.umami.website_id (DESTINATION__UMAMI__WEBSITE_ID)"
                )
            return "invalid", f"Umami refused this hit: {message}"
        if 400 <= status < 500 and not isinstance(answer, dict):
            return "refused", f"HTTP {status}: {redact(response.text)[:200]}"
        return "unknown", f"HTTP {status}: {redact(response.text)[:200]}"

    # -- reading back -------------------------------------------------------------------------------------
    def check(self, requests: Sequence[str], sent_on: dt.date) -> Verdict:
        """Which hits of a batch Umami holds: its events in the batch's span, matched by fingerprint."""
        sent = [orjson.loads(request) for request in requests]
        payloads = [hit["payload"] for hit in sent]
        seconds = [p["timestamp"] for p in payloads if p.get("timestamp") is not None]
        undated = len(seconds) < len(payloads)
        start = min(seconds) - READ_BACK_MARGIN_SECONDS if seconds else None
        end = max(seconds) + READ_BACK_MARGIN_SECONDS if seconds else None
        if undated:  # recorded at the server's "now": from the day it was sent until now
            midnight = dt.datetime(sent_on.year, sent_on.month, sent_on.day, tzinfo=dt.UTC).timestamp()
            start = int(min(start, midnight) if start is not None else midnight)
            end = int(max(end or 0, wall_time() + 60))
        assert start is not None and end is not None
        queries = 0
        params = {"startAt": start * 1000, "endAt": end * 1000 + 999}
        events: dict[str, Mapping[str, Any]] = {}
        for page in self.reader.rows(self.website_id, "events", params):
            queries += 1
            for event in page:
                events.setdefault(str(event.get("id")), event)
        queries = max(queries, 1) + self._learn_sessions(payloads, events)
        # An event of a session a known visitor owns can only be that visitor's hit; the others can be any hit's.
        claimed = self._known_sessions()
        found: Counter[Fingerprint] = Counter()
        for row in events.values():
            owned = str(row.get("sessionId") or "") in claimed
            for key in event_fingerprints(row):
                if key[0] is not None or not owned:
                    found[key] += 1
        stored: list[int] = []
        missing: list[int] = []
        for position, payload in enumerate(payloads):
            visitor = str(payload.get("id") or "")
            sessions = sorted(self.sessions.get(visitor, ())) if visitor else []
            keys = [fingerprint(payload, session) for session in sessions] or [fingerprint(payload, None)]
            match = next((key for key in keys if found[key] > 0), None)
            if match is None:
                missing.append(position)
                continue
            found[match] -= 1
            if match[1] is not None:  # nor is it there for a hit looked up without its second
                found[(match[0], None, *match[2:])] -= 1  # type: ignore[assignment]
            stored.append(position)
        return Verdict(stored, missing, queries)

    def _known_sessions(self) -> set[str]:
        return {session for sessions in self.sessions.values() for session in sessions}

    def _learn_sessions(self, payloads: Sequence[Mapping[str, Any]], events: Mapping[str, Mapping[str, Any]]) -> int:
        """Which visitor each candidate event belongs to, for hits whose session this run never heard of (a run
        after a crash): two visitors' page views of one path in one second would otherwise be taken for each
        other, and the hit not stored would never be sent. One `sessions/:id` read per unknown session."""
        unknown = {
            fingerprint(payload, None)[1:]
            for payload in payloads
            if payload.get("id") and not self.sessions.get(str(payload["id"]))
        }
        if not unknown:
            return 0
        named = self._known_sessions()
        candidates = {
            str(event.get("sessionId"))
            for event in events.values()
            if event.get("sessionId") and any(key[1:] in unknown for key in event_fingerprints(event))
        } - named
        for session_id in candidates:
            visitor = self.reader.session(self.website_id, session_id).get("distinctId")
            if visitor:
                self.sessions[str(visitor)].add(session_id)
        return len(candidates)
