from __future__ import annotations

import threading

import pytest

from sources.common.clock import FakeClock
from sources.common.errors import ConfigError
from sources.common.ratelimit import RateLimiter, Window, parse_windows


def send_times(limiter: RateLimiter, clock: FakeClock, count: int, latency: float = 0.0) -> list[float]:
    times = []
    for _ in range(count):
        slot = limiter.acquire()
        times.append(clock.monotonic())
        clock.advance(latency)
        limiter.release(slot)
    return times


def max_in_window(times: list[float], seconds: float) -> int:
    return max(sum(1 for t in times if start <= t < start + seconds) for start in times)


def test_two_windows_hold_at_once_and_use_the_full_allowance() -> None:
    clock = FakeClock()
    limiter = RateLimiter([Window(5, 10), Window(120, 600)], clock)
    origin = clock.monotonic()
    times = [t - origin for t in send_times(limiter, clock, 300, latency=0.01)]
    assert max_in_window(times, 10) <= 5
    assert max_in_window(times, 600) <= 120
    # 120 in the first ~240 s (5 per 10 s), then the long window binds until 600 s after the first request.
    assert times[119] < 250
    assert 600 <= times[120] < 601
    assert limiter.stats.waits > 0


def test_slot_is_stamped_when_the_answer_arrives() -> None:
    clock = FakeClock()
    limiter = RateLimiter([Window(1, 10)], clock)
    origin = clock.monotonic()
    times = [t - origin for t in send_times(limiter, clock, 2, latency=3.0)]
    # The first answer came 3 s after sending; the server may have counted it that late.
    assert times[1] - times[0] >= 13.0


def test_penalty_blocks_everyone_for_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter([Window(100, 10)], clock)
    limiter.penalize(600)
    start = clock.monotonic()
    limiter.release(limiter.acquire())
    assert clock.monotonic() - start >= 600


def test_threads_share_one_limiter() -> None:
    limiter = RateLimiter([Window(4, 0.2)])
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            with limiter.slot(), lock:
                stamps.append(limiter.clock.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stamps) == 12
    assert max_in_window(sorted(stamps), 0.2) <= 4


@pytest.mark.parametrize("pairs", [[[0, 10]], [[5]], [[5, -1]], ["5/10"]])
def test_bad_rate_limit_config_is_a_config_error(pairs: list) -> None:
    with pytest.raises(ConfigError, match="rate"):
        parse_windows(pairs)


def test_parse_windows() -> None:
    assert parse_windows([[5, 10], [120, 600]]) == [Window(5, 10.0), Window(120, 600.0)]
