"""The Umami API client: login or Cloud API key, version detection, and every kind of paging Umami uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pendulum

from sources.common.clock import SYSTEM_CLOCK, Clock, wall_time
from sources.common.errors import AuthError, ClickhaulError, RateLimitedError, TransientError, VendorError
from sources.common.http import HttpClient, RetryPolicy, TokenAuth, TokenExpired
from sources.common.ratelimit import RateLimiter, parse_windows
from sources.common.redact import register_secrets

from .settings import (
    CLOUD_API_KEY_HEADER,
    CLOUD_RATE_LIMITS,
    METRICS_PAGE_LIMIT,
    REPORTS_PAGE_SIZE,
    ROWS_PAGE_SIZE,
    SELF_HOSTED_PREFIX,
    WEBSITES_PAGE_SIZE,
    ApiVersion,
)

VENDOR = "umami"
STAT_NAMES = ("pageviews", "visitors", "visits", "bounces", "totaltime")


def error_message(response: httpx.Response) -> str:
    """What Umami said, on one line: Umami 3's `{"error": {message, code, errors, properties}}` with every field
    message, Umami 2's `{"error": "..."}` or `{"error": ["field: message", ...]}`, or a page of text."""
    try:
        body = response.json()
    except ValueError:
        if "html" in response.headers.get("content-type", ""):
            return f"no such endpoint on this server (HTTP {response.status_code} page)"
        return one_line(response.text)[:300] or response.reason_phrase
    problem = body.get("error") if isinstance(body, dict) else body
    if isinstance(problem, dict):
        details = [*map(str, problem.get("errors") or []), *field_messages(problem.get("properties") or {})]
        message = str(problem.get("message") or problem.get("name") or "error")
        code = problem.get("code")
        text = f"{message}: {'; '.join(details)}" if details else message
        return one_line(text + (f" ({code})" if code and code != message else ""))[:500]
    if isinstance(problem, list):
        return one_line("; ".join(map(str, problem)) or "Bad request")[:500]
    return one_line(str(problem))[:500]


def field_messages(properties: Mapping[str, Any], path: str = "") -> list[str]:
    """Umami 3 nests field errors by path: {"parameters": {"properties": {"steps": {"errors": [...]}}}}."""
    found = []
    for name, node in properties.items():
        where = f"{path}.{name}" if path else str(name)
        if not isinstance(node, Mapping):
            continue
        found += [f"{where}: {message}" for message in node.get("errors") or []]
        found += field_messages(node.get("properties") or {}, where)
        for index, item in enumerate(node.get("items") or []):
            if isinstance(item, Mapping):
                found += field_messages({str(index): item}, where)
    return found


def one_line(text: str) -> str:
    return " ".join(text.split())


class ApiKeyAuth:
    """Umami Cloud: a static key header; a 401 is final (the key itself is wrong)."""

    def __init__(self, api_key: str) -> None:
        self._headers = {CLOUD_API_KEY_HEADER: api_key}

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def invalidate(self) -> None:
        return None


def ms(instant: pendulum.DateTime) -> int:
    return int(instant.timestamp() * 1000)


class UmamiClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        api_version: str = "auto",
        rate_limits: Sequence[Sequence[float]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        rows_page_size: int = ROWS_PAGE_SIZE,
        metrics_page_limit: int = METRICS_PAGE_LIMIT,
    ) -> None:
        register_secrets([password, api_key])
        self.cloud = bool(api_key)
        self.prefix = "" if self.cloud else SELF_HOSTED_PREFIX
        self._username, self._password = username, password
        self.rows_page_size = rows_page_size
        self.metrics_page_limit = metrics_page_limit
        # Umami tokens do not expire by time: no expiry, and any 401 means log in again (once per dead token).
        self.auth: TokenAuth | ApiKeyAuth = (
            ApiKeyAuth(api_key) if api_key else TokenAuth(lambda: (self._login(), None), clock=clock)
        )
        windows = parse_windows(rate_limits if rate_limits is not None else (CLOUD_RATE_LIMITS if self.cloud else []))
        self.limiter = RateLimiter(windows, clock=clock) if windows else None
        self.http = HttpClient(
            VENDOR,
            base_url.rstrip("/"),
            auth=self.auth,
            limiter=self.limiter,
            retry=retry,
            clock=clock,
            timeout=timeout,
            error_message=error_message,
        )
        self._version: ApiVersion | None = None if api_version == "auto" else api_version  # type: ignore[assignment]

    def close(self) -> None:
        self.http.close()

    # -- auth and version -----------------------------------------------------------------------------
    def _login(self) -> str:
        try:
            body = self.http.post(
                f"{self.prefix}/auth/login",
                json_body={"username": self._username, "password": self._password},
                authenticate=False,
            )
        except (TokenExpired, VendorError) as error:
            message = error.vendor_message if isinstance(error, VendorError) else str(error)
            raise AuthError(
                f"umami refused sources.umami.username/password: {message}; check them (Umami Cloud takes api_key)"
            ) from None
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("umami login answered without a token: is base_url an Umami server?")
        return str(token)

    @property
    def version(self) -> ApiVersion:
        if self._version is None:
            raise RuntimeError("call detect_version() first")
        return self._version

    def detect_version(self, website_id: str | None) -> ApiVersion:
        """Umami 2 answers `stats` values as `{value, prev}` objects, Umami 3 as plain numbers."""
        if self._version is not None:
            return self._version
        if website_id is None:
            self._version = "3"  # nothing to read either way; the current version
            return self._version
        now = pendulum.from_timestamp(wall_time(), "UTC")
        answer = self.website_get(website_id, "stats", {"startAt": ms(now.subtract(hours=1)), "endAt": ms(now)})
        self._version = "2" if isinstance((answer or {}).get("pageviews"), dict) else "3"
        return self._version

    # -- requests -------------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.get(f"{self.prefix}{path}", params=params)

    def about(self, what: str, website_id: Any) -> str:
        """Which request, for which website, on which version: the start of every error it raises."""
        version = f"Umami {self._version}" if self._version else "Umami (version not yet detected)"
        return f"{what} for website {website_id} on {version}"

    def asking(self, what: str, website_id: Any, send: Callable[[], Any]) -> Any:
        """`send()`, its errors told in one line with what was asked (dlt's wrappers are unwrapped by the runner)."""
        try:
            return send()
        except TokenExpired:
            raise AuthError(
                f"umami refused {self.about(what, website_id)}: the website does not exist or these credentials "
                "cannot view it (Umami answers 401 for both)"
            ) from None
        except (VendorError, TransientError, RateLimitedError) as error:
            raise in_context(error, self.about(what, website_id)) from None

    def website_get(self, website_id: str, what: str, params: Mapping[str, Any], label: str | None = None) -> Any:
        """A read under /websites/:id; `label` names it in errors (default: the path)."""
        return self.asking(label or what, website_id, lambda: self.get(f"/websites/{website_id}/{what}", params))

    def websites(self) -> list[dict[str, Any]]:
        return list(self._paged("/websites", {}, WEBSITES_PAGE_SIZE))

    def website(self, website_id: str) -> dict[str, Any] | None:
        """One website, or None when Umami refuses it (unknown or not visible)."""
        try:
            answer = self.get(f"/websites/{website_id}")
        except TokenExpired:
            return None
        except VendorError as error:
            if error.status in (400, 404):
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def _paged(self, path: str, params: Mapping[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        """`page`/`pageSize` lists answering `{data, count, page, pageSize}`, until `count` rows came."""
        page, seen = 1, 0
        while True:
            body = self.get(path, {**params, "page": page, "pageSize": page_size}) or {}
            rows = body.get("data") or []
            yield from rows
            seen += len(rows)
            if not rows or len(rows) < page_size or seen >= int(body.get("count") or 0):
                return
            page += 1

    def stats(self, website_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Flat numbers in both versions (Umami 2 nests each as {value, prev})."""
        answer = self.website_get(website_id, "stats", params) or {}
        flat = {}
        for name in STAT_NAMES:
            value = answer.get(name)
            flat[name] = value.get("value") if isinstance(value, dict) else value
        return flat

    def pageviews(self, website_id: str, params: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return dict(self.website_get(website_id, "pageviews", params) or {})

    def metrics(self, website_id: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Page with `limit`/`offset` until a short page: a top-500 is not the whole day."""
        offset = 0
        while True:
            page = self.website_get(
                website_id,
                "metrics",
                {**params, "limit": self.metrics_page_limit, "offset": offset},
                f"metrics (type {params.get('type')})",
            )
            page = page or []
            if page:
                yield page
            if len(page) < self.metrics_page_limit:
                return
            offset += len(page)

    def rows(self, website_id: str, what: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Sessions or events, newest first, `page`/`pageSize`. The caller pins `endAt` in the past, so rows
        arriving during the run fall outside the range and cannot push rows from one page onto the next."""
        page, seen = 1, 0
        size = self.rows_page_size
        while True:
            body = self.website_get(website_id, what, {**params, "page": page, "pageSize": size}) or {}
            rows = body.get("data") or []
            if rows:
                yield rows
            seen += len(rows)
            if not rows or len(rows) < size or seen >= int(body.get("count") or 0):
                return
            page += 1

    def session(self, website_id: str, session_id: str) -> dict[str, Any]:
        """One session with its `distinctId` (the payload `id` it was tracked under), in both versions."""
        return dict(self.website_get(website_id, f"sessions/{session_id}", {}, "session") or {})

    def event_data(self, website_id: str, event_id: str) -> list[dict[str, Any]]:
        return list(self.website_get(website_id, f"event-data/{event_id}", {}) or [])

    def reports(self, website_id: str) -> list[dict[str, Any]]:
        return list(self._paged("/reports", {"websiteId": website_id}, REPORTS_PAGE_SIZE))

    def run_report(self, api_type: str, body: Mapping[str, Any], label: str) -> Any:
        """One report request; `label` names the report in errors ("report funnel 'Signup funnel'")."""
        return self.asking(
            label,
            body.get("websiteId"),
            lambda: self.http.post(f"{self.prefix}/reports/{api_type}", json_body=dict(body)),
        )


def in_context(error: ClickhaulError, about: str) -> ClickhaulError:
    """The same error, its message starting with what was asked."""
    if isinstance(error, VendorError):
        return VendorError(VENDOR, f"{about}: {error.vendor_message}", code=error.code, status=error.status)
    text = f"{VENDOR}: {about}: {str(error).removeprefix(VENDOR + ': ')}"
    if isinstance(error, RateLimitedError):
        return RateLimitedError(text, error.retry_after)
    return TransientError(text)
