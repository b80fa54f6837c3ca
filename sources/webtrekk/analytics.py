"""Mapp Intelligence REST Analytics API: the analyses a Webtrekk customer still gets after the JSON-RPC sunset.

OAuth2 client credentials (Basic auth) give a bearer token; an analysis query is calculated asynchronously:
POST /analysis-query answers 200 with a `resultUrl` (a cached result) or 201 with a `statusUrl` to poll through
INITIATED/RUNNING to SUCCESS. clickhaul puts a `time_range` filter for each window into the user's query object,
keeps the rest, drops total and subtotal rows, types the cells from /query-objects and merges on the dimension
columns plus the window. Calculations still running when a run fails or is interrupted are cancelled (DELETE).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dlt
import httpx
from dlt.common.configuration.inject import with_config
from dlt.extract.hints import make_hints
from dlt.sources import DltResource

from sources.common.arrow import ColumnType, TableSpec
from sources.common.clock import SYSTEM_CLOCK, Clock, today_utc
from sources.common.config import check_base_url, config_list, missing_config
from sources.common.errors import AuthError, ClickhaulError, ConfigError, VendorError
from sources.common.http import HttpClient, RetryPolicy, TokenAuth
from sources.common.incremental import ACCOUNT, DayCursor
from sources.common.lazy import Once, SharedUse
from sources.common.monitor import current_monitor
from sources.common.pool import shared_client
from sources.common.redact import register_secret, register_secrets
from sources.common.windows import WINDOW_UNITS, DateWindow, WindowUnit, check_timezone, split_windows

from .analytics_settings import (
    ANALYTICS_LANGUAGES,
    COLUMN_PERIODS,
    COLUMN_SCOPES,
    CONNECTORS,
    CONTEXTS,
    DEFAULT_ANALYTICS_BASE_URL,
    DEFAULT_ANALYTICS_LANGUAGE,
    DEFAULT_ANALYTICS_TOKEN_URL,
    DEFAULT_ANALYTICS_WINDOW,
    DEFAULT_POLL_INITIAL_SECONDS,
    DEFAULT_POLL_MAX_SECONDS,
    DEFAULT_POLL_TIMEOUT_SECONDS,
    DEFAULT_TOKEN_LIFETIME_SECONDS,
    FAILED_STATES,
    FILTER_PREDICATES,
    INVALID_TOKEN,
    KPI_TYPES,
    MAX_ANALYTICS_CONCURRENCY,
    PENDING_STATES,
    POLL_FACTOR,
    QUERY_KEYS,
    REPORT_KEYS,
    RESULT_TYPE,
    SORT_DIRECTIONS,
    SUCCESS_STATE,
    TABLE_VARIANTS,
    TIME_FILTER_NAMES,
    TIME_FORMAT,
    TIME_RANGE_FILTER,
    TOTAL_MARKER,
)
from .settings import DEFAULT_LOOKBACK_DAYS, VENDOR
from .tables import snake, unique_names

__all__ = [
    "AnalyticsClient",
    "AnalyticsError",
    "AnalyticsSettings",
    "analytics_resources",
    "check_analytics",
    "check_analytics_quota",
    "parse_analytics",
]

log = logging.getLogger("clickhaul.webtrekk.analytics")
LABEL = "webtrekk analytics"
KEY = "sources.webtrekk"
T = TypeVar("T")
R = TypeVar("R")


class AnalyticsError(ClickhaulError):
    """A calculation failed, was aborted or was refused; the message names the query, window and objects."""


class Interrupted(ClickhaulError):
    """The run was stopped while calculations were running; they were cancelled on the server."""


# -- configuration --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollPolicy:
    initial_seconds: float = DEFAULT_POLL_INITIAL_SECONDS
    max_seconds: float = DEFAULT_POLL_MAX_SECONDS
    timeout_seconds: float = DEFAULT_POLL_TIMEOUT_SECONDS


@dataclass(frozen=True)
class AnalyticsQuery:
    name: str
    query_object: dict[str, Any]

    @property
    def table(self) -> str:
        return f"analytics_{self.name}"

    @property
    def kpi(self) -> bool:
        return "columns" not in self.query_object


@dataclass(frozen=True)
class AnalyticsReport:
    name: str
    report_id: Any
    configuration: dict[str, Any]
    element_ids: tuple[Any, ...]

    @property
    def table(self) -> str:
        return f"analytics_report_{self.name}"

    @property
    def calculations(self) -> int:
        """One calculation per analysis element the report asks for."""
        return len(self.element_ids) or max(1, len(self.configuration.get("reportElements") or []))


@dataclass
class AnalyticsSettings:
    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None
    language: str
    queries: list[AnalyticsQuery]
    reports: list[AnalyticsReport]
    window: WindowUnit
    concurrency: int
    poll: PollPolicy
    timeout: float
    first_day: dt.date = field(default_factory=today_utc)
    last_day: dt.date | None = None
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    timezone: str = "UTC"

    def calculations_per_window(self, resources: Sequence[str] | None = None) -> int:
        def selected(table: str) -> bool:
            return resources is None or table in resources

        return sum(1 for q in self.queries if selected(q.table)) + sum(
            r.calculations for r in self.reports if selected(r.table)
        )


def _json_value(value: Any, key: str) -> Any:
    """TOML tables arrive as dicts; environment variables and UI copies arrive as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(f"{key} is not valid JSON: paste the query object as copied from Mapp") from None
    return value


