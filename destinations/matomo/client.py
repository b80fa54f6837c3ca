"""Matomo over HTTP: bulk tracking (one attempt at a time, its outcome classified) and the Reporting API.

A bulk POST ends in one of three ways, and only the first two are certain:
- **stored**: HTTP 2xx `{"status": "success", ...}`: Matomo stored the batch and says how many hits were invalid;
- **refused**: nothing can have been stored: the connection was never made, or HTTP 429 or a 4xx without a bulk
  answer (the request was turned away before Matomo read it);
- **unknown**: anything after the request went out: HTTP 5xx (a real Matomo answers a deadlocked bulk with 500
  `status: error` after storing none, all, or the tail of it), `status: error` with any status, an answer cut off
  or unreadable, a timeout or a connection lost while waiting. Only reading Matomo back tells what it holds
  (`reconcile`).

The Reporting API (`index.php` beside `matomo.php`) is called with every parameter, token_auth included, in the POST
body, never in the URL: segments name visitors and users.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from destinations.common.push import BulkOutcome
from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.errors import AuthError, ConfigError, VendorError
from sources.common.http import HttpClient, RetryPolicy, parse_retry_after
from sources.common.monitor import current_monitor
from sources.common.redact import redact, register_secret
from sources.matomo.client import reporting_error_message

from .settings import (
    DEFAULT_TIMEOUT_SECONDS,
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    VENDOR,
    VISITS_PROBE_LIMIT,
)

log = logging.getLogger("clickhaul.matomo")

DEFAULT_RETRY = RetryPolicy(
    max_attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY, max_elapsed_seconds=600.0
)

# Errors before anything was sent: the batch cannot have been stored.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class BulkTrackingDisabled(ConfigError):
    """HTTP 400 to the very first bulk request."""


class ReadBackError(VendorError):
    """Matomo could not be read back (Live API refused or disabled): an unknown batch stays unknown."""


def split_tracking_url(tracking_url: str) -> tuple[str, str]:
    parts = urlsplit(tracking_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return origin, path


def _then(body: bytes, call: Callable[[], None]) -> Iterator[bytes]:
    """The body as a stream that calls `call` once it has been written."""
    yield body
    call()


class MatomoTracker:
    def __init__(
        self,
        tracking_url: str,
        token_auth: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        connections: int = 4,
        reporting_url: str | None = None,
    ) -> None:
        register_secret(token_auth)
        self.token_auth = token_auth or None
        self.clock = clock
        self.retry = retry or DEFAULT_RETRY
        origin, self.path = split_tracking_url(tracking_url)
        pool = max(4, connections)
        transport = httpx.HTTPTransport(
            # Loading the CA bundle costs ~25 ms of CPU: only when the tracker is reached over HTTPS.
            verify=origin.startswith("https:"),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # a bulk body must not wait for an ACK
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=30.0),
        )
        # The Reporting API: index.php beside the tracker, unless configured elsewhere (a tracking-only host).
        reporting_origin, self.reporting_path = split_tracking_url(
            reporting_url or f"{origin}{self.path.split('?')[0].rsplit('/', 1)[0]}/index.php"
        )
        self.reporting_url = reporting_origin + self.reporting_path
        # Reads of the Reporting API may be repeated freely: they go through the common layer and its retries.
        self.http = HttpClient(
            VENDOR,
            reporting_origin,
            retry=self.retry,
            clock=clock,
            timeout=timeout,
            error_message=reporting_error_message,
            transport=transport,
        )
        # Bulk posts are never repeated blindly: one attempt each, on a client of their own.
        self._bulk_http = httpx.Client(
            base_url=origin,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            headers={"User-Agent": "clickhaul", "Content-Type": "application/json"},
            transport=transport,
        )
        # The body around the requests, encoded once: `{"requests":[` ... `],"token_auth":"..."}`.
        tail = b"]" + (b',"token_auth":' + orjson.dumps(self.token_auth) if self.token_auth else b"") + b"}"
        self._body_head, self._body_tail = b'{"requests":[', tail

    @property
    def stats(self) -> Any:
        return self.http.stats

    # -- Reporting API ----------------------------------------------------------------------------------
    def reporting(self, method: str, **params: Any) -> Any:
        """One Reporting API call, all in the POST body. Matomo answers most errors with HTTP 200."""
        body = {"module": "API", "format": "json", "method": method, **params}
        body["token_auth"] = self.token_auth or "anonymous"
        try:
            answer = self.http.post(self.reporting_path, data=body)
        except VendorError as error:
            if error.status in (404, 405):  # nothing there answers the API: a tracking-only host, or a wrong path
                raise ConfigError(
                    f"matomo: the Reporting API is not at {self.reporting_url} (HTTP {error.status} to {method}): "
                    "clickhaul reads Matomo back through it (token check, read-backs, archive invalidation). Set "
                    "destination.matomo.reporting_url (DESTINATION__MATOMO__REPORTING_URL) to the index.php that "
                    "answers module=API, e.g. https://matomo.example.com/index.php"
                ) from None
            raise
        except AuthError as error:
            raise AuthError(
                f"matomo refused destination.matomo.token_auth for {method}: {redact(str(error))} — set a token with "
                "write access to the sites (DESTINATION__MATOMO__TOKEN_AUTH)"
            ) from None
        if isinstance(answer, dict) and answer.get("result") == "error":
            raise VendorError(VENDOR, str(answer.get("message")), name=method)
        return answer

    def validate_token(self) -> str:
        """Once before the first batch: a wrong token would otherwise show only as silently dropped back-dated
        hits (Matomo answers them `tracked: 0, invalid: 1`)."""
        try:
            version = self.reporting("API.getMatomoVersion")
        except VendorError as error:
            raise AuthError(
                f"matomo refused destination.matomo.token_auth: {error.vendor_message} — set a token with write "
                "access to the sites (DESTINATION__MATOMO__TOKEN_AUTH)"
            ) from None
        return str(version.get("value") if isinstance(version, dict) else version)

    def invalidate_archives(self, site: str, dates: Sequence[str]) -> None:
        """Back-dated hits show in reports only after the archives of their days are invalidated."""
        self.reporting("CoreAdminHome.invalidateArchivedReports", idSites=site, dates=",".join(sorted(dates)))

    def visits(self, site: str, first: dt.date, last: dt.date, segment: str | None) -> list[dict[str, Any]]:
        """Every visit of `site` whose last action falls in [first, last] (the site's days), with its actions;
        `segment` narrows it to some visitors. One request: offsets would shift under concurrent tracking."""
        params: dict[str, Any] = {
            "idSite": site,
            "period": "range",
            "date": f"{first.isoformat()},{last.isoformat()}",
            "filter_limit": -1,
        }
        if segment:
            params["segment"] = segment
        try:
            answer = self.reporting("Live.getLastVisitsDetails", **params)
        except VendorError as error:
            raise ReadBackError(
                VENDOR,
                f"could not read site {site} back with Live.getLastVisitsDetails ({error.vendor_message}): a batch "
                "whose answer was lost cannot be checked; the visitor log must be enabled and the token needs view "
                "access",
                name="Live.getLastVisitsDetails",
            ) from None
        if not isinstance(answer, list):
            raise ReadBackError(VENDOR, f"Live.getLastVisitsDetails answered {str(answer)[:200]}")
        return [visit for visit in answer if isinstance(visit, dict)]

    def visits_held(self, site: str, first: dt.date, last: dt.date) -> tuple[int, int]:
        """(visits, actions) Matomo's raw log holds for `site` on those days, counting at most VISITS_PROBE_LIMIT
        visits: a probe before a push without ledger, bounded whatever the site's history."""
        try:
            answer = self.reporting(
                "Live.getLastVisitsDetails",
                idSite=site,
                period="range",
                date=f"{first.isoformat()},{last.isoformat()}",
                filter_limit=VISITS_PROBE_LIMIT,
                doNotFetchActions=1,
            )
        except VendorError as error:
            raise ReadBackError(
                VENDOR,
                f"could not read site {site} with Live.getLastVisitsDetails ({error.vendor_message}) to check for an "
                "earlier push: the token needs view access and the visitor log must be enabled (or pass --force)",
                name="Live.getLastVisitsDetails",
            ) from None
        visits = [visit for visit in answer or [] if isinstance(visit, dict)] if isinstance(answer, list) else []
        return len(visits), sum(int(visit.get("actions") or 0) for visit in visits)

    # -- bulk tracking ----------------------------------------------------------------------------------
    def bulk_body(self, requests: Sequence[str]) -> bytes:
        """`requests` are JSON objects already (`sender.encode_request`): joined, not encoded again."""
        return self._body_head + ",".join(requests).encode() + self._body_tail

    def send(
        self,
        requests: Sequence[str],
        is_first: Callable[[], bool] = lambda: False,
        on_sent: Callable[[], None] | None = None,
    ) -> BulkOutcome:
        """One POST of one batch; what became of it. Raises only for what no repeat can fix (token, bulk off).
        `on_sent` is called once the body is handed to the socket, while the answer is still to come."""
        self.http.stats.add(requests=1)
        current_monitor().count(requests=1)
        body = self.bulk_body(requests)
        try:
            if on_sent is None:
                response = self._bulk_http.post(self.path, content=body)
            else:
                response = self._bulk_http.post(
                    self.path, content=_then(body, on_sent), headers={"Content-Length": str(len(body))}
                )
        except NOT_SENT_ERRORS as error:
            return BulkOutcome("refused", reason=f"{type(error).__name__}: {redact(str(error))}")
        except httpx.TransportError as error:  # written (or partly): a timeout or a connection lost after it
            return BulkOutcome("unknown", answered=False, reason=f"no answer: {type(error).__name__}")
        return self.read_answer(response, is_first)

    def read_answer(self, response: httpx.Response, is_first: Callable[[], bool]) -> BulkOutcome:
        status = response.status_code
        try:
            payload: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and payload.get("status") == "success" and status < 300:
            indices = payload.get("invalid_indices")
            return BulkOutcome(
                "stored",
                tracked=int(payload.get("tracked") or 0),
                invalid=int(payload.get("invalid") or 0),
                invalid_indices=[int(i) for i in indices] if isinstance(indices, list) else None,
            )
        if status in (401, 403):
            raise AuthError(
                f"matomo refused the token_auth for bulk tracking (HTTP {status}) — set a token with write access "
                "to the sites (DESTINATION__MATOMO__TOKEN_AUTH)"
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock, self.retry)
            return BulkOutcome("refused", retry_after=retry_after, reason="HTTP 429")
        if 400 <= status < 500 and not isinstance(payload, dict):
            if status == 400 and is_first():
                raise BulkTrackingDisabled(
                    f"matomo answered HTTP 400 to the first bulk request: bulk tracking may be disabled on this "
                    f"Matomo, or destination.matomo.tracking_url is not its matomo.php "
                    f"(server said: {redact(response.text)[:200]})"
                )
            return BulkOutcome("refused", reason=f"HTTP {status}: {redact(response.text)[:200]}")
        # 5xx, status:error with any status, a 2xx cut short: Matomo did something, and only it knows what.
        tracked = payload.get("tracked") if isinstance(payload, dict) else None
        return BulkOutcome("unknown", reason=f"HTTP {status} (tracked {tracked})")

    def close(self) -> None:
        self._bulk_http.close()
        self.http.close()
