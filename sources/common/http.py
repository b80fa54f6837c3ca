"""The one HTTP layer under every vendor: timeouts, retry with backoff, Retry-After, rate limits, auth refresh,
typed errors and secret masking. A vendor client says only what is particular to its API."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import httpx
import orjson
import tenacity
from dlt.common.configuration import configspec

from .clock import SYSTEM_CLOCK, Clock
from .config import VendorConfig
from .counters import Counters
from .errors import AuthError, RateLimitedError, TransientError, VendorError
from .monitor import current_monitor
from .ratelimit import RateLimiter
from .redact import redact, register_secret

log = logging.getLogger("clickhaul.http")

ParseMode = Literal["json", "text", "bytes"]
_AUTH_RENEWALS_PER_REQUEST = 3
_LAST_ATTEMPT_SECONDS = 0.05  # less time than this left: another attempt could not get an answer anyway


class TokenExpired(AuthError):
    """The vendor says the token is no longer valid: log in again once and repeat the call."""


class Exhausted:
    """Marks an error whose retries are spent: a request that contains it (a token fetch inside a data request)
    must not retry it again, nor wrap its message once more."""


class GaveUp(Exhausted, TransientError):
    """Every attempt of a request failed for a reason worth retrying, until the attempts or the time ran out."""


class StillRateLimited(Exhausted, RateLimitedError):
    """The vendor kept refusing for rate limits after every attempt."""


class _StopBy(tenacity.stop.stop_base):
    """Stop when less time is left before `deadline` than an attempt needs."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.deadline - time.monotonic() <= _LAST_ATTEMPT_SECONDS


def _retryable(error: BaseException) -> bool:
    return isinstance(error, (TransientError, RateLimitedError)) and not isinstance(error, Exhausted)


_PATIENCE = "CLICKHAUL_RETRY_MAX_ELAPSED_SECONDS and CLICKHAUL_RETRY_MAX_ATTEMPTS set the patience"
_deadline_lock = threading.Lock()
_deadline: tuple[float, str] | None = None  # (monotonic, what sets it): no request retries beyond it


@contextmanager
def answer_within(seconds: float, setting: str = _PATIENCE) -> Iterator[None]:
    """Every request in this block (all threads) gives up by `seconds` from now, its last attempt included:
    `clickhaul check` must answer within seconds when a host is down, not after the run's patience. `setting`
    names what sets the bound, for the message."""
    global _deadline
    with _deadline_lock:
        previous = _deadline
        moment = time.monotonic() + seconds
        _deadline = (moment, setting) if previous is None or moment < previous[0] else previous
    try:
        yield
    finally:
        with _deadline_lock:
            _deadline = previous


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request. Delays grow exponentially with full jitter."""

    max_attempts: int = 8
    max_elapsed_seconds: float = 900.0
    base_delay: float = 0.5
    max_delay: float = 60.0
    retry_after_floor: float = 0.5  # `Retry-After: 0` must not become a tight loop
    retry_after_cap: float = 900.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, overridable for every vendor at once (`RetrySettings`: CLICKHAUL_RETRY_* variables)."""
        settings = RetrySettings.from_config()
        return cls(**{name: getattr(settings, f"clickhaul_retry_{name.removeprefix('retry_')}") for name in _FIELDS})


_FIELDS = ("max_attempts", "max_elapsed_seconds", "base_delay", "max_delay", "retry_after_floor", "retry_after_cap")


@configspec
class RetrySettings(VendorConfig):
    """How patient every vendor's requests are: `CLICKHAUL_RETRY_*` variables, or the same keys at the top of
    .dlt/config.toml (tests shrink the delays)."""

    SECTION: ClassVar[str] = ""
    VENDOR: ClassVar[str] = ""

    clickhaul_retry_max_attempts: int = RetryPolicy.max_attempts
    clickhaul_retry_max_elapsed_seconds: float = RetryPolicy.max_elapsed_seconds
    clickhaul_retry_base_delay: float = RetryPolicy.base_delay
    clickhaul_retry_max_delay: float = RetryPolicy.max_delay
    clickhaul_retry_after_floor: float = RetryPolicy.retry_after_floor  # `Retry-After: 0` must not loop tightly
    clickhaul_retry_after_cap: float = RetryPolicy.retry_after_cap


