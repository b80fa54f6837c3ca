"""The Webtrekk JSON-RPC 1.1 client: one login token for a whole run, every answer checked for `error` before
its `result`, the vendor's HTTP-200 refusals turned into typed errors, paging of exportData and analyses.

Every request (login and logout included) goes through one `RateLimiter` holding both of the vendor's windows:
one request too many blocks the account for the whole window, so the client paces itself instead.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sources.common.clock import SYSTEM_CLOCK, Clock
from sources.common.config import config_list
from sources.common.errors import AuthError, ConfigError, RateLimitedError, VendorError
from sources.common.http import HttpClient, RetryPolicy, TokenExpired
from sources.common.ratelimit import Window, login_limiter, parse_windows
from sources.common.redact import register_secrets

from .settings import DEFAULT_RATE_LIMITS, JSONRPC_VERSION, VENDOR

log = logging.getLogger("clickhaul.webtrekk")

# "To many requests (120) within 600 seconds." - the typo is the vendor's; accept the corrected spelling too.
_RATE_LIMITED = re.compile(r"to+ many requests\s*\((\d+)\)\s*within\s*([\d.]+)\s*seconds?", re.IGNORECASE)
_AUTH_FAILED = re.compile(r"authori[sz]ation failed|token (is )?(invalid|expired)", re.IGNORECASE)


class JsonRpcError(VendorError):
    """An `error` object in a JSON-RPC answer: the vendor's name, message and code, and the method called."""

    def __init__(self, method: str, message: str, *, code: str | int | None, name: str | None) -> None:
        super().__init__(VENDOR, f"{method}: {message}", code=code, name=name)
        self.method = method
        self.vendor_message = message


def rate_limit_pairs(value: Any) -> list[list[float]]:
    """`rate_limits` from TOML (a list of pairs) or an environment variable (JSON); the documented limits if unset."""
    pairs = config_list(value, "sources.webtrekk.rate_limits")
    limits = [list(pair) if isinstance(pair, (list, tuple)) else pair for pair in pairs or DEFAULT_RATE_LIMITS]
    if not parse_windows(limits):
        raise ConfigError("sources.webtrekk.rate_limits is empty: write e.g. rate_limits = [[5, 10], [120, 600]]")
    return limits


