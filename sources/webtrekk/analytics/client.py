"""The Mapp Analytics client: OAuth2 client credentials (Basic auth) give a bearer token; a calculation is queued,
polled, fetched and, when a run ends early, cancelled.

POST /analysis-query answers 200 with a `resultUrl` (a cached result) or 201 with a `statusUrl` to poll through
INITIATED/RUNNING to SUCCESS; /report-query answers one state per report element. Both are polled by `poll_until`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.counters import Counters
from sources.common.errors import AuthError, ClickhaulError, VendorError
from sources.common.http import HttpClient, RetryPolicy, TokenAuth
from sources.common.redact import register_secret

from .settings import (
    DEFAULT_POLL_INITIAL_SECONDS,
    DEFAULT_POLL_MAX_SECONDS,
    DEFAULT_POLL_TIMEOUT_SECONDS,
    DEFAULT_TOKEN_LIFETIME_SECONDS,
    FAILED_STATES,
    INVALID_TOKEN,
    LABEL,
    PENDING_STATES,
    POLL_FACTOR,
    RESULT_TYPE,
    SUCCESS_STATE,
)

log = logging.getLogger("clickhaul.webtrekk.analytics")
T = TypeVar("T")


class AnalyticsError(ClickhaulError):
    """A calculation failed, was aborted or was refused; the message names the query, window and objects."""


class Interrupted(ClickhaulError):
    """The run was stopped while calculations were running; they were cancelled on the server."""


@dataclass(frozen=True)
class PollPolicy:
    initial_seconds: float = DEFAULT_POLL_INITIAL_SECONDS
    max_seconds: float = DEFAULT_POLL_MAX_SECONDS
    timeout_seconds: float = DEFAULT_POLL_TIMEOUT_SECONDS


def invalid_token(response: httpx.Response) -> bool:
    """The API's answer to an expired token is a 403 `INVALID_TOKEN`, not a 401: fetch a new token once."""
    if response.status_code != 403:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and body.get("statusCode") == INVALID_TOKEN