@dataclass
class RequestStats(Counters):
    """Counters for the run summary and for tests that count requests."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    auth_refreshes: int = 0


class Auth(Protocol):
    """Supplies auth headers; `invalidate` is called when the vendor says the token died. It may return False
    when the token was already replaced (another thread renewed it): the repeat then costs no renewal."""

    def headers(self) -> Mapping[str, str]: ...

    def invalidate(self) -> bool | None: ...


def parse_retry_after(value: str | None, clock: Clock, policy: RetryPolicy) -> float | None:
    """`Retry-After` as seconds or an HTTP date, kept between the policy's floor and cap."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - clock.time()
    return min(max(seconds, policy.retry_after_floor), policy.retry_after_cap)


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON of an answer: orjson (several times faster than json on pages of hundreds of rows), or
    json where orjson refuses what json reads (NaN, integers past 64 bits, a charset other than UTF-8)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def default_error_message(response: httpx.Response) -> str:
    """Best effort: the vendor's own message from a JSON body, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] or response.reason_phrase
    return json.dumps(body)[:500]


class HttpClient:
    """An httpx client with the policies every vendor needs.

    `error_message` turns an error response into the vendor's message; `check` may inspect a parsed 200 answer
    and raise (for vendors such as Webtrekk that report errors, expiry and refusals with HTTP 200).
    """

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        error_message: Callable[[httpx.Response], str] = default_error_message,
        token_expired: Callable[[httpx.Response], bool] | None = None,
        stats: RequestStats | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.vendor = vendor
        self.auth = auth
        self.limiter = limiter
        self.retry = retry or RetryPolicy.from_env()
        self.clock = clock
        self.error_message = error_message
        # Vendors that say "token expired" without a 401 (Mapp: 403 INVALID_TOKEN) name that answer here.
        self.token_expired = token_expired
        self.stats = stats or RequestStats()
        self.base_url = base_url
        self._timeout = timeout
        self._connect_timeout = min(timeout, 15.0)
        # A host that stayed unreachable through every retry of one request fails the others at once: the run
        # ends with that one message instead of retrying each of its requests against a dead host.
        self._unreachable: GaveUp | None = None
        if limiter is not None:
            limiter.remember(vendor, base_url)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=self._connect_timeout),
            headers={"User-Agent": "clickhaul", **(headers or {})},
            # httpx ignores `limits` when given a transport: the default one carries them, and TCP_NODELAY so a
            # request body written after its headers does not wait for a delayed ACK.
            transport=transport
            or httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            ),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        parse: ParseMode = "json",
        check: Callable[[Any], Any] | None = None,
        authenticate: bool = True,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Send one logical request, retrying transient failures; return the parsed (and checked) answer.

        Bounded by the policy's attempts and time, the last attempt's timeout included (and by `answer_within`)."""
        policy = retry or self.retry
        if self._unreachable is not None:
            raise self._unreachable
        refreshes = free = 0
        failures: list[BaseException] = []
        began = time.monotonic()
        deadline, setting = began + policy.max_elapsed_seconds, _PATIENCE
        if _deadline is not None and _deadline[0] < deadline:
            deadline, setting = _deadline

        def attempt() -> Any:
            nonlocal refreshes, free
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= _LAST_ATTEMPT_SECONDS:
                    raise failures[-1] if failures else TransientError("no time left for an attempt")
                try:
                    return self._send_once(
                        method, url, params, json_body, data, headers, parse, check, authenticate, remaining
                    )
                except (TransientError, RateLimitedError) as error:
                    failures.append(error)
                    raise
                except TokenExpired:
                    # More than one renewal: with many requests in flight, the token renewed for this one can
                    # be ended (by the vendor, or by a re-login elsewhere) before its repeat arrives.
                    if refreshes >= _AUTH_RENEWALS_PER_REQUEST or self.auth is None or not authenticate:
                        raise
                    if self.auth.invalidate() is not False:
                        refreshes += 1
                        self.stats.add(auth_refreshes=1)
                    elif (free := free + 1) > _AUTH_RENEWALS_PER_REQUEST * 10:
                        raise  # renewed elsewhere again and again: the vendor ends every token at once

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retryable),
            stop=tenacity.stop_any(
                tenacity.stop_after_attempt(policy.max_attempts),
                tenacity.stop_after_delay(policy.max_elapsed_seconds),
                _StopBy(deadline),
            ),
            wait=lambda state: min(self._backoff(state, policy), max(0.0, deadline - time.monotonic())),
            sleep=self.clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except (GaveUp, StillRateLimited):
            raise
        except RateLimitedError as error:
            raise StillRateLimited(
                f"{self.vendor}: still rate limited after {policy.max_attempts} attempts: {error}",
                error.retry_after,
            ) from None
        except TransientError as error:
            gave_up = GaveUp(
                f"{self.vendor}: gave up on {self.base_url} after {time.monotonic() - began:.0f} s of retries "
                f"({error}); {setting}"
            )
            if getattr(error, "unreachable", False):
                self._unreachable = gave_up
            raise gave_up from None

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        parse: ParseMode,
        check: Callable[[Any], Any] | None,
        authenticate: bool,
        remaining: float | None = None,
    ) -> Any:
        request_headers = dict(headers or {})
        if authenticate and self.auth is not None:
            request_headers.update(self.auth.headers())
        slot = self.limiter.acquire() if self.limiter else None
        try:
            self.stats.add(requests=1)
            monitor = current_monitor()
            monitor.count(requests=1)
            timeout: Any = httpx.USE_CLIENT_DEFAULT
            if remaining is not None and remaining < self._timeout:
                timeout = httpx.Timeout(remaining, connect=min(self._connect_timeout, remaining))
            try:
                with monitor.request_in_flight():
                    response = self._http.request(
                        method, url, params=params, json=json_body, data=data, headers=request_headers, timeout=timeout
                    )
            except httpx.TransportError as error:  # refused, reset, dropped mid-body, timed out
                failure = TransientError(f"{type(error).__name__}: {redact(str(error)) or 'no answer'}")
                # Nobody listens, or nobody answers: the host, not this request, is the problem.
                failure.unreachable = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))  # type: ignore[attr-defined]
                raise failure from None
        finally:
            if slot is not None and self.limiter is not None:
                self.limiter.release(slot)
        return self._handle(response, parse, check)

    def _handle(self, response: httpx.Response, parse: ParseMode, check: Callable[[Any], Any] | None) -> Any:
        status = response.status_code
        if status == 401 or (self.token_expired is not None and self.token_expired(response)):
            raise TokenExpired(f"{self.vendor}: unauthorized: {redact(self.error_message(response))}")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock, self.retry)
            raise RateLimitedError(f"{self.vendor}: HTTP 429 Too Many Requests", retry_after)
        if status >= 500:
            raise TransientError(f"HTTP {status}: {redact(self.error_message(response))[:200]}")
        if status >= 400:
            raise VendorError(self.vendor, redact(self.error_message(response)), status=status)
        if parse == "bytes":
            payload: Any = response.content
        elif parse == "text":
            payload = response.text
        else:
            try:
                payload = json_body(response)
            except ValueError:
                # A truncated or garbled body on a 2xx answer: the next attempt usually gets it whole.
                raise TransientError(f"HTTP {status}: malformed JSON body") from None
        return check(payload) if check else payload

    def _backoff(self, state: tenacity.RetryCallState, policy: RetryPolicy) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = error.retry_after
            if self.limiter is not None:
                self.limiter.penalize(delay)
            # A little jitter so parallel workers do not return in lockstep.
            return delay + random.uniform(0, min(1.0, delay * 0.1))
        exponential = min(policy.max_delay, policy.base_delay * 2 ** (state.attempt_number - 1))
        return random.uniform(policy.base_delay / 2, exponential)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        rate_limited = int(isinstance(error, RateLimitedError))
        self.stats.add(retries=1, rate_limited=rate_limited)
        current_monitor().count(retries=1, rate_limited=rate_limited)
        delay = state.next_action.sleep if state.next_action else 0.0
        log.info("%s: attempt %d failed (%s); retrying in %.1f s", self.vendor, state.attempt_number, error, delay)


