"""The Matomo Reporting API (`index.php?module=API`) for reading: every parameter, `token_auth` included, goes in
the POST body, never in a URL (segments name visitors; tokens must not reach access logs).

Matomo answers most refusals with HTTP 200 `{"result": "error", "message": ...}`: they become `VendorError`s with
Matomo's message. A wrong token answers 401 with an HTML page, no token 401 JSON: both one `AuthError` line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.errors import AuthError, ConfigError, VendorError
from sources.common.http import HttpClient, RetryPolicy
from sources.common.redact import redact, register_secrets

VENDOR = "matomo"
MISSING_METHOD = "does not exist or is not available"  # Matomo's words for a method of a plugin that is off


def reporting_error_message(response: httpx.Response) -> str:
    """Matomo answers a wrong token with an HTML page: name it instead of quoting the page."""
    if "html" in response.headers.get("content-type", ""):
        return f"HTTP {response.status_code} (an HTML error page: the token is invalid or expired)"
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:300]


def reporting_url(base_url: str) -> str:
    """`https://host/matomo` or `https://host/matomo/index.php`: the index.php that answers module=API."""
    url = base_url.rstrip("/")
    return url if url.endswith("index.php") else f"{url}/index.php"


class MatomoApiError(VendorError):
    """Matomo's own refusal, answered with HTTP 200 `{"result": "error"}`."""

    @property
    def plugin_missing(self) -> bool:
        return MISSING_METHOD in self.vendor_message


class MatomoReader:
    """Reads one Matomo through the common HTTP layer (retries, timeouts, request counts)."""

    def __init__(
        self,
        base_url: str,
        token_auth: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        token_key: str = "sources.matomo.token_auth",
    ) -> None:
        register_secrets([token_auth])
        self.token_auth = token_auth
        self.token_key = token_key
        self.url = reporting_url(base_url)
        parts = urlsplit(self.url)
        self.path = parts.path
        self.http = HttpClient(
            VENDOR,
            f"{parts.scheme}://{parts.netloc}",
            retry=retry,
            clock=clock,
            timeout=timeout,
            error_message=reporting_error_message,
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, **params: Any) -> Any:
        body = {"module": "API", "format": "json", "method": method, **params, "token_auth": self.token_auth}
        try:
            answer = self.http.post(self.path, data=body)
        except AuthError as error:
            variable = self.token_key.upper().replace(".", "__")
            raise AuthError(
                f"matomo refused {self.token_key} ({redact(str(error)).removeprefix('matomo: unauthorized: ')}): "
                f"set a token_auth with view access to the sites ({variable})"
            ) from None
        except VendorError as error:
            if error.status in (404, 405):
                raise ConfigError(
                    f"matomo: nothing answers the Reporting API at {self.url} (HTTP {error.status}): set "
                    "sources.matomo.base_url to the Matomo address, e.g. https://matomo.example.com"
                ) from None
            raise
        if isinstance(answer, dict) and answer.get("result") == "error":
            raise MatomoApiError(VENDOR, redact(str(answer.get("message"))), name=method)
        return answer

    # -- what the source reads ------------------------------------------------------------------------------
    def version(self) -> str:
        answer = self.call("API.getMatomoVersion")
        return str(answer.get("value") if isinstance(answer, dict) else answer)

    def sites(self) -> list[dict[str, Any]]:
        return [
            site for site in self.call("SitesManager.getSitesWithAtLeastViewAccess") or [] if isinstance(site, dict)
        ]

    def goals(self, site: int) -> list[dict[str, Any]]:
        answer = self.call("Goals.getGoals", idSite=site)
        items = answer.values() if isinstance(answer, dict) else answer or []
        return [goal for goal in items if isinstance(goal, dict)]

    def visits(
        self,
        site: int,
        first: dt.date,
        last: dt.date,
        *,
        limit: int = -1,
        offset: int = 0,
        segment: str | None = None,
        actions: bool = True,
    ) -> list[dict[str, Any]]:
        """Live.getLastVisitsDetails: the visits whose last action falls on [first, last] (the site's days), newest
        first."""
        params: dict[str, Any] = {
            "idSite": site,
            "period": "range",
            "date": f"{first.isoformat()},{last.isoformat()}",
            "filter_limit": limit,
            "filter_offset": offset,
        }
        if segment:
            params["segment"] = segment
        if not actions:
            params["doNotFetchActions"] = 1
        answer = self.call("Live.getLastVisitsDetails", **params)
        if not isinstance(answer, list):
            raise MatomoApiError(VENDOR, f"Live.getLastVisitsDetails answered {str(answer)[:200]}")
        return [visit for visit in answer if isinstance(visit, dict)]

    def visit_pages(self, site: int, day: dt.date, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """A day's visits page by page (offsets, newest first), until a short page."""
        offset = 0
        while True:
            page = self.visits(site, day, day, limit=page_size, offset=offset)
            yield page
            if len(page) < page_size:
                return
            offset += len(page)

    def visits_by_id(self, site: int, day: dt.date, ids: Sequence[int], chunk: int = 100) -> Iterator[dict[str, Any]]:
        for start in range(0, len(ids), chunk):
            segment = ",".join(f"visitId=={visit_id}" for visit_id in ids[start : start + chunk])
            yield from self.visits(site, day, day, segment=segment)

    def report(self, method: str, site: int, day: dt.date, **params: Any) -> Any:
        return self.call(method, idSite=site, period="day", date=day.isoformat(), **params)
