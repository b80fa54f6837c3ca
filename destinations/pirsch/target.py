"""Pirsch as a target of the shared push engine: page views through `POST /api/v1/hit/batch`, events through
`POST /api/v1/event/batch`, each hit with its `time`, a ledger batch's hits in their order (consecutive page views
in one request, consecutive events in the next, and so on).

A raw hit uses clickhaul's hit vocabulary (the Matomo Tracking API names, see `destinations.matomo.mappings`):
`url` (made absolute with the domain's hostname when it is a path), `action_name` (title), `urlref` (referrer),
`lang` (accept_language), `res` (screen width and height), `cdt` (`time`), `ua` (user_agent), `cip` (ip), and
events: `e_a` is the event's name, `e_c`, `e_n`, `e_v` its metadata (`category`, `name`, `value`), or
`event_data` as it is (scalar values). Pirsch tells visitors apart by IP and User-Agent only: a hit without an IP
gets a stable private address made from its visitor id (`_id`, `uid`, `cid`), so two visitors stay two.

Pirsch answers a stored batch with HTTP 200 and nothing else, and drops without a word what it does not count (a
bot's User-Agent, a hostname not the domain's, a `time` too far back): those are refused here, before sending, with
the reason in `pirsch_rejected`. A batch whose answer is lost or cut, or a 5xx, is read back: every request carries
the tag `clickhaul_batch` (a hash of the batch), and the page views and events Pirsch holds with that tag tell how
many of the batch's requests it stored (a request is stored whole or not at all).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from destinations.common.push import BulkOutcome, InvalidHit, Prepared, Verdict, encode_request
from destinations.matomo.validation import to_utc_datetime
from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.http import RequestStats, RetryPolicy, parse_retry_after
from sources.common.monitor import current_monitor
from sources.common.redact import redact
from sources.pirsch.client import PirschClient, error_message

from .settings import (
    BATCH_TAG,
    EVENT_PATH,
    HIT_PATH,
    MAX_USER_AGENT,
    MIN_USER_AGENT,
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    VENDOR,
)

DEFAULT_RETRY = RetryPolicy(
    max_attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY, max_elapsed_seconds=600.0
)
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
BOT_MARKERS = ("bot", "crawl", "spider", "slurp", "curl", "wget", "python", "httpx", "java/", "headless", "scrapy")
UNSUPPORTED = {"idgoal": "a goal conversion", "ec_id": "an e-commerce order", "ping": "a heartbeat ping"}


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def private_ip(visitor: str) -> str:
    """A stable address in 10.0.0.0/8 for a visitor id: Pirsch's fingerprint needs an IP to tell visitors apart."""
    digest = hashlib.sha256(visitor.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{digest[2] or 1}"


def check_user_agent(ua: str) -> None:
    if not ua:
        raise InvalidHit("no user agent (ua): Pirsch counts only hits from browsers")
    lowered = ua.lower()
    if not MIN_USER_AGENT <= len(ua) <= MAX_USER_AGENT or not ua.isascii() or any(m in lowered for m in BOT_MARKERS):
        raise InvalidHit(
            f"user agent {ua[:80]!r} is one Pirsch filters as a bot's (blacklisted, not ASCII, or shorter than "
            f"{MIN_USER_AGENT} or longer than {MAX_USER_AGENT} characters): it would be dropped without a word"
        )


def meta_of(raw: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(event name, metadata) of an event; ("", {}) for a page view. Pirsch's metadata is one level of scalars."""
    data = raw.get("event_data")
    name = _text(raw.get("e_a")) or _text(raw.get("event_name"))
    if data not in (None, ""):
        values = json.loads(data) if isinstance(data, str) else data
        if not isinstance(values, dict):
            raise InvalidHit("event_data must be a JSON object")
        if not name:
            raise InvalidHit("event_data without an event name (e_a or event_name)")
        meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
        return name, meta
    if not name:
        if _text(raw.get("e_c")) or _text(raw.get("e_n")):
            raise InvalidHit("an event needs e_a (its action: Pirsch's event name)")
        return "", {}
    meta = {key: _text(raw.get(column)) for key, column in (("category", "e_c"), ("name", "e_n"), ("value", "e_v"))}
    return name, {key: value for key, value in meta.items() if value}


def hit_of(raw: Mapping[str, Any], hostname: str, now: float, max_age_days: int) -> dict[str, Any]:
    """One hit as Pirsch's batch endpoints take it (`event_name` set for an event); `InvalidHit` says why not."""
    for name, what in UNSUPPORTED.items():
        if raw.get(name) not in (None, "", 0, "0"):
            raise InvalidHit(f"{what} ({name}) has no equivalent in Pirsch")
    url = _text(raw.get("url"))
    if not url:
        raise InvalidHit("url is missing")
    parts = urlsplit(url if "://" in url else "https://" + hostname + ("" if url.startswith("/") else "/") + url)
    host = (parts.hostname or "").removeprefix("www.")
    if host != hostname.removeprefix("www."):
        raise InvalidHit(f"url {url[:120]!r} is not on the domain's hostname {hostname}: Pirsch would drop it")
    ua = _text(raw.get("ua"))
    check_user_agent(ua)
    hit: dict[str, Any] = {"url": parts.geturl(), "user_agent": ua}
    if raw.get("cdt") not in (None, ""):
        moment = to_utc_datetime(raw["cdt"])
        if moment.timestamp() > now:
            raise InvalidHit(f"cdt {moment:%Y-%m-%d %H:%M:%S} is in the future")
        oldest = now - max_age_days * 86_400
        if moment.timestamp() < oldest:
            raise InvalidHit(
                f"cdt {moment:%Y-%m-%d %H:%M:%S} is older than destination.pirsch.max_age_days ({max_age_days} days): "
                "outside the range Pirsch accepts"
            )
        hit["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    visitor = _text(raw.get("uid")) or _text(raw.get("_id")) or _text(raw.get("cid"))
    hit["ip"] = _text(raw.get("cip")) or (private_ip(visitor) if visitor else "")
    if not hit["ip"]:
        raise InvalidHit("neither an IP (cip) nor a visitor id (_id, uid): Pirsch could not tell visitors apart")
    for key, name in (("action_name", "title"), ("urlref", "referrer"), ("lang", "accept_language")):
        value = _text(raw.get(key))
        if value:
            hit[name] = value
    resolution = _text(raw.get("res")).lower()
    if "x" in resolution:
        width, _, height = resolution.partition("x")
        if width.isdigit() and height.isdigit():
            hit["screen_width"], hit["screen_height"] = int(width), int(height)
    event, meta = meta_of(raw)
    if event:
        hit["event_name"] = event
        if meta:
            hit["event_meta"] = meta
    return hit


def batch_tag(requests: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(requests).encode()).hexdigest()[:20]


def runs_of(requests: Sequence[str]) -> list[tuple[bool, list[int]]]:
    """Consecutive requests of one kind: (is_event, positions), in order."""
    runs: list[tuple[bool, list[int]]] = []
    for position, request in enumerate(requests):
        is_event = '"event_name"' in request
        if runs and runs[-1][0] == is_event:
            runs[-1][1].append(position)
        else:
            runs.append((is_event, [position]))
    return runs


class PirschTarget:
    """Batch hits into one Pirsch domain; read-backs through its statistics, by the batch's tag."""

    vendor = VENDOR

    def __init__(
        self,
        base_url: str,
        domain_id: str,
        reader: PirschClient,
        *,
        hostname: str,
        max_age_days: int,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        connections: int = 4,
    ) -> None:
        self.url = base_url.rstrip("/") + HIT_PATH
        self.base_url = base_url.rstrip("/")
        self.domain_id = domain_id
        self.reader = reader
        self.hostname = hostname
        self.max_age_days = max_age_days
        self.clock = clock
        self.retry = retry or DEFAULT_RETRY
        self.stats = RequestStats()
        pool = max(4, connections)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            headers={"User-Agent": "clickhaul", "Content-Type": "application/json"},
            transport=httpx.HTTPTransport(
                verify=base_url.startswith("https:"),
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            ),
        )

    def close(self) -> None:
        self._http.close()

    def prepare(self, raw: Mapping[str, Any], hit_id: str, now: float) -> Prepared:
        hit = hit_of(raw, self.hostname, now, self.max_age_days)
        day = hit["time"][:10] if "time" in hit else ""
        return Prepared(encode_request(hit), f"{hit['ip']}|{hit['user_agent']}", self.domain_id, day)

    def locate(self, request: str) -> tuple[str, str]:
        return self.domain_id, str(orjson.loads(request).get("time") or "")[:10]

    # -- sending ------------------------------------------------------------------------------------------
    def send(
        self, requests: Sequence[str], is_first: Callable[[], bool], on_sent: Callable[[], None] | None
    ) -> BulkOutcome:
        """Each run of one kind in one request, in order; every hit tagged with the batch's tag."""
        tag = batch_tag(requests)
        invalid: dict[int, str] = {}
        for number, (is_event, positions) in enumerate(runs_of(requests)):
            body = b"[" + b",".join(self._tagged(requests[i], tag) for i in positions) + b"]"
            state, reason, retry_after = self._post(EVENT_PATH if is_event else HIT_PATH, body)
            if number == 0 and on_sent is not None:
                on_sent()
            if state == "stored":
                continue
            if state == "refused" and number == 0:
                return BulkOutcome("refused", reason=reason, retry_after=retry_after)
            if state == "invalid":  # the request was refused whole: nothing of it is stored
                invalid.update((i, f"Pirsch refused the request holding this hit: {reason}") for i in positions)
                continue
            return BulkOutcome("unknown", answered=state != "lost", reason=reason)
        return BulkOutcome(
            "stored",
            tracked=len(requests) - len(invalid),
            invalid=len(invalid),
            invalid_indices=sorted(invalid),
            reasons=invalid,
        )

    @staticmethod
    def _tagged(request: str, tag: str) -> bytes:
        hit = orjson.loads(request)
        hit["tags"] = {**(hit.get("tags") or {}), BATCH_TAG: tag}
        return orjson.dumps(hit)

    def _post(self, path: str, body: bytes) -> tuple[str, str, float | None]:
        self.stats.add(requests=1)
        current_monitor().count(requests=1)
        try:
            response = self._http.post(path, content=body, headers=dict(self.reader.auth.headers()))
        except NOT_SENT_ERRORS as error:
            return "refused", f"{type(error).__name__}: {redact(str(error))}", None
        except httpx.TransportError as error:
            return "lost", f"no answer: {type(error).__name__}", None
        status = response.status_code
        if 200 <= status < 300:
            return "stored", "", None
        if status == 401:
            self.reader.auth.invalidate()  # the token expired: the next attempt fetches a new one
            return "refused", "HTTP 401", None
        if status == 429:
            return "refused", "HTTP 429", parse_retry_after(response.headers.get("Retry-After"), self.clock, self.retry)
        if 400 <= status < 500:
            return "invalid", f"HTTP {status}: {error_message(response)}", None
        return "unknown", f"HTTP {status}: {redact(response.text)[:200]}", None

    # -- reading back -------------------------------------------------------------------------------------
    def check(self, requests: Sequence[str], sent_on: dt.date) -> Verdict:
        """How many page views and events Pirsch holds with this batch's tag: the runs stored, in order."""
        tag = batch_tag(requests)
        days = [str(orjson.loads(r).get("time") or "")[:10] or sent_on.isoformat() for r in requests]
        params = {"id": self.domain_id, "from": min(days), "to": max(days), "tz": "UTC", f"tag_{BATCH_TAG}": tag}
        runs = runs_of(requests)
        views = events = 0
        queries = 0
        if any(not is_event for is_event, _ in runs):
            total = self.reader.get("/statistics/total", params) or {}
            views, queries = int(total.get("views") or 0), queries + 1
        if any(is_event for is_event, _ in runs):
            rows = self.reader.get("/statistics/events", params) or []
            events, queries = sum(int(row.get("views") or row.get("count") or 0) for row in rows), queries + 1
        stored: list[int] = []
        missing: list[int] = []
        for is_event, positions in runs:
            held = events if is_event else views
            if held >= len(positions):
                stored += positions
                if is_event:
                    events -= len(positions)
                else:
                    views -= len(positions)
            else:
                missing += positions
        return Verdict(sorted(stored), sorted(missing), queries)