def _positive(value: Any, key: str, kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{key} must be a positive number, not {value!r}")
    return number


def parse_analytics(
    *,
    client_id: str | None,
    client_secret: str | None,
    base_url: str,
    token_url: str,
    scope: str | None,
    language: str,
    queries: Any,
    reports: Any,
    window: str,
    concurrency: Any,
    poll_initial_seconds: Any,
    poll_max_seconds: Any,
    poll_timeout_seconds: Any,
    timeout: float = 120.0,
) -> AnalyticsSettings | None:
    """The Analytics API settings, checked before any request; None when neither credentials nor queries are set."""
    register_secrets([client_secret])
    query_list = parse_queries(queries)
    report_list = parse_reports(reports)
    if not (client_id or client_secret or query_list or report_list):
        return None
    missing = [name for name, value in (("client_id", client_id), ("client_secret", client_secret)) if not value]
    if missing:
        raise missing_config(VENDOR, [f"analytics_{name}" for name in missing])
    check_base_url(base_url, f"{KEY}.analytics_base_url")
    check_base_url(token_url, f"{KEY}.analytics_token_url")
    if language not in ANALYTICS_LANGUAGES:
        raise ConfigError(f"{KEY}.analytics_language {language!r} is not one of {', '.join(ANALYTICS_LANGUAGES)}")
    if window not in WINDOW_UNITS:
        raise ConfigError(f"{KEY}.analytics_window {window!r} is unknown: use one of {', '.join(WINDOW_UNITS)}")
    workers = _positive(concurrency, f"{KEY}.analytics_concurrency", int)
    if workers > MAX_ANALYTICS_CONCURRENCY:
        raise ConfigError(f"{KEY}.analytics_concurrency {workers} is too many: use 1 to {MAX_ANALYTICS_CONCURRENCY}")
    poll = PollPolicy(
        _positive(poll_initial_seconds, f"{KEY}.analytics_poll_initial_seconds"),
        _positive(poll_max_seconds, f"{KEY}.analytics_poll_max_seconds"),
        _positive(poll_timeout_seconds, f"{KEY}.analytics_poll_timeout_seconds"),
    )
    if poll.max_seconds < poll.initial_seconds:
        raise ConfigError(f"{KEY}.analytics_poll_max_seconds must be at least analytics_poll_initial_seconds")
    return AnalyticsSettings(
        base_url=base_url.rstrip("/"),
        token_url=token_url,
        client_id=str(client_id),
        client_secret=str(client_secret),
        scope=scope or None,
        language=language,
        queries=query_list,
        reports=report_list,
        window=window,  # type: ignore[arg-type]
        concurrency=workers,
        poll=poll,
        timeout=timeout,
    )


def _name(value: Any, key: str) -> str:
    import re

    name = str(value or "")
    if not re.match(r"^[a-z][a-z0-9_]{0,50}$", name):
        raise ConfigError(f"{key}: name {name!r} must be lower-case letters, digits and _ (it names the table)")
    return name


def _named_entries(
    value: Any, key: str, allowed: Iterable[str], shape: str, usage: str
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Each entry of an `analytics_*` list (a table, or its JSON text) with its checked table name."""
    for raw in config_list(value, key) or []:
        entry = _json_value(raw, key)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key} entries are tables {shape}")
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)} in {entry.get('name')!r}: use {usage}")
        yield entry, _name(entry.get("name"), key)


def parse_queries(queries: Any) -> list[AnalyticsQuery]:
    """`analytics_queries` entries: {name = "browsers", query = {<queryObject>}} (the query may be JSON text)."""
    key = f"{KEY}.analytics_queries"
    found: list[AnalyticsQuery] = []
    shape = '{name = "...", query = {columns = [...], ...}}'
    for entry, name in _named_entries(queries, key, QUERY_KEYS, shape, "name, query"):
        raw = _json_value(entry.get("query", entry.get("queryObject")), f"{key} {name!r}.query")
        if isinstance(raw, Mapping) and "queryObject" in raw:  # the whole request body was pasted
            if raw.get("resultType", RESULT_TYPE) != RESULT_TYPE:
                raise ConfigError(f"{key} {name!r}: resultType must be {RESULT_TYPE}")
            raw = raw["queryObject"]
        query_object = check_query_object(raw, f"{key} {name!r}")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two queries are named {name!r}: each names its own table")
        found.append(AnalyticsQuery(name, query_object))
    return found


def parse_reports(reports: Any) -> list[AnalyticsReport]:
    """`analytics_reports` entries: {name = "overview", report = <id>, configuration = {<Report>}, element_ids}."""
    key = f"{KEY}.analytics_reports"
    found: list[AnalyticsReport] = []
    shape = "{name = ..., report = <id>, configuration = {...}}"
    for entry, name in _named_entries(reports, key, REPORT_KEYS, shape, "name, report, configuration, element_ids"):
        report_id = entry.get("report", entry.get("id"))
        if report_id in (None, ""):
            raise ConfigError(f"{key} {name!r} needs `report`, the report's id")
        configuration = _json_value(entry.get("configuration") or {}, f"{key} {name!r}.configuration")
        if not isinstance(configuration, Mapping):
            raise ConfigError(f"{key} {name!r}.configuration must be the report's JSON configuration")
        configuration = dict(configuration)
        for element in configuration.get("reportElements") or []:
            if not isinstance(element, Mapping) or element.get("id") in (None, ""):
                raise ConfigError(f"{key} {name!r}: every reportElements entry needs an id")
            if element.get("type", "ANALYSIS") == "ANALYSIS" and element.get("configJson") is not None:
                check_query_object(_json_value(element["configJson"], key), f"{key} {name!r} element {element['id']!r}")
        elements = entry.get("element_ids", entry.get("elementIds")) or []
        if not isinstance(elements, Sequence) or isinstance(elements, str):
            raise ConfigError(f"{key} {name!r}.element_ids must be a list of element ids")
        if any(existing.name == name for existing in found):
            raise ConfigError(f"{key}: two reports are named {name!r}: each names its own tables")
        found.append(AnalyticsReport(name, report_id, configuration, tuple(elements)))
    return found


def _one_of(container: Mapping[str, Any], field_name: str, allowed: Sequence[str], where: str) -> None:
    value = container.get(field_name)
    if value is not None and value not in allowed:
        raise ConfigError(f"{where}: {field_name} {value!r} is not one of {', '.join(allowed)}")


def check_query_object(raw: Any, where: str) -> dict[str, Any]:
    """A TableQuery (columns, variant, predefinedContainer) or a KpiQuery (type, metricName), as the API wants."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: the query must be a JSON object (Mapp UI: Copy JSON configuration)")
    query = copy.deepcopy(dict(raw))
    if "columns" not in query and query.get("type") in KPI_TYPES:
        if not query.get("metricName"):
            raise ConfigError(f"{where}: a {query['type']} query needs metricName")
        query.setdefault("predefinedContainer", {"filters": [], "containers": []})
        _check_container(query["predefinedContainer"], f"{where} predefinedContainer")
        return query
    columns = query.get("columns")
    if not columns or not isinstance(columns, list):
        raise ConfigError(f"{where} has no columns: a table query needs columns = [{{name = ...}}, ...]")
    for index, column in enumerate(columns):
        spot = f"{where} column {index + 1}"
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str) or not column["name"]:
            raise ConfigError(f"{spot}: every column needs a name (the API name, e.g. browser_fullName)")
        spot = f"{where} column {column['name']!r}"
        _one_of(column, "scope", COLUMN_SCOPES, spot)
        _one_of(column, "context", CONTEXTS, spot)
        _one_of(column, "sortDirection", SORT_DIRECTIONS, spot)
        _one_of(column, "columnPeriod", COLUMN_PERIODS, spot)
        for limit in ("lowerLimit", "upperLimit", "sortIndex"):
            value = column.get(limit)
            if value is not None and not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
                raise ConfigError(f"{spot}: {limit} must be a whole number, not {value!r}")
        if column.get("predefinedContainer") is not None:
            _check_container(column["predefinedContainer"], f"{spot} predefinedContainer")
    query.setdefault("variant", "LIST")
    _one_of(query, "variant", TABLE_VARIANTS, where)
    query.setdefault("predefinedContainer", {"filters": [], "containers": []})
    _check_container(query["predefinedContainer"], f"{where} predefinedContainer")
    return query