class TokenAuth:
    """A bearer-style token fetched on demand, renewed shortly before it expires and when the vendor says so.

    `fetch` returns the token and its expiry as epoch seconds (None: valid until refused). Thread-safe, so
    parallel workers share one token and the vendor's token endpoint sees one call per renewal. With `shared_as`
    (the login: URL and client id), every client of that login in the process shares the token too: a `migrate`
    reads, pushes and reads back with several clients, and the vendor's token endpoint may allow 10 calls a minute.
    """

    _shared: ClassVar[dict[tuple[str, ...], tuple[str, float | None]]] = {}  # login -> (token, renew at)
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float | None]],
        *,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        refresh_margin_seconds: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
        shared_as: tuple[str, ...] | None = None,
    ) -> None:
        self._shared_as = shared_as
        self._fetch = fetch
        self._header = header
        self._scheme = scheme
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: float | None = None
        self._used = threading.local()

    def token(self) -> str:
        token = self._current()
        self._used.token = token
        return token

    def _current(self) -> str:
        with self._lock:
            if self._token is None or (self._renew_at is not None and self._clock.time() >= self._renew_at):
                held = self._held_elsewhere()
                if held is not None:
                    self._token, self._renew_at = held
                    return self._token
                token, expires_at = self._fetch()
                register_secret(token)
                now = self._clock.time()
                # Renew `margin` before expiry, but never sooner than half the lifetime: a short-lived token
                # must not be fetched on every call (token endpoints are rate limited too).
                self._renew_at = (
                    None if expires_at is None else max(expires_at - self._margin, now + (expires_at - now) / 2)
                )
                self._token = token
                if self._shared_as is not None:
                    with self._shared_lock:
                        self._shared[self._shared_as] = (token, self._renew_at)
            return self._token

    def _held_elsewhere(self) -> tuple[str, float | None] | None:
        """A token another client of the same login fetched, still fresh, and not the one this client dropped."""
        if self._shared_as is None:
            return None
        with self._shared_lock:
            held = self._shared.get(self._shared_as)
        if held is None or held[0] == self._token or (held[1] is not None and self._clock.time() >= held[1]):
            return None
        return held

    def headers(self) -> Mapping[str, str]:
        token = self.token()
        return {self._header: f"{self._scheme} {token}" if self._scheme else token}

    def invalidate(self) -> bool:
        """Drop the token this thread's failing request carried; when parallel workers all get 401 for one dead
        token, the first fetches a new one and the others reuse it (False: already replaced)."""
        with self._lock:
            if self._token is not None and self._token == getattr(self._used, "token", None):
                if self._shared_as is not None:
                    with self._shared_lock:
                        if self._shared.get(self._shared_as, ("",))[0] == self._token:
                            del self._shared[self._shared_as]
                self._token = None
                return True
            return False
