from __future__ import annotations

import email.utils
from collections.abc import Iterator, Mapping

import pytest

from simulators.harness import Request, Response, SimulatorServer, json_response
from sources.common.clock import FakeClock
from sources.common.errors import AuthError, RateLimitedError, TransientError, VendorError
from sources.common.http import HttpClient, RetryPolicy, parse_retry_after
from sources.common.ratelimit import RateLimiter, Window

POLICY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02, retry_after_floor=0.5, retry_after_cap=30)


class Scripted(SimulatorServer):
    """Answers each request with the next scripted response."""

    def __init__(self, script: list[Response | str]) -> None:
        super().__init__()
        self.script = list(script)
        self.route("GET", r"/thing", self.thing)
        self.route("GET", r"/secure", self.secure)
        self.valid_token = "good-token"

    def thing(self, request: Request) -> Response:
        step = self.script.pop(0) if self.script else json_response({"ok": True})
        if step == "drop":
            from simulators.harness import _Drop

            raise _Drop()
        assert isinstance(step, Response)
        return step

    def secure(self, request: Request) -> Response:
        if request.bearer != self.valid_token:
            return json_response({"error": "expired"}, 401)
        return json_response({"ok": True})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def serve(script: list[Response | str]) -> Iterator[Scripted]:
    server = Scripted(script).start()
    try:
        yield server
    finally:
        server.stop()


def test_5xx_dropped_connections_and_truncated_json_are_retried(clock: FakeClock) -> None:
    script: list[Response | str] = [
        Response(503, "busy"),
        "drop",
        Response(200, b'{"ok": tr', content_type="application/json"),
        Response(502, "bad gateway"),
    ]
    for server in serve(script):
        client = HttpClient("test", server.url, retry=POLICY, clock=clock)
        assert client.get("/thing") == {"ok": True}
        assert server.count("/thing") == 5
        assert client.stats.retries == 4
        assert len(clock.sleeps) == 4


def test_attempts_are_bounded(clock: FakeClock) -> None:
    for server in serve([Response(500, "no")] * 10):
        client = HttpClient("test", server.url, retry=POLICY, clock=clock)
        with pytest.raises(TransientError, match="gave up"):
            client.get("/thing")
        assert server.count("/thing") == POLICY.max_attempts


@pytest.mark.parametrize(("header", "expected"), [("0", 0.5), ("5", 5.0), ("3600", 30.0)])
def test_retry_after_seconds_is_obeyed_with_floor_and_cap(clock: FakeClock, header: str, expected: float) -> None:
    for server in serve([Response(429, "slow down", headers={"Retry-After": header})]):
        limiter = RateLimiter([Window(100, 1)], clock)
        client = HttpClient("test", server.url, retry=POLICY, clock=clock, limiter=limiter)
        assert client.get("/thing") == {"ok": True}
        assert expected <= clock.sleeps[0] <= expected * 1.1 + 0.01
        assert client.stats.rate_limited == 1
        assert limiter.stats.penalties == 1


def test_retry_after_http_date(clock: FakeClock) -> None:
    when = email.utils.formatdate(clock.time() + 7, usegmt=True)
    assert parse_retry_after(when, clock, POLICY) == pytest.approx(7, abs=1)
    assert parse_retry_after("nonsense", clock, POLICY) is None


def test_rate_limit_that_never_ends_is_a_typed_error(clock: FakeClock) -> None:
    for server in serve([Response(429, "no", headers={"Retry-After": "1"})] * 10):
        client = HttpClient("test", server.url, retry=POLICY, clock=clock)
        with pytest.raises(RateLimitedError):
            client.get("/thing")


def test_vendor_errors_carry_the_vendor_message(clock: FakeClock) -> None:
    for server in serve([json_response({"error": ["from is required"]}, 400)]):
        client = HttpClient("test", server.url, retry=POLICY, clock=clock)
        with pytest.raises(VendorError, match="from is required") as raised:
            client.get("/thing")
        assert raised.value.status == 400
        assert server.count("/thing") == 1  # 4xx is not retried


class FlakyAuth:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.invalidated = 0

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.tokens[0]}"}

    def invalidate(self) -> None:
        self.invalidated += 1
        if len(self.tokens) > 1:
            self.tokens.pop(0)


def test_401_refreshes_the_token_once_and_repeats(clock: FakeClock) -> None:
    for server in serve([]):
        auth = FlakyAuth(["stale-token", "good-token"])
        client = HttpClient("test", server.url, retry=POLICY, clock=clock, auth=auth)
        assert client.get("/secure") == {"ok": True}
        assert auth.invalidated == 1
        assert server.count("/secure") == 2


def test_401_after_three_renewals_is_an_auth_error(clock: FakeClock) -> None:
    for server in serve([]):
        auth = FlakyAuth(["bad-token"])
        client = HttpClient("test", server.url, retry=POLICY, clock=clock, auth=auth)
        with pytest.raises(AuthError):
            client.get("/secure")
        assert auth.invalidated == 3
        assert server.count("/secure") == 4


def test_a_renewed_token_ended_before_its_repeat_arrives_is_renewed_again(clock: FakeClock) -> None:
    """Many requests in flight: the token renewed for this one was already ended when its repeat arrived."""
    for server in serve([]):
        auth = FlakyAuth(["stale-token", "also-ended", "good-token"])
        client = HttpClient("test", server.url, retry=POLICY, clock=clock, auth=auth)
        assert client.get("/secure") == {"ok": True}
        assert auth.invalidated == 2
        assert server.count("/secure") == 3
