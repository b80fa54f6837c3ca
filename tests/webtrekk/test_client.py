"""The JSON-RPC client against the simulator over HTTP: errors, tokens, and the simulator's rate limits."""

from __future__ import annotations

import json

import httpx
import pytest

from simulators.webtrekk import ENDPOINT, WebtrekkSimulator
from sources.common.clock import FakeClock
from sources.common.errors import AuthError, RateLimitedError
from sources.common.http import TokenExpired
from sources.webtrekk.client import JsonRpcError, WebtrekkClient
from tests.support.webtrekk import FAST_LIMITS


def client_for(simulator: WebtrekkSimulator, **kwargs: object) -> WebtrekkClient:
    data = simulator.data
    options: dict = {"rate_limits": FAST_LIMITS, **kwargs}
    return WebtrekkClient(simulator.url + ENDPOINT, data.customer_id, data.login, data.password, **options)


def test_every_error_body_becomes_a_typed_exception(simulator: WebtrekkSimulator) -> None:
    client = client_for(simulator)
    with pytest.raises(JsonRpcError) as raised:
        client.call("exportData", {"type": "no_such_type", "startRow": 1, "endRow": 10})
    error = raised.value
    assert (error.name, error.code, error.method) == ("JSONRPCError", 501, "exportData")
    assert "Unknown export type" in error.vendor_message and "no_such_type" in str(error)
    with pytest.raises(JsonRpcError, match="startDate and endDate are mandatory"):
        client.call("exportData", {"type": "content_categories_time", "startRow": 1, "endRow": 10})
    with pytest.raises(JsonRpcError, match="Report not found"):
        client.call("getReportData", {"report_name": "nope"})
    # Shapes the vendor's documents show besides the usual one: `code` beside `error`, an error string, nothing.
    with pytest.raises(JsonRpcError) as raised:
        client.check("x", {"version": "1.1", "error": {"name": "JSONRPCError", "message": "Bad"}, "code": 501})
    assert raised.value.code == 501
    with pytest.raises(JsonRpcError, match="Bad things"):
        client.check("x", {"version": "1.1", "error": "Bad things"})
    with pytest.raises(JsonRpcError, match="neither"):
        client.check("x", {"version": "1.1"})
    with pytest.raises(JsonRpcError, match="not a JSON-RPC object"):
        client.check("x", ["a"])
    with pytest.raises(TokenExpired):
        client.check("x", {"error": {"name": "JSONRPCError", "message": "Authorization failed", "code": 501}})
    with pytest.raises(RateLimitedError) as limited:
        client.check("x", {"error": {"message": "To many requests (120) within 600 seconds."}, "code": 501})
    assert limited.value.retry_after == 600.0  # not one of our windows: the server's word
    client.close()
    scaled = client_for(simulator, rate_limits=[[5, 0.5], [120, 30]])
    with pytest.raises(RateLimitedError) as limited:
        scaled.check("x", {"error": {"message": "To many requests (120) within 600 seconds."}, "code": 501})
    assert limited.value.retry_after == 30.0  # the matching window of ours


def test_bad_credentials_are_an_auth_error(simulator: WebtrekkSimulator) -> None:
    data = simulator.data
    client = WebtrekkClient(
        simulator.url + ENDPOINT, data.customer_id, data.login, "wrong-password", rate_limits=FAST_LIMITS
    )
    with pytest.raises(AuthError, match="customer_id"):
        client.call("getCustomReportsList")
    assert "wrong-password" not in json.dumps([r.query for r in simulator.requests])


def test_token_is_reused_and_renewed_once_when_it_expires(simulator: WebtrekkSimulator) -> None:
    client = client_for(simulator)
    for _ in range(3):
        assert client.call("getDynamicTimeIntervalList")
    assert simulator.logins == 1
    simulator.expire_tokens_after(0)
    assert client.call("getCustomReportsList")  # refused once, fresh login, same call again
    assert simulator.logins == 2
    assert simulator.calls.count("getCustomReportsList") == 1  # the refused attempt never reached the method
    client.close()
    assert simulator.logouts == 1


def test_tokens_die_after_the_idle_time(data) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    simulator = WebtrekkSimulator(data, rate_limits=FAST_LIMITS, token_idle_seconds=3600, clock=clock.monotonic)
    with simulator:
        client = client_for(simulator)
        client.call("getCustomReportsList")
        clock.advance(3000)
        client.call("getCustomReportsList")  # used within the hour: still valid, and valid for another hour
        clock.advance(3000)
        client.call("getCustomReportsList")
        assert simulator.logins == 1
        clock.advance(3601)
        client.call("getCustomReportsList")
        assert simulator.logins == 2
        client.close()


def post(url: str, method: str) -> httpx.Response:
    return httpx.post(url + ENDPOINT, json={"version": "1.1", "method": method, "params": {}})


def test_simulator_enforces_both_windows_and_the_penalty(data) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(0.0)
    simulator = WebtrekkSimulator(data, rate_limits=[(3, 1.0)], clock=clock.monotonic)
    with simulator:
        url = simulator.url
        assert [post(url, "getConnectionTest").json().get("result") for _ in range(3)] == ["Connection successful"] * 3
        refused = post(url, "getConnectionTest")
        assert refused.status_code == 200  # refusals come with HTTP 200
        assert refused.headers["content-type"] == "application/x-www-form-urlencoded"
        assert refused.json() == {
            "version": "1.1",
            "error": {"name": "JSONRPCError", "message": "To many requests (3) within 1 seconds."},
            "code": 501,
        }
        clock.advance(0.9)
        for _ in range(3):  # still sending fast: stays tripped
            assert "error" in post(url, "getConnectionTest").json()
        clock.advance(0.15)  # a full period since the last accepted request: one gets through...
        assert post(url, "getConnectionTest").json()["result"]
        assert "error" in post(url, "getConnectionTest").json()  # ...and only one per period
        clock.advance(2.0)  # the rate is back under the limit
        assert [post(url, "getConnectionTest").json().get("result") for _ in range(3)] == ["Connection successful"] * 3

    clock = FakeClock(0.0)
    simulator = WebtrekkSimulator(data, rate_limits=[(2, 1.0), (4, 10.0)], clock=clock.monotonic)
    with simulator:
        url = simulator.url
        assert [("result" in post(url, "getConnectionTest").json()) for _ in range(3)] == [True, True, False]
        clock.advance(1.5)
        assert "result" in post(url, "getConnectionTest").json()
        clock.advance(1.5)
        # the request refused by the short-term limit counts for the long-term one: 4 within 10 s trips it
        assert post(url, "getConnectionTest").json()["error"]["message"] == "To many requests (4) within 10 seconds."
        assert simulator.refusals == 2
