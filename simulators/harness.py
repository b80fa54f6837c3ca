"""What every vendor simulator shares: a real HTTP/1.1 server on 127.0.0.1 in a background thread, routing,
injectable faults, a request log tests can count, token issuing with a lifetime, and sliding-window counters.
A vendor simulator adds only its data model and its endpoints."""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from sources.common.clock import wall_time


@dataclass
class Faults:
    """Probabilities of each fault per request; seeded so a failing test can be replayed."""

    error_rate: float = 0.0  # answer 500/502/503
    slow_rate: float = 0.0  # answer after `slow_seconds`
    slow_seconds: float = 1.0
    drop_rate: float = 0.0  # close the connection before answering (nothing was processed)
    drop_after_rate: float = 0.0  # process the request, then close the connection without answering
    truncate_rate: float = 0.0  # a 200 whose JSON body is cut short
    rate_limit_rate: float = 0.0  # 429 with Retry-After
    retry_after: str = "1"
    seed: int = 0
    exempt_paths: tuple[str, ...] = ()  # regexes of paths that never fault (e.g. a token endpoint)
    # The first request that may fault gets the likeliest fault: a test of a few requests always meets one,
    # whatever day it runs on (the days decide how many requests there are, and so what the draws give).
    fault_first: bool = False

    @classmethod
    def chaos(cls, rate: float = 0.1, seed: int = 7, **overrides: Any) -> Faults:
        """A mix of every fault at `rate` in total, for 'survives faults' tests."""
        share = rate / 4
        values: dict[str, Any] = dict(
            error_rate=share,
            drop_rate=share / 2,
            drop_after_rate=share / 2,
            truncate_rate=share,
            rate_limit_rate=share,
            retry_after="0.05",
            seed=seed,
        )
        values.update(overrides)
        return cls(**values)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    query_lists: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def bearer(self) -> str | None:
        value = self.header("authorization") or ""
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # bytes and str are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/plain; charset=utf-8"
        if self.body is None and self.status == 204:
            return b"", self.content_type or "text/plain"
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8"), self.content_type or "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=body, headers=dict(headers or {}))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float
    fault: str | None = None
    body: bytes = b""


Handler = Callable[[Request], Response]


class _Drop(Exception):
    pass


