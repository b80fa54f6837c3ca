"""The Pirsch API v1 client: client-credentials token, offset paging, the vendor's error body."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.errors import AuthError, VendorError
from sources.common.http import HttpClient, RetryPolicy, TokenAuth, TokenExpired
from sources.common.ratelimit import Window, login_limiter
from sources.common.redact import register_secrets

from .settings import API_PREFIX, PAGE_LIMIT, TOKEN_CALLS_PER_MINUTE

VENDOR = "pirsch"
DOMAIN_CACHE_SECONDS = 600.0


def error_message(response: httpx.Response) -> str:
    """Pirsch errors: `{"validation": {field: msg}, "error": [msg]}`."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(message) for message in body.get("error") or []]
    parts += [f"{field}: {message}" for field, message in (body.get("validation") or {}).items()]
    return "; ".join(parts) or str(body)[:300]


def parse_expiry(value: str | None) -> float | None:
    """`expires_at` is RFC 3339 in UTC, with up to nanoseconds (which Python does not parse)."""
    if not value:
        return None
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(trimmed)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


class PirschClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        register_secrets([client_secret])
        self._client_id = client_id
        self._client_secret = client_secret
        self.page_limit = min(page_limit, PAGE_LIMIT)
        self.clock = clock
        self._domains: tuple[float, list[dict[str, Any]]] | None = None
        # The token endpoint allows 10 calls a minute: renew shortly before expiry and on 401, never otherwise.
        login = (base_url.rstrip("/"), client_id, hashlib.sha256(client_secret.encode()).hexdigest())
        self.auth = TokenAuth(self._fetch_token, refresh_margin_seconds=60.0, clock=clock, shared_as=login)
        # Several processes of one client (Airflow tasks) each need a token: they pace together, never refused.
        window = Window(TOKEN_CALLS_PER_MINUTE, 60.0)
        self.token_limiter = login_limiter([window], clock, ("token", client_id), base_url)
        self.token_limiter.remember(VENDOR, base_url.rstrip("/") + API_PREFIX + "/token")
        self.http = HttpClient(
            VENDOR,
            base_url.rstrip("/") + API_PREFIX,
            auth=self.auth,
            retry=retry,
            clock=clock,
            timeout=timeout,
            error_message=error_message,
        )

    def close(self) -> None:
        self.http.close()

    def _fetch_token(self) -> tuple[str, float | None]:
        try:
            with self.token_limiter.slot():
                body = self.http.post(
                    "/token",
                    json_body={"client_id": self._client_id, "client_secret": self._client_secret},
                    authenticate=False,
                )
        except TokenExpired as error:
            raise AuthError(f"pirsch refused client_id/client_secret: {error}") from None
        except VendorError as error:
            raise AuthError(f"pirsch refused client_id/client_secret: {error.vendor_message}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("pirsch token endpoint answered without access_token")
        return token, parse_expiry(body.get("expires_at"))

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.get(path, params=params)

    def domains(self) -> list[dict[str, Any]]:
        """Cached for the client's life: configuration endpoints allow 60 calls a minute, and a backfill builds
        its source once per window."""
        if self._domains is None or self.clock.time() - self._domains[0] > DOMAIN_CACHE_SECONDS:
            self._domains = (self.clock.time(), list(self.get("/domain") or []))
        return self._domains[1]

    def goals(self, domain_id: str) -> list[dict[str, Any]]:
        return list(self.get("/goal", {"id": domain_id}) or [])

    def pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Page with `offset` until a short page: the API caps `limit` at 100, so a top-100 is not a day."""
        offset = 0
        while True:
            page = self.get(path, {**params, "offset": offset, "limit": self.page_limit}) or []
            if page:
                yield page
            if len(page) < self.page_limit:
                return
            offset += len(page)