def _check_container(container: Any, where: str) -> None:
    if not isinstance(container, Mapping):
        raise ConfigError(f"{where} must be an object with filters and containers")
    for key_name in ("filters", "containers"):
        if not isinstance(container.get(key_name) or [], list):
            raise ConfigError(f"{where}.{key_name} must be a list")
    _one_of(container, "connector", CONNECTORS, where)
    for item in container.get("filters") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ConfigError(f"{where}: every filter needs a name")
        spot = f"{where} filter {item['name']!r}"
        if item.get("filterPredicate") not in FILTER_PREDICATES:
            raise ConfigError(f"{spot}: filterPredicate must be one of {', '.join(FILTER_PREDICATES)}")
        _one_of(item, "connector", CONNECTORS, spot)
    for index, inner in enumerate(container.get("containers") or []):
        _check_container(inner, f"{where}.containers[{index}]")


def with_time_range(query_object: Mapping[str, Any], window: DateWindow) -> dict[str, Any]:
    """The query for one window: every time filter the user copied is replaced by a fixed `time_range`
    (value1 inclusive, value2 exclusive, in the account's local time)."""
    query = copy.deepcopy(dict(query_object))

    def strip(container: dict[str, Any]) -> None:
        container["filters"] = [f for f in container.get("filters") or [] if f.get("name") not in TIME_FILTER_NAMES]
        for inner in container.get("containers") or []:
            strip(inner)

    container = query.setdefault("predefinedContainer", {"filters": [], "containers": []})
    strip(container)
    container.setdefault("containers", [])
    container.setdefault("connector", "AND")
    container["filters"].insert(0, time_filter(window))
    return query