def problem_message(response: httpx.Response) -> str:
    """The API's Problem body as one line: title, detail, and each error with the objects it names."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, Mapping):
        return json.dumps(body)[:300]
    code = body.get("statusCode")
    parts = [str(part) for part in (code, body.get("title"), body.get("detail")) if part]
    for error in body.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        parameters = error.get("parameters") or {}
        objects = [
            str(name)
            for group in ("names", "aliases", "arrangeTypes")
            for name in (parameters.get(group) or [] if isinstance(parameters, Mapping) else [])
        ]
        parts.append(f"{error.get('name')}" + (f" ({', '.join(dict.fromkeys(objects))})" if objects else ""))
    return ": ".join(parts) or json.dumps(body)[:300]


@dataclass
class AnalyticsStats(Counters):
    calculations: int = 0  # queued (201) calculations started by this process
    cached: int = 0  # answered at once (200)
    polls: int = 0
    cancelled: int = 0


class Calculations:
    """The calculations one resource run has started; `cancel_all` DELETEs those still running and stops pollers."""

    def __init__(self, client: AnalyticsClient) -> None:
        self.client = client
        self.stopped = threading.Event()
        self._running: dict[str, str] = {}  # correlationId -> statusUrl
        self._lock = threading.Lock()

    def add(self, correlation_id: str, status_url: str) -> None:
        with self._lock:
            self._running[correlation_id] = status_url

    def done(self, correlation_id: str) -> None:
        with self._lock:
            self._running.pop(correlation_id, None)

    def cancel_all(self, reason: str) -> int:
        self.stopped.set()
        with self._lock:
            running = dict(self._running)
            self._running.clear()
        for correlation_id, status_url in running.items():
            self.client.cancel(status_url, correlation_id)
        if running:
            log.warning("%s: cancelled %d running calculation(s) (%s)", LABEL, len(running), reason)
        return len(running)


class AnalyticsClient:
    """One token and one HTTP client per account; calculations queued, polled, fetched and cancelled."""

    def __init__(
        self,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float = 120.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        register_secret(client_secret)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        register_secret(basic)
        self.client_id = client_id
        self.scope = scope
        self.poll = poll or PollPolicy()
        self.clock = clock
        self.stats = AnalyticsStats()
        self._token_url = token_url
        self._basic = f"Basic {basic}"
        self._tokens = HttpClient(f"{LABEL} token", token_url, timeout=timeout, clock=clock)
        self.auth = TokenAuth(self._fetch_token, clock=clock)
        self.http = HttpClient(
            LABEL,
            base_url + "/",
            auth=self.auth,
            clock=clock,
            timeout=timeout,
            error_message=problem_message,
            token_expired=invalid_token,
        )

    def close(self) -> None:
        self.http.close()
        self._tokens.close()

    def _fetch_token(self) -> tuple[str, float | None]:
        # Documented form: Basic client_id:client_secret, grant_type (and the old endpoint's scope) as query
        # parameters. The secret travels only in the Authorization header.
        params = {"grant_type": "client_credentials"}
        if self.scope:
            params["scope"] = self.scope
        try:
            answer = self._tokens.post(
                self._token_url, params=params, headers={"Authorization": self._basic}, authenticate=False
            )
        except (AuthError, VendorError) as error:
            hint = (
                "; the token endpoint may reject `scope`: leave analytics_scope empty"
                if self.scope and "scope" in str(error).lower()
                else ""
            )
            raise AuthError(
                f"{LABEL}: the token endpoint {self._token_url} refused client id {self.client_id!r}: {error}. "
                "Check analytics_client_id/analytics_client_secret (Mapp Cloud > API Client IDs; the Analytics API "
                f"must be enabled for the account){hint}"
            ) from None
        token = answer.get("access_token") if isinstance(answer, Mapping) else None
        if not token:
            raise AuthError(f"{LABEL}: the token endpoint answered without access_token")
        register_secret(str(token))
        lifetime = answer.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS
        return str(token), self.clock.time() + float(lifetime)

    # -- calculations ---------------------------------------------------------------------------------------
    def run_query(self, label: str, query_object: Mapping[str, Any], calculations: Calculations) -> dict[str, Any]:
        """Create the calculation, wait for it (a 200 is a cached result, used at once) and return the result."""
        try:
            answer = self.http.post(
                "analysis-query", json_body={"resultType": RESULT_TYPE, "queryObject": query_object}
            )
        except VendorError as error:
            raise AnalyticsError(f"{label}: the API refused the query: {error.vendor_message}") from None
        if answer.get("resultUrl"):
            self.stats.add(cached=1)
            return self._result(label, answer["resultUrl"])
        correlation_id, status_url = answer.get("correlationId"), answer.get("statusUrl")
        if not correlation_id or not status_url:
            raise AnalyticsError(f"{label}: the API answered neither resultUrl nor statusUrl: {answer}")
        self.stats.add(calculations=1)
        calculations.add(correlation_id, status_url)
        last = {"status": "INITIATED"}

        def finished() -> dict[str, Any] | None:
            try:
                state = self.http.get(status_url)
            except VendorError as error:
                raise AnalyticsError(f"{label}: calculation {correlation_id}: {error.vendor_message}") from None
            self.stats.add(polls=1)
            status = last["status"] = state.get("status")
            if status == SUCCESS_STATE and state.get("resultUrl"):
                return state  # type: ignore[no-any-return]
            if status in FAILED_STATES:
                calculations.done(correlation_id)  # over on the server: nothing to cancel
                summary = problem_summary(state)
                raise AnalyticsError(
                    f"{label}: calculation {correlation_id} ended {status} on the server"
                    + (f": {summary}" if summary else "")
                )
            if status not in PENDING_STATES and status != SUCCESS_STATE:
                raise AnalyticsError(f"{label}: calculation {correlation_id} has an unknown status {status!r}")
            return None

        state = poll_until(
            finished,
            self.poll,
            calculations.stopped,
            self.clock,
            stopped=f"{label}: stopped while calculation {correlation_id} was running",
            late=lambda: (
                f"{label}: calculation {correlation_id} still {last['status']} after "
                f"{self.poll.timeout_seconds:.0f} s (raise analytics_poll_timeout_seconds)"
            ),
        )
        calculations.done(correlation_id)
        return self._result(label, state["resultUrl"])

    def _result(self, label: str, result_url: str) -> dict[str, Any]:
        try:
            result = self.http.get(result_url)
        except VendorError as error:
            raise AnalyticsError(f"{label}: result {result_url}: {error.vendor_message}") from None
        if not isinstance(result, Mapping) or not isinstance(result.get("headers"), list):
            raise AnalyticsError(f"{label}: the result has no headers")
        return dict(result)

    def cancel(self, status_url: str, correlation_id: str) -> None:
        """DELETE the calculation ("cancel if still running"); best effort, the run is ending anyway."""
        try:
            self.http.request(
                "DELETE", status_url, parse="text", retry=RetryPolicy(max_attempts=2, max_elapsed_seconds=10.0)
            )
            self.stats.add(cancelled=1)
        except ClickhaulError as error:
            log.warning("%s: could not cancel calculation %s: %s", LABEL, correlation_id, error)

    def run_report(
        self, label: str, body: Mapping[str, Any], calculations: Calculations
    ) -> list[tuple[str, dict[str, Any]]]:
        """POST /report-query, poll it until every element is done, then fetch each element's result."""
        try:
            answer = self.http.post("report-query", json_body=body)
        except VendorError as error:
            raise AnalyticsError(f"{label}: the API refused the report query: {error.vendor_message}") from None
        report_id = answer.get("reportCorrelationId")
        if not report_id:
            raise AnalyticsError(f"{label}: the report query answered no reportCorrelationId")
        status_url = f"report-query/{report_id}"
        calculations.add(str(report_id), status_url)
        self.stats.add(calculations=len(answer.get("queryStates") or []))

        def finished(answer: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
            states = [s for s in answer.get("queryStates") or [] if isinstance(s, Mapping)]
            failed = [s for s in states if s.get("status") in FAILED_STATES]
            if failed:
                calculations.done(str(report_id))
                names = ", ".join(f"{element_id(s)} {s.get('status')}" for s in failed)
                raise AnalyticsError(f"{label}: report elements ended on the server: {names}")
            return states if states and all(s.get("status") == SUCCESS_STATE for s in states) else None

        def polled() -> list[Mapping[str, Any]] | None:
            answer = self.http.get(status_url)
            self.stats.add(polls=1)
            return finished(answer)

        # The report query's own answer may already be complete: poll only when it is not.
        states = finished(answer) or poll_until(
            polled,
            self.poll,
            calculations.stopped,
            self.clock,
            stopped=f"{label}: stopped while the report was running",
            late=lambda: f"{label}: report still running after {self.poll.timeout_seconds:.0f} s",
        )
        calculations.done(str(report_id))
        return [(element_id(state), self._result(label, state["resultUrl"])) for state in states]

    # -- usage and metadata ---------------------------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        return self.http.get("analysis-usage/current")  # type: ignore[no-any-return]

    def query_objects(self, language: str) -> dict[str, Any]:
        return self.http.get("query-objects", params={"language": language}) or {}

    def segments(self) -> list[dict[str, Any]]:
        return self.http.get("segments") or []

    def dynamic_timefilters(self, language: str) -> list[dict[str, Any]]:
        return self.http.get("dynamic-timefilters", params={"language": language}) or []


def element_id(state: Mapping[str, Any]) -> str:
    details = state.get("details") or {}
    return str(details.get("reportElementId") or state.get("correlationId") or "element")


def problem_summary(state: Mapping[str, Any]) -> str:
    details = state.get("details") or {}
    message = details.get("message") or details.get("error") or state.get("detail") or ""
    return str(message)


def usage_line(usage: Mapping[str, Any]) -> str:
    return (
        f"{LABEL} usage {usage.get('year')}-{int(usage.get('month') or 0):02d}: "
        f"{int(usage.get('calculationsCount') or 0):,} of {int(usage.get('maxCalculationsAllowed') or 0):,} "
        "calculations this month"
    )


def poll_until(
    check: Callable[[], T | None],
    policy: PollPolicy,
    stop: threading.Event,
    clock: Clock,
    *,
    stopped: str,
    late: Callable[[], str],
) -> T:
    """`check()` after pauses growing from `policy.initial_seconds` by POLL_FACTOR up to `policy.max_seconds`,
    until it returns a value (it raises for a calculation that failed). A set `stop` (the run ends early) raises
    Interrupted at once, not after the pause; past `policy.timeout_seconds` the wait ends with `late()`."""
    delay = policy.initial_seconds
    deadline = clock.monotonic() + policy.timeout_seconds
    while True:
        if stop.wait(delay):
            raise Interrupted(stopped)
        found = check()
        if found is not None:
            return found
        if clock.monotonic() >= deadline:
            raise AnalyticsError(late())
        delay = min(delay * POLL_FACTOR, policy.max_seconds)
