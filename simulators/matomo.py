"""A Matomo tracking endpoint (`/matomo.php`, `/piwik.php`) on 127.0.0.1 that validates and stores hits the way
Matomo 5 does (API-NOTES.md):

- single requests (GET query or POST form) answer a 1x1 GIF, or 204 with `send_image=0`, or 400 when invalid;
- bulk requests (POST JSON `{"requests": [...], "token_auth": ...}`, each request a query string or an object)
  answer `{"status": "success", "tracked": N, "invalid": M}`, with `invalid_indices` only for a super-user token;
  `send_image=0` in a bulk makes the answer 204 with no counts;
- invalid: unknown `idsite`; `cip` or a `cdt` older than 24 h without a token that may write (a back-dated hit
  without token answers `tracked: 0, invalid: 1`); a missing `url` or a malformed `_id`/`cid` unless a valid token
  is given (Matomo stores those with a token); a non-numeric `e_v`/`revenue`. A `cdt` in the future or older
  than 20 years is silently replaced by now. Requests without `rec=1` are ignored (neither tracked nor invalid);
- bulks are transactional: a failure mid-batch (`transaction_failure_rate`, or a deadlock) answers 500
  `{"status": "error", "tracked": k, ...}` with k > 0 and stores nothing;
- queued mode (the QueuedTracking plugin): requests without `queuedtracking=0` are queued and answered as all
  tracked, then validated when the queue is processed;
- faults: the harness `Faults` (5xx, dropped connections before or after storing, truncated answers, 429) plus
  `hang_rate` (no answer within `hang_seconds`, nothing stored) and `hold_after_batches` (tests: park requests
  after N stored batches so a client can be killed at a known point);
- `hit_cost_seconds` and `cores` make it about as slow as a real server, for benchmarks.

Every stored hit is kept (`hits`) so tests can compare with what was sent.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from simulators.harness import Faults, Request, Response, SimulatorServer, json_response
from sources.common.clock import wall_time

DEMO_SUPERUSER_TOKEN = "c0ffee5a1d2b3c4d5e6f708192a3b4c5"
DEMO_WRITE_TOKEN = "d15ea5e0a1b2c3d4e5f60718293a4b5c"
DEMO_VIEW_TOKEN = "0b5e55ed0a1b2c3d4e5f60718293a4b5"
TRACKER_PATH = r"/(?:[A-Za-z0-9_.\-]+/)*(?:matomo|piwik)\.php"
REPORTING_PATH = r"/(?:[A-Za-z0-9_.\-]+/)*index\.php"
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
TOKENLESS_CDT_SECONDS = 24 * 3600
MAX_AGE_SECONDS = 20 * 365 * 86400
_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")


@dataclass(frozen=True)
class StoredHit:
    sequence: int  # order in which the server stored it
    batch: int  # sequence number of the bulk (or single) request that stored it
    params: dict[str, str]
    timestamp: float  # the time Matomo recorded: cdt, or now when cdt was absent, future or too old

    @property
    def cdt(self) -> str:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


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
        hang_rate: float = 0.0,
        hang_seconds: float = 2.0,
        hold_after_batches: int | None = None,
        hit_cost_seconds: float = 0.0,
        cores: int = 2,
        clock: Callable[[], float] = wall_time,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        super().__init__(faults, port=port)
        self.sites = set(sites)
        # token -> role: "superuser" (every site, sees invalid_indices), "write" (may back-date), "view" (may not)
        self.tokens = (
            tokens
            if tokens is not None
            else {DEMO_SUPERUSER_TOKEN: "superuser", DEMO_WRITE_TOKEN: "write", DEMO_VIEW_TOKEN: "view"}
        )
        self.bulk_enabled = bulk_enabled
        self.queued = queued
        self.transaction_failure_rate = transaction_failure_rate
        self.hang_rate = hang_rate
        self.hang_seconds = hang_seconds
        self.hold_after_batches = hold_after_batches
        # To benchmark against something like a real server: each stored hit costs this much time on one of
        # `cores` (a real Matomo on 2 cores stores ~340 hits/s from one sender, ~700-760 from 2-4).
        self.hit_cost_seconds = hit_cost_seconds
        self._cores = threading.BoundedSemaphore(max(1, cores))
        self.clock = clock
        self.hits: list[StoredHit] = []
        self.queue: list[tuple[dict[str, str], str | None]] = []
        self.batches_stored = 0
        self.failed_transactions = 0
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
            timestamp = parsed
        return "stored", timestamp

    # -- endpoints --------------------------------------------------------------------------------------
    def reporting(self, request: Request) -> Response:
        """The two Reporting API methods clickhaul calls; like Matomo, errors answer HTTP 200 with result=error."""
        params = {**request.query, **(request.form() if request.method == "POST" else {})}
        role = self.role(params.get("token_auth"))
        method = params.get("method", "")
        if params.get("module") != "API":
            return json_response({"result": "error", "message": "module must be API"})
        if method == "API.getMatomoVersion":
            if role is None:
                return json_response(
                    {
                        "result": "error",
                        "message": "You can't access this resource as it requires "
                        "a 'view' access for at least one website.",
                    }
                )
            return json_response({"value": "5.1.0"})
        if method == "CoreAdminHome.invalidateArchivedReports":
            if role not in ("superuser", "write"):
                return json_response(
                    {"result": "error", "message": "You can't access this resource as it requires an 'admin' access."}
                )
            sites, dates = params.get("idSites", ""), [d for d in params.get("dates", "").split(",") if d]
            if not sites or not dates:
                return json_response(
                    {"result": "error", "message": "Please specify a value for 'idSites' and 'dates'."}
                )
            with self._store_lock:
                self.invalidations.append((sites, dates))
            return json_response(
                {
                    "result": "success",
                    "message": f"Success. The following dates were invalidated successfully: {', '.join(dates)}",
                }
            )
        return json_response(
            {
                "result": "error",
                "message": f"The method '{method}' does not exist or is not available in the module 'API'.",
            }
        )

    def track(self, request: Request) -> Response:
        body = request.body.strip()
        if request.method == "POST" and body.startswith(b"{"):
            return self.bulk(request)
        params = dict(request.query)
        if request.method == "POST" and body:
            params.update(request.form())
        return self.single(params)

    def single(self, params: dict[str, str]) -> Response:
        now = self.clock()
        outcome, timestamp = self.evaluate(params, None, now)
        if outcome == "invalid":
            return Response(400, GIF, content_type="image/gif")
        if outcome == "stored":
            with self._store_lock:
                self._batch_sequence += 1
                self._store([(params, timestamp)], self._batch_sequence)
        if params.get("send_image") == "0":
            return Response(204)
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
            return json_response({"status": "error", "tracked": 0, "invalid": 0, "message": "invalid bulk body"}, 400)
        token = payload.get("token_auth") or request.query.get("token_auth")
        if self._hold():
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
            return self._bulk_answer(requests, {"status": "success", "tracked": len(requests), "invalid": 0})
        outcomes = [self.evaluate(params, token, now) for params in requests]
        if self.hit_cost_seconds:
            with self._cores:
                time.sleep(self.hit_cost_seconds * len(requests))
        invalid_indices = [i for i, (outcome, _) in enumerate(outcomes) if outcome == "invalid"]
        if requests and self._draw(self.transaction_failure_rate):
            with self._fault_lock:
                failed_at = self._fault_rng.randrange(len(requests))
            before = outcomes[:failed_at] or outcomes[:1]
            self.failed_transactions += 1
            return json_response(
                {
                    "status": "error",
                    "tracked": max(1, sum(1 for outcome, _ in before if outcome == "stored")),
                    "invalid": sum(1 for outcome, _ in before if outcome == "invalid"),
                    "message": "Deadlock found when trying to get lock; try restarting transaction",
                },
                500,
            )
        stored = [
            (params, timestamp) for params, (outcome, timestamp) in zip(requests, outcomes, strict=True)
            if outcome == "stored"
        ]  # fmt: skip
        with self._store_lock:
            self._batch_sequence += 1
            self._store(stored, self._batch_sequence)
            self.batches_stored += 1
        answer: dict[str, Any] = {"status": "success", "tracked": len(stored), "invalid": len(invalid_indices)}
        if self.role(token) == "superuser":
            answer["invalid_indices"] = invalid_indices
        return self._bulk_answer(requests, answer)

    def _bulk_answer(self, requests: list[dict[str, str]], answer: dict[str, Any]) -> Response:
        if any(params.get("send_image") == "0" for params in requests):
            return Response(204)  # the counts are lost: clients must not send send_image=0 in bulk
        return json_response(answer)

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
            self.hits.append(StoredHit(self._sequence, batch, params, timestamp))

    def _hold(self) -> bool:
        limit = self.hold_after_batches
        if limit is None or self.batches_stored < limit:
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