def time_filter(window: DateWindow) -> dict[str, Any]:
    return {
        "name": TIME_RANGE_FILTER,
        "filterPredicate": "BETWEEN",
        "connector": "AND",
        "caseSensitive": False,
        "context": "NONE",
        "intern": False,
        "value1": window.start_at.strftime(TIME_FORMAT),
        "value2": window.end_at.strftime(TIME_FORMAT),
    }


# -- the client -----------------------------------------------------------------------------------------------
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
class AnalyticsStats:
    calculations: int = 0  # queued (201) calculations started by this process
    cached: int = 0  # answered at once (200)
    polls: int = 0
    cancelled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


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
        state = self._wait(label, correlation_id, status_url, calculations)
        calculations.done(correlation_id)
        return self._result(label, state["resultUrl"])

    def _wait(self, label: str, correlation_id: str, status_url: str, calculations: Calculations) -> dict[str, Any]:
        delay = self.poll.initial_seconds
        deadline = self.clock.monotonic() + self.poll.timeout_seconds
        while True:
            if calculations.stopped.wait(delay):
                raise Interrupted(f"{label}: stopped while calculation {correlation_id} was running")
            try:
                state = self.http.get(status_url)
            except VendorError as error:
                raise AnalyticsError(f"{label}: calculation {correlation_id}: {error.vendor_message}") from None
            self.stats.add(polls=1)
            status = state.get("status")
            if status == SUCCESS_STATE and state.get("resultUrl"):
                return state  # type: ignore[no-any-return]
            if status in FAILED_STATES:
                calculations.done(correlation_id)
                raise AnalyticsError(
                    f"{label}: calculation {correlation_id} ended {status} on the server"
                    + (f": {problem_summary(state)}" if problem_summary(state) else "")
                )
            if status not in PENDING_STATES and status != SUCCESS_STATE:
                raise AnalyticsError(f"{label}: calculation {correlation_id} has an unknown status {status!r}")
            if self.clock.monotonic() >= deadline:
                raise AnalyticsError(
                    f"{label}: calculation {correlation_id} still {status} after "
                    f"{self.poll.timeout_seconds:.0f} s (raise analytics_poll_timeout_seconds)"
                )
            delay = min(delay * POLL_FACTOR, self.poll.max_seconds)

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
        delay = self.poll.initial_seconds
        deadline = self.clock.monotonic() + self.poll.timeout_seconds
        while True:
            states = [s for s in answer.get("queryStates") or [] if isinstance(s, Mapping)]
            failed = [s for s in states if s.get("status") in FAILED_STATES]
            if failed:
                calculations.done(str(report_id))
                names = ", ".join(f"{element_id(s)} {s.get('status')}" for s in failed)
                raise AnalyticsError(f"{label}: report elements ended on the server: {names}")
            if states and all(s.get("status") == SUCCESS_STATE for s in states):
                break
            if self.clock.monotonic() >= deadline:
                raise AnalyticsError(f"{label}: report still running after {self.poll.timeout_seconds:.0f} s")
            if calculations.stopped.wait(delay):
                raise Interrupted(f"{label}: stopped while the report was running")
            delay = min(delay * POLL_FACTOR, self.poll.max_seconds)
            answer = self.http.get(status_url)
            self.stats.add(polls=1)
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