class SimulatorServer:
    """Serve a vendor's endpoints on 127.0.0.1. Subclasses register routes in `__init__` with `self.route`."""

    vendor = "vendor"

    def __init__(self, faults: Faults | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self._rng_lock = threading.Lock()
        self._forced_first = False
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests this server answered at once: proves a client's parallelism
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing --------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"/?$"), handler))

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        with self._rng_lock:
            self._rng = random.Random(faults.seed)
            self._forced_first = False

    def dispatch(self, request: Request) -> Response:
        allowed = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match:
                if method != request.method:
                    allowed.append(method)
                    continue
                request.match = match
                return handler(request)
        if allowed:
            return json_response({"error": f"method {request.method} not allowed"}, 405, {"Allow": ", ".join(allowed)})
        return self.not_found(request)

    def not_found(self, request: Request) -> Response:
        return json_response({"error": f"no such endpoint: {request.path}"}, 404)

    # -- faults ---------------------------------------------------------------------------------------
    def _draw_fault(self, path: str) -> str | None:
        faults = self.faults
        if any(re.search(pattern, path) for pattern in faults.exempt_paths):
            return None
        rates = (
            ("error", faults.error_rate),
            ("slow", faults.slow_rate),
            ("drop", faults.drop_rate),
            ("drop_after", faults.drop_after_rate),
            ("truncate", faults.truncate_rate),
            ("rate_limit", faults.rate_limit_rate),
        )
        with self._rng_lock:
            if faults.fault_first and not self._forced_first and any(rate > 0 for _, rate in rates):
                self._forced_first = True
                return max(rates, key=lambda item: item[1])[0]
            roll = self._rng.random()
        for name, rate in rates:
            if roll < rate:
                return name
            roll -= rate
        return None

    def _serve(self, request: Request) -> Response:
        fault = self._draw_fault(request.path)
        status = 0
        with self._log_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault == "error":
                with self._rng_lock:
                    status = self._rng.choice((500, 502, 503))
                return Response(status, "simulated server error")
            if fault == "rate_limit":
                status = 429
                return Response(429, "Too Many Requests", headers={"Retry-After": self.faults.retry_after})
            if fault == "drop":
                raise _Drop()
            if fault == "slow":
                time.sleep(self.faults.slow_seconds)
            response = self.dispatch(request)
            status = response.status
            if fault == "drop_after":
                raise _Drop()
            if fault == "truncate" and response.status == 200:
                body, content_type = response.encode()
                if content_type.startswith("application/json") and len(body) > 2:
                    return Response(200, body[: max(1, len(body) // 2)], content_type=content_type)
            return response
        finally:
            with self._log_lock:
                self.in_flight -= 1
                self.requests.append(
                    LoggedRequest(request.method, request.path, request.query, status, wall_time(), fault, request.body)
                )

    # -- request log ----------------------------------------------------------------------------------
    def count(self, path_pattern: str = "", method: str | None = None, status: int | None = None) -> int:
        with self._log_lock:
            return sum(
                1
                for r in self.requests
                if re.search(path_pattern, r.path)
                and (method is None or r.method == method)
                and (status is None or r.status == status)
            )

    def clear_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        simulator = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real vendors do
            # Headers and body are written separately: with Nagle and delayed ACKs each answer would wait ~40 ms.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query_lists = parse_qs(parts.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={key: values[-1] for key, values in query_lists.items()},
                    query_lists=query_lists,
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                try:
                    response = simulator._serve(request)
                except _Drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                except Exception as error:  # a simulator bug must show as a 500, not a hung client
                    response = Response(500, f"simulator error: {type(error).__name__}: {error}")
                payload, content_type = response.encode()
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the request log is the record
                return

        server = ThreadingHTTPServer((self._host, self._port), RequestHandler)
        server.daemon_threads = True
        default_handle_error = server.handle_error

        def handle_error(request: Any, client_address: Any) -> None:
            # A client that gave up (timeout, killed) before its answer is expected here, not worth a trace.
            if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                return
            default_handle_error(request, client_address)

        server.handle_error = handle_error  # type: ignore[method-assign]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"{self.vendor}-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Foreground serving for `clickhaul simulate`."""
        if self._server is None:
            self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


class TokenStore:
    """Issues opaque tokens (or tickets) with a lifetime, each for an owner; `clock` lets tests expire them without
    waiting."""

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = wall_time,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(24),
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._new_token = new_token
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (owner, expiry)
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, owner: str = "", ttl_seconds: float | None = None) -> tuple[str, float]:
        token = self._new_token()
        expires_at = self.clock() + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)
        with self._lock:
            self._tokens[token] = (owner, expires_at)
            self.issued += 1
        return token, expires_at

    def owner(self, token: str | None) -> str | None:
        """Whom a valid token was issued for; None when it is unknown or expired."""
        if not token:
            return None
        with self._lock:
            owner, expires_at = self._tokens.get(token, ("", 0.0))
        return owner if token in self._tokens and self.clock() < expires_at else None

    def valid(self, token: str | None) -> bool:
        return self.owner(token) is not None

    def touch(self, token: str) -> None:
        """For idle-timeout tokens: each use extends the lifetime."""
        with self._lock:
            if token in self._tokens:
                self._tokens[token] = (self._tokens[token][0], self.clock() + self.ttl_seconds)

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def expire_all(self) -> None:
        with self._lock:
            self._tokens = {token: (owner, 0.0) for token, (owner, _) in self._tokens.items()}


class SlidingWindow:
    """Counts events in the last `seconds`; the simulators enforce vendor limits with it."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
        self._events: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.seconds:
            self._events.popleft()

    def count(self) -> int:
        with self._lock:
            self._prune(self.clock())
            return len(self._events)

    def try_hit(self) -> bool:
        """Record an event if the window has room; False means the caller is over the limit."""
        with self._lock:
            now = self.clock()
            self._prune(now)
            if len(self._events) >= self.limit:
                return False
            self._events.append(now)
            return True

    def hit(self) -> None:
        with self._lock:
            now = self.clock()
            self._prune(now)
            self._events.append(now)

    def retry_after(self) -> float:
        with self._lock:
            now = self.clock()
            self._prune(now)
            return max(0.0, self._events[0] + self.seconds - now) if self._events else 0.0

    def __iter__(self) -> Iterator[float]:
        with self._lock:
            return iter(list(self._events))


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() of str is salted per process)."""
    import hashlib

    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _serve_forever(factory: Callable[[], SimulatorServer], urls: multiprocessing.Queue[str]) -> None:
    try:
        simulator = factory().start()
    except BaseException as error:
        urls.put(f"error: {type(error).__name__}: {error}")
        raise
    urls.put(simulator.url)
    simulator.serve_forever()


@contextmanager
def served(factory: Callable[[], SimulatorServer]) -> Iterator[str]:
    """`factory()` served from a forked process of its own; yields its base URL. For measurements: the server's
    work (and the memory of its generated data) stays out of the process being measured."""
    context: Any = multiprocessing.get_context("fork")
    urls: multiprocessing.Queue[str] = context.Queue()
    process = context.Process(target=_serve_forever, args=(factory, urls), daemon=True)
    process.start()
    try:
        url = urls.get(timeout=300)
        if url.startswith("error: "):
            raise RuntimeError(f"the simulator did not start: {url[7:]}")
        yield url
    finally:
        process.terminate()
        process.join(timeout=10)