def split_endpoint(url: str) -> tuple[str, str]:
    """httpx appends "/" to a base URL, and the endpoint is a file (`.../JSONRPC.cgi`): keep the path apart."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


class WebtrekkClient:
    """Logs in lazily, shares the token, re-logs in once on "Authorization failed", logs out on `close()`."""

    def __init__(
        self,
        base_url: str,
        customer_id: str,
        login: str,
        password: str,
        *,
        language: str = "en",
        rate_limits: Sequence[Sequence[float]] = DEFAULT_RATE_LIMITS,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
    ) -> None:
        register_secrets([password])
        self.customer_id = customer_id
        self.language = language
        self._login = login
        self._password = password
        self.windows: list[Window] = parse_windows(rate_limits)
        self.limiter = login_limiter(self.windows, clock, (login,), base_url)  # Webtrekk counts per user
        origin, self.path = split_endpoint(base_url)
        self.http = HttpClient(VENDOR, origin, limiter=self.limiter, retry=retry, clock=clock, timeout=timeout)
        self._token: str | None = None
        self._lock = threading.Lock()
        self.logins = 0

    # -- the protocol ------------------------------------------------------------------------------------
    def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """One JSON-RPC call without the token (login, getConnectionTest, getAccountList, deleteTvData)."""
        body = {"version": JSONRPC_VERSION, "method": method, "params": dict(params or {})}
        return self.http.post(self.path, json_body=body, check=lambda answer: self.check(method, answer))

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """A call with the session token; an expired token means one fresh login and the same call again."""
        token = self.token()
        try:
            return self.rpc(method, {**(params or {}), "token": token})
        except TokenExpired:
            self._invalidate(token)
            log.info("webtrekk: token refused during %s; logging in again", method)
            token = self.token()
            try:
                return self.rpc(method, {**(params or {}), "token": token})
            except TokenExpired as error:
                raise AuthError(f"webtrekk refused a fresh token for {method}: {error}") from None

    def check(self, method: str, answer: Any) -> Any:
        """`error` before `result`: every refusal comes with HTTP 200, so this is where errors are found."""
        if not isinstance(answer, dict):
            raise JsonRpcError(method, f"answer is not a JSON-RPC object: {str(answer)[:200]}", code=None, name=None)
        error = answer.get("error")
        if error:
            if isinstance(error, dict):
                message = str(error.get("message") or error)
                code = error.get("code", answer.get("code"))  # the vendor sometimes puts `code` beside `error`
                name = error.get("name")
            else:
                message, code, name = str(error), answer.get("code"), None
            limited = _RATE_LIMITED.search(message)
            if limited:
                raise RateLimitedError(
                    f"webtrekk refused {method}: {message}", self.penalty_seconds(int(limited[1]), float(limited[2]))
                )
            if _AUTH_FAILED.search(message):
                raise TokenExpired(f"webtrekk: {method}: {message} (code {code})")
            raise JsonRpcError(method, message, code=code, name=name)
        if "result" not in answer:
            raise JsonRpcError(method, "answer has neither `result` nor `error`", code=None, name=None)
        return answer["result"]

    def penalty_seconds(self, requests: int, seconds: float) -> float:
        """Back off for the window the server names; our configured window of that size if it is one of ours."""
        for window in self.windows:
            if window.requests == requests:
                return window.seconds
        return seconds

    # -- session -----------------------------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            if self._token is None:
                params = {"customerId": self.customer_id, "login": self._login, "pass": self._password}
                if self.language:
                    params["language"] = self.language
                try:
                    token = self.rpc("login", params)
                except (TokenExpired, JsonRpcError) as error:
                    raise AuthError(
                        f"webtrekk refused the login for customer_id {self.customer_id}: {error}; check "
                        "sources.webtrekk.customer_id, login and password"
                    ) from None
                if not isinstance(token, str) or not token:
                    raise AuthError(f"webtrekk login answered without a token: {str(token)[:100]}")
                register_secrets([token])
                self._token = token
                self.logins += 1
            return self._token

    def _invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def logout(self) -> None:
        """Delete the token on the server; failures are logged, never raised (we may be unwinding an error)."""
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return
        try:
            self.rpc("logout", {"token": token})
        except Exception as error:
            log.warning("webtrekk: logout failed: %s", error)

    def close(self) -> None:
        self.logout()
        self.http.close()

    # -- methods -----------------------------------------------------------------------------------------
    def connection_test(self) -> str:
        return str(self.rpc("getConnectionTest"))

    def accounts(self) -> list[dict[str, Any]]:
        return list(self.rpc("getAccountList", {"login": self._login, "pass": self._password}) or [])

    def delete_tv_data(self, time_start: str, time_stop: str) -> Any:
        params = {
            "customerId": self.customer_id,
            "login": self._login,
            "pass": self._password,
            "time_start": time_start,
            "time_stop": time_stop,
        }
        return self.rpc("deleteTvData", params)

    def export_pages(self, params: Mapping[str, Any], page_size: int) -> Iterator[tuple[list[str], list[list[Any]]]]:
        """(header, rows) per `startRow`/`endRow` window until a short page; the header is each answer's first row."""
        start = 1
        while True:
            answer = self.call("exportData", {**params, "startRow": start, "endRow": start + page_size - 1}) or []
            if not isinstance(answer, list):
                raise JsonRpcError("exportData", f"expected rows, got {str(answer)[:100]}", code=None, name=None)
            if not answer:
                return
            header, rows = [str(title) for title in answer[0]], answer[1:]
            if rows or start == 1:  # an empty first page still says "no rows": a replaced table must empty
                yield header, rows
            if len(rows) < page_size:
                return
            start += page_size

    def analysis_pages(self, config: Mapping[str, Any], row_limit: int) -> Iterator[dict[str, Any]]:
        """getAnalysisData answers, paged with `startRow`/`rowLimit` until `totalRowCount` is covered."""
        start = 1
        while True:
            answer = self.call(
                "getAnalysisData", {"analysisConfig": {**config, "startRow": start, "rowLimit": row_limit}}
            )
            if not isinstance(answer, dict):
                raise JsonRpcError(
                    "getAnalysisData", f"expected an object, got {str(answer)[:100]}", code=None, name=None
                )
            yield answer
            total = int(answer.get("totalRowCount") or 0)
            start += row_limit
            if start > total or not answer.get("analysisData"):
                return

    def import_data(self, upload_type: str, rows: list[list[Any]]) -> Any:
        return self.call("importData", {"uploadType": upload_type, "uploadData": rows})