def element_table(element: str) -> str:
    """Elements are known by id (a number) in the answers: `element_11`, or the snake_case of a textual id."""
    name = snake(element, "element")
    return f"element_{element}" if element.isdigit() else name


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


def in_parallel(items: Iterable[T], work: Callable[[T], R], workers: int) -> Iterator[tuple[T, R]]:
    """`work` on up to `workers` items at once; results in the order of `items`. Used from a generator, so the
    caller's `finally` runs on errors, on an early close and on Ctrl-C (which arrives in the main thread)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mapp-analytics")
    pending: deque[tuple[T, Future[R]]] = deque()
    source = iter(items)
    try:
        for item in source:
            pending.append((item, pool.submit(work, item)))
            if len(pending) >= workers:
                break
        while pending:
            # A later item's failure must not wait behind an earlier item's long calculation.
            wait([future for _, future in pending], return_when=FIRST_EXCEPTION)
            for _, running in pending:
                if running.done() and running.exception() is not None:
                    running.result()
            item, future = pending.popleft()
            result = future.result()
            following = next(source, None)
            if following is not None:
                pending.append((following, pool.submit(work, following)))
            yield item, result
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


# -- results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectInfo:
    name: str
    metric: bool
    data_type: str
    title: str
    time_format: str | None


def object_catalogue(answer: Mapping[str, Any]) -> dict[str, ObjectInfo]:
    found: dict[str, ObjectInfo] = {}
    for group, metric in (("dimensions", False), ("metrics", True)):
        for item in answer.get(group) or []:
            if isinstance(item, Mapping) and item.get("name"):
                found[str(item["name"])] = ObjectInfo(
                    str(item["name"]),
                    metric,
                    str(item.get("dataType") or "GENERIC").upper(),
                    str(item.get("title") or ""),
                    item.get("timeFormatPattern"),
                )
    return found


def _column_type(info: ObjectInfo | None, metric: bool) -> ColumnType:
    if info is None:
        return "double" if metric else "text"
    if not metric and info.time_format and info.time_format.replace("-", "") == "yyyyMMdd":
        return "date"
    if info.data_type == "NUMBER":
        return "double"
    if metric and info.data_type == "GENERIC":
        return "double"
    return "text"


def _cell(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind == "date":
        text = str(value).strip().replace("-", "")[:8]
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 and text.isdigit() else None
    if kind == "double" and isinstance(value, str):
        text = value.strip().replace(",", "")
        return float(text) if text else None
    return value


@dataclass(frozen=True)
class ResultShape:
    spec: TableSpec
    sources: tuple[tuple[int, str, ColumnType], ...]  # (position in the row, column name, type)
    dimensions: tuple[int, ...]


def result_shape(result: Mapping[str, Any], objects: Mapping[str, ObjectInfo]) -> ResultShape:
    """Columns from the result's headers (snake_case of the API name; name and title kept as the description),
    typed from /query-objects; the key is every dimension column plus the window."""
    headers = [h for h in result.get("headers") or [] if isinstance(h, Mapping)]
    names = unique_names([snake(str(h.get("name") or h.get("alias") or "column")) for h in headers])
    names = [f"{name}_value" if name in ("window_start", "window_end") else name for name in names]
    columns: dict[str, ColumnType] = {}
    descriptions: dict[str, str] = {}
    sources: list[tuple[int, str, ColumnType]] = []
    dimensions: list[int] = []
    for position, (header, name) in enumerate(zip(headers, names, strict=True)):
        api_name = str(header.get("name") or "")
        info = objects.get(api_name)
        metric = bool(header.get("metric")) if "metric" in header else bool(info and info.metric)
        kind = _column_type(info, metric)
        columns[name] = kind
        title = info.title if info else ""
        descriptions[name] = f"{api_name} ({title})" if title else api_name
        sources.append((position, name, kind))
        if not metric:
            dimensions.append(position)
    columns["window_start"] = "date"
    columns["window_end"] = "date"
    descriptions["window_start"] = "first day of the window this row was calculated for"
    descriptions["window_end"] = "last day of the window (inclusive)"
    key = (*(names[p] for p in dimensions), "window_start", "window_end")
    return ResultShape(TableSpec(columns, key, descriptions), tuple(sources), tuple(dimensions))


def result_rows(
    result: Mapping[str, Any], shape: ResultShape, window: DateWindow, kpi: bool = False
) -> list[dict[str, Any]]:
    """Data rows only: rows listed in any header's `sumPositions` and rows with a null dimension cell (totals and
    subtotals) are dropped. A KPI's single Total row is its value and is kept."""
    totals: set[int] = set()
    for header in result.get("headers") or []:
        if isinstance(header, Mapping):
            totals.update(int(p) for p in header.get("sumPositions") or [] if isinstance(p, int))
    rows: list[dict[str, Any]] = []
    data = [cells for cells in result.get("rows") or [] if isinstance(cells, list)]
    # A KPI answers one Total row (dimension "0000000000"): that row is the figure, not a total to drop.
    kpi = kpi or (
        bool(data)
        and bool(shape.dimensions)
        and all(cells[p] == TOTAL_MARKER for cells in data for p in shape.dimensions)
    )
    for index, cells in enumerate(data):
        if not kpi and (index in totals or any(cells[p] is None or cells[p] == TOTAL_MARKER for p in shape.dimensions)):
            continue
        row = {name: _cell(cells[p] if p < len(cells) else None, kind) for p, name, kind in shape.sources}
        row["window_start"] = window.start
        row["window_end"] = window.end
        rows.append(row)
    return rows


