"""Matomo bulk tracking over the common HTTP layer: one POST per batch with the token in the JSON body.

What counts as stored: only an answer `{"status": "success", ...}`. `status: error` (HTTP 200, 400 or 500) means
the transactional bulk was rolled back even when `tracked` is non-zero, so the batch is retried whole; 5xx and a
connection lost before any answer are retried by `HttpClient`; other 4xx a few times here; a 400 to the first
batch of a run means bulk tracking is probably disabled, and the run stops.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.errors import AuthError, ConfigError, TransientError, VendorError
from sources.common.http import HttpClient, RetryPolicy, default_error_message
from sources.common.redact import redact, register_secret

from .settings import (
    CLIENT_ERROR_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    VENDOR,
)

log = logging.getLogger("clickhaul.matomo")

DEFAULT_RETRY = RetryPolicy(
    max_attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY, max_elapsed_seconds=600.0
)

# Errors after the request went out and before an answer came: the server may have stored the batch.
AMBIGUOUS_ERRORS = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


class BulkTrackingDisabled(ConfigError):
    """HTTP 400 to the very first bulk request."""


@dataclass(frozen=True)
class BulkResult:
    tracked: int
    invalid: int
    invalid_indices: list[int] | None
    lost_answers: int  # attempts whose answer was lost before this success


class AnswerTracking(httpx.HTTPTransport):
    """Counts, per thread, requests that were sent but never answered (timeouts, dropped connections)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except AMBIGUOUS_ERRORS:
            self._local.lost = getattr(self._local, "lost", 0) + 1
            raise

    def note_lost(self) -> None:
        self._local.lost = getattr(self._local, "lost", 0) + 1

    def take_lost(self) -> int:
        lost = getattr(self._local, "lost", 0)
        self._local.lost = 0
        return lost


def check_bulk_answer(payload: Any) -> dict[str, Any]:
    """A 2xx answer stores the batch only with `status: success`."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        tracked = payload.get("tracked") if isinstance(payload, dict) else None
        raise TransientError(
            f"matomo answered {str(payload)[:200]} (tracked {tracked}): a failed bulk stores nothing; "
            "retrying the whole batch"
        )
    return payload


def split_tracking_url(tracking_url: str) -> tuple[str, str]:
    parts = urlsplit(tracking_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return origin, path


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
    ) -> None:
        register_secret(token_auth)
        self.token_auth = token_auth or None
        self.clock = clock
        origin, self.path = split_tracking_url(tracking_url)
        pool = max(4, connections)
        self.transport = AnswerTracking(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # a bulk body must not wait for an ACK
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=30.0),
        )
        self.http = HttpClient(
            VENDOR,
            origin,
            retry=retry or DEFAULT_RETRY,
            clock=clock,
            timeout=timeout,
            error_message=default_error_message,
            transport=self.transport,
        )

    @property
    def stats(self) -> Any:
        return self.http.stats

    @property
    def reporting_path(self) -> str:
        """The Reporting API beside the tracker: .../matomo.php -> .../index.php."""
        return self.path.split("?")[0].rsplit("/", 1)[0] + "/index.php"

    def reporting(self, method: str, **params: str) -> Any:
        """One Reporting API call; token_auth in the POST body. Matomo answers errors with HTTP 200."""
        answer = self.http.post(
            self.reporting_path,
            params={"module": "API", "method": method, "format": "json", **params},
            data={"token_auth": self.token_auth or "anonymous"},
        )
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

    def close(self) -> None:
        self.http.close()

    def _read_answer(self, text: str) -> dict[str, Any]:
        try:
            payload = json.loads(text)
        except ValueError:
            # A 2xx whose body is cut short or empty: Matomo answered, so it may well have stored the batch.
            self.transport.note_lost()
            raise TransientError(f"matomo: unreadable answer {text[:100]!r}; sending the batch again") from None
        return check_bulk_answer(payload)

    def bulk(self, requests: Sequence[str], is_first: Callable[[], bool] = lambda: False) -> BulkResult:
        """Send one batch of query strings; return Matomo's counts once it has stored them."""
        body: dict[str, Any] = {"requests": list(requests)}
        if self.token_auth:
            body["token_auth"] = self.token_auth  # in the body, never in the URL
        self.transport.take_lost()
        client_errors = 0
        while True:
            try:
                answer = self.http.post(self.path, json_body=body, parse="text", check=self._read_answer)
                break
            except AuthError as error:
                raise AuthError(f"matomo refused the token_auth: {error}") from None
            except VendorError as error:
                if error.status == 400 and is_first():
                    raise BulkTrackingDisabled(
                        f"matomo answered HTTP 400 to the first bulk request: bulk tracking may be disabled on "
                        f"this Matomo, or destination.matomo.tracking_url is not its matomo.php "
                        f"(server said: {error.vendor_message[:200]})"
                    ) from None
                client_errors += 1
                if client_errors >= CLIENT_ERROR_ATTEMPTS:
                    raise
                delay = random.uniform(RETRY_BASE_DELAY / 2, RETRY_BASE_DELAY * 2**client_errors)
                self.http.stats.add(retries=1)
                log.info("matomo: batch refused (%s); retrying in %.1f s", redact(str(error)), delay)
                self.clock.sleep(delay)
        indices = answer.get("invalid_indices")
        return BulkResult(
            tracked=int(answer.get("tracked") or 0),
            invalid=int(answer.get("invalid") or 0),
            invalid_indices=[int(i) for i in indices] if isinstance(indices, list) else None,
            lost_answers=self.transport.take_lost(),
        )
