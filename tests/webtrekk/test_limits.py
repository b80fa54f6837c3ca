"""A run under scaled-down limits: zero refusals, and at least 90 % of the allowed rate, counted by the server."""

from __future__ import annotations

from collections.abc import Callable

from simulators.webtrekk import WebtrekkSimulator
from tests.support import Loader

SHORT, LONG = (5, 0.25), (20, 3.0)  # the documented 5 / 10 s and 120 / 600 s, scaled down


def test_run_never_trips_the_limits_and_uses_at_least_90_percent_of_them(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    simulator.set_rate_limits([SHORT, LONG])
    # Small pages keep each answer quick, so what is measured is the pacing, not the time to build a page.
    run = loader(limits=[SHORT, LONG], export_types=["media_categories"], export_page_size=8)
    summary = run.run(resources="export_media_categories")
    assert summary.rows == {"export_media_categories": 400}

    assert simulator.refusals == 0
    times = simulator.accepted_times()
    assert len(times) == 50 + 1 + 1 + 1  # 50 full pages, the empty page after them, login, logout
    for requests, seconds in (SHORT, LONG):  # never more than `requests` within any `seconds`
        assert all(later - earlier >= seconds for earlier, later in zip(times, times[requests:], strict=False))
    # Every page was waiting to be fetched, so each request was held back by the long window: the time N requests
    # take (from request i to request i+N) shows the rate used. At full use it is the window itself.
    requests, seconds = LONG
    data_requests = times[:-1]  # the logout at the end waits for nothing
    spans = [later - earlier for earlier, later in zip(data_requests, data_requests[requests:], strict=False)]
    used = seconds / (sum(spans) / len(spans))
    assert used >= 0.9, f"{used:.0%} of the allowed rate ({requests} requests / {seconds} s)"