def _page(spec: TableSpec, rows: list[dict[str, Any]], **hints: Any) -> Any:
    return dlt.mark.with_hints(spec.arrow(rows), make_hints(columns=spec.hints(), **hints))


# -- resources ------------------------------------------------------------------------------------------------
class AnalyticsRun:
    """Counts the analytics resources running in this source; the last to finish logs the month's usage."""

    def __init__(self, client: AnalyticsClient) -> None:
        self.client = client
        self._started = (0, 0)
        self._users = SharedUse(on_first=self.start, on_last=self.report)

    def start(self) -> None:
        self._started = (self.client.stats.calculations, self.client.stats.cached)

    @contextmanager
    def use(self) -> Iterator[AnalyticsClient]:
        with self._users.use():
            yield self.client

    def report(self) -> None:
        calculated = self.client.stats.calculations - self._started[0]
        cached = self.client.stats.cached - self._started[1]
        try:
            line = usage_line(self.client.usage())
        except ClickhaulError as error:
            line = f"{LABEL} usage unavailable ({error})"
        log.warning("%s; this run: %d calculated, %d cached", line, calculated, cached)


def analytics_resources(settings: AnalyticsSettings) -> Iterator[DltResource]:
    client = shared_client(
        lambda: AnalyticsClient(
            settings.base_url,
            settings.token_url,
            settings.client_id,
            settings.client_secret,
            scope=settings.scope,
            poll=settings.poll,
            timeout=settings.timeout,
        ),
        "webtrekk-analytics",
        settings.base_url,
        settings.token_url,
        settings.client_id,
        settings.client_secret,
        settings.scope,
        settings.poll,
        settings.timeout,
    )
    run = AnalyticsRun(client)
    objects_answer = Once(lambda: client.query_objects(settings.language))
    catalogue = Once(lambda: object_catalogue(objects_answer()))
    yield from metadata_resources(client, settings, objects_answer)
    for query in settings.queries:
        yield query_resource(run, query, settings, catalogue)
    for report in settings.reports:
        yield report_resource(run, report, settings, catalogue)


QUERY_OBJECTS = TableSpec(
    {
        "name": "text",
        "kind": "text",
        "data_type": "text",
        "title": "text",
        "element_type": "text",
        "context": "text",
        "metric_display_type": "text",
        "time_format_pattern": "text",
        "sortable": "bool",
        "mapping": "json",
    },
    ("name", "kind"),
)
SEGMENTS = TableSpec({"id": "bigint", "title": "text", "description": "text"}, ("id",))
DYNAMIC_TIMEFILTERS = TableSpec({"name": "text", "title": "text", "dynamic_filter": "json"}, ("name",))


def metadata_resources(
    client: AnalyticsClient, settings: AnalyticsSettings, objects_answer: Once[dict[str, Any]]
) -> Iterator[DltResource]:
    def listing(name: str, spec: TableSpec, fetch: Callable[[], list[dict[str, Any]]]) -> DltResource:
        def load() -> Iterator[Any]:
            rows = fetch()
            if rows:
                yield spec.arrow(rows)

        return dlt.resource(
            load, name=name, write_disposition="replace", primary_key=spec.primary_key, columns=spec.hints()
        )

    def objects() -> list[dict[str, Any]]:
        answer = objects_answer()
        return [
            {
                "name": item.get("name"),
                "kind": kind,
                "data_type": item.get("dataType"),
                "title": item.get("title"),
                "element_type": item.get("elementType"),
                "context": item.get("context"),
                "metric_display_type": item.get("metricDisplayType"),
                "time_format_pattern": item.get("timeFormatPattern"),
                "sortable": item.get("sortable"),
                "mapping": item.get("mapping"),
            }
            for group, kind in (("metrics", "metric"), ("dimensions", "dimension"))
            for item in answer.get(group) or []
            if isinstance(item, Mapping)
        ]

    def segments() -> list[dict[str, Any]]:
        return [
            {"id": s.get("id"), "title": s.get("title"), "description": s.get("description")} for s in client.segments()
        ]

    def timefilters() -> list[dict[str, Any]]:
        return [
            {"name": f.get("name"), "title": f.get("title"), "dynamic_filter": f.get("dynamicFilter")}
            for f in client.dynamic_timefilters(settings.language)
        ]

    yield listing("analytics_query_objects", QUERY_OBJECTS, objects)
    yield listing("analytics_segments", SEGMENTS, segments)
    yield listing("analytics_dynamic_timefilters", DYNAMIC_TIMEFILTERS, timefilters)


@contextmanager
def cancelled_on_exit(calculations: Calculations) -> Iterator[Calculations]:
    """Whatever ends the run early (an error, Ctrl-C, dlt closing the generator) cancels what still runs."""
    try:
        yield calculations
    except BaseException as error:
        calculations.cancel_all(type(error).__name__)
        raise
    finally:
        calculations.stopped.set()


def windowed_resource(
    run: AnalyticsRun,
    table: str,
    settings: AnalyticsSettings,
    calculate: Callable[[AnalyticsClient, Calculations, DateWindow], R],
    pages: Callable[[DateWindow, R], Iterator[tuple[Any, int]]],
) -> DltResource:
    """What queries and reports share: windows from the cursor, `concurrency` calculations at a time, every one
    still running cancelled when the run ends early. `pages` turns one window's result into (item, rows) pairs."""
    days = DayCursor(settings.first_day, settings.last_day, settings.lookback_days)

    def load() -> Iterator[Any]:
        plan = days.plan(table, settings.timezone, [ACCOUNT])
        windows = [window for _, window in plan.windows(settings.window, settings.timezone)]
        if not windows:
            return
        monitor = current_monitor()
        monitor.task(table, len(windows))
        with run.use() as client, cancelled_on_exit(Calculations(client)) as calculations:

            def calculated(window: DateWindow) -> R:
                return calculate(client, calculations, window)

            for window, result in in_parallel(windows, calculated, settings.concurrency):
                count = 0
                for item, rows in pages(window, result):
                    count += rows
                    yield item
                monitor.advance(table, rows=count)
        plan.complete()

    return days.attach(dlt.resource(load, name=table, write_disposition="merge"))


def query_resource(
    run: AnalyticsRun, query: AnalyticsQuery, settings: AnalyticsSettings, catalogue: Once[dict[str, ObjectInfo]]
) -> DltResource:
    def calculate(client: AnalyticsClient, calculations: Calculations, window: DateWindow) -> dict[str, Any]:
        label = f"{LABEL} query {query.name!r} for {window}"
        return client.run_query(label, with_time_range(query.query_object, window), calculations)

    def pages(window: DateWindow, result: dict[str, Any]) -> Iterator[tuple[Any, int]]:
        shape = result_shape(result, catalogue())
        rows = result_rows(result, shape, window, query.kpi)
        if rows:
            yield _page(shape.spec, rows, primary_key=list(shape.spec.primary_key)), len(rows)

    return windowed_resource(run, query.table, settings, calculate, pages)


def report_resource(
    run: AnalyticsRun, report: AnalyticsReport, settings: AnalyticsSettings, catalogue: Once[dict[str, ObjectInfo]]
) -> DltResource:
    """/report-query per window; each element lands in `analytics_report_<report>__<element>`."""

    def calculate(
        client: AnalyticsClient, calculations: Calculations, window: DateWindow
    ) -> list[tuple[str, dict[str, Any]]]:
        body: dict[str, Any] = {
            "id": report.report_id,
            "elementIds": list(report.element_ids),
            "configuration": report.configuration,
            "timeFilter": time_filter(window),
        }
        return client.run_report(f"{LABEL} report {report.name!r} for {window}", body, calculations)

    def pages(window: DateWindow, elements: list[tuple[str, dict[str, Any]]]) -> Iterator[tuple[Any, int]]:
        for element, result in elements:
            shape = result_shape(result, catalogue())
            rows = result_rows(result, shape, window)
            if not rows:
                continue
            hints = make_hints(
                table_name=f"{report.table}__{element_table(element)}",
                write_disposition="merge",
                primary_key=list(shape.spec.primary_key),
                columns=shape.spec.hints(),
            )
            yield dlt.mark.with_hints(shape.spec.arrow(rows), hints, create_table_variant=True), len(rows)

    return windowed_resource(run, report.table, settings, calculate, pages)


def check_analytics(
    client_id: str | None, client_secret: str | None, base_url: str, token_url: str, scope: str | None
) -> str:
    """For `clickhaul check webtrekk`: a token from the token URL and the month's usage prove the credentials."""
    register_secrets([client_secret])
    if not client_id or not client_secret:
        raise missing_config(VENDOR, ["analytics_client_id" if not client_id else "analytics_client_secret"])
    check_base_url(base_url, f"{KEY}.analytics_base_url")
    check_base_url(token_url, f"{KEY}.analytics_token_url")
    client = AnalyticsClient(base_url.rstrip("/"), token_url, client_id, client_secret, scope=scope, timeout=30.0)
    try:
        usage = client.usage()
    finally:
        client.close()
    return f"{LABEL} at {base_url}: token accepted for client {client_id}; {usage_line(usage)}"


# -- quota before a backfill ----------------------------------------------------------------------------------
def check_analytics_quota(windows: Sequence[DateWindow], resources: Sequence[str] | None, force: bool) -> str | None:
    """`VendorSpec.before_backfill`: the calculations the backfill needs against the month's allowance."""
    return _quota(list(windows), list(resources) if resources else None, force)


@with_config(sections=("sources", "webtrekk"))
def _quota(
    windows: list[DateWindow],
    resources: list[str] | None,
    force: bool,
    analytics_client_id: str | None = None,
    analytics_client_secret: str | None = None,
    analytics_base_url: str = DEFAULT_ANALYTICS_BASE_URL,
    analytics_token_url: str = DEFAULT_ANALYTICS_TOKEN_URL,
    analytics_scope: str | None = None,
    analytics_queries: Any = None,
    analytics_reports: Any = None,
    analytics_window: str = DEFAULT_ANALYTICS_WINDOW,
    timezone: str = "UTC",
    request_timeout: float = 120.0,
) -> str | None:
    settings = parse_analytics(
        client_id=analytics_client_id,
        client_secret=analytics_client_secret,
        base_url=analytics_base_url,
        token_url=analytics_token_url,
        scope=analytics_scope,
        language=DEFAULT_ANALYTICS_LANGUAGE,
        queries=analytics_queries,
        reports=analytics_reports,
        window=analytics_window,
        concurrency=1,
        poll_initial_seconds=DEFAULT_POLL_INITIAL_SECONDS,
        poll_max_seconds=DEFAULT_POLL_MAX_SECONDS,
        poll_timeout_seconds=DEFAULT_POLL_TIMEOUT_SECONDS,
        timeout=request_timeout,
    )
    if settings is None:
        return None
    per_window = settings.calculations_per_window(resources)
    if per_window == 0:
        return None
    check_timezone(timezone)
    needed = per_window * sum(
        len(split_windows(window.start, window.end, settings.window, timezone)) for window in windows
    )
    client = AnalyticsClient(
        settings.base_url,
        settings.token_url,
        settings.client_id,
        settings.client_secret,
        scope=settings.scope,
        timeout=min(settings.timeout, 60.0),
    )
    try:
        usage = client.usage()
    finally:
        client.close()
    used = int(usage.get("calculationsCount") or 0)
    allowed = int(usage.get("maxCalculationsAllowed") or 0)
    remaining = max(0, allowed - used)
    line = f"{usage_line(usage)}; this backfill needs up to {needed:,} ({remaining:,} remain)"
    if needed > remaining and not force:
        raise ConfigError(
            f"{LABEL}: this backfill needs up to {needed:,} calculations ({per_window} per "
            f"{settings.window} window) but only {remaining:,} of the month's {allowed:,} remain "
            f"({used:,} used in {usage.get('year')}-{int(usage.get('month') or 0):02d}): shorten --start/--end, "
            "select fewer analytics_ resources, use a larger analytics_window, or pass --force to run anyway"
        )
    return line
