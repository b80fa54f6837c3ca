"""fan_out: every item once, parallel for real, the first error wins, an early close stops the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sources.common.fanout import fan_out, read_ahead


def pages(job: int) -> Iterator[tuple[int, int]]:
    for page in range(job % 5):
        time.sleep(0.001)
        yield job, page


@pytest.mark.parametrize("workers", [1, 2, 8])
def test_every_item_exactly_once(workers: int) -> None:
    items = list(fan_out(list(range(60)), pages, workers, "test"))
    assert sorted(items) == sorted(item for job in range(60) for item in pages(job))


def test_jobs_run_at_once() -> None:
    started = threading.Barrier(4, timeout=5)  # breaks (and fails the job) unless four jobs wait at once

    def read(job: int) -> Iterator[int]:
        started.wait()
        yield job

    assert sorted(fan_out([1, 2, 3, 4], read, 4, "test")) == [1, 2, 3, 4]


def test_a_failing_job_ends_the_iteration_with_its_error() -> None:
    def read(job: int) -> Iterator[int]:
        yield job
        if job == 7:
            raise ValueError("job 7 failed")

    with pytest.raises(ValueError, match="job 7 failed"):
        list(fan_out(list(range(50)), read, 4, "test"))


def test_closing_early_stops_the_workers() -> None:
    produced: list[int] = []

    def read(job: int) -> Iterator[int]:
        for page in range(1000):
            produced.append(page)
            yield page

    items = fan_out(list(range(20)), read, 4, "test")
    first = [next(items) for _ in range(5)]
    assert len(first) == 5
    items.close()
    settled = len(produced)
    time.sleep(0.2)
    assert len(produced) == settled, "workers kept reading after the consumer stopped"
    assert settled < 20 * 1000
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("test")]


def test_read_ahead_keeps_order_and_fetches_the_next_item_while_this_one_is_used() -> None:
    fetched: list[int] = []

    def walk() -> Iterator[int]:
        for page in range(5):
            fetched.append(page)
            yield page

    items = read_ahead(walk(), "test")
    assert next(items) == 0
    deadline = time.monotonic() + 5
    while len(fetched) < 2 and time.monotonic() < deadline:  # the caller still holds page 0
        time.sleep(0.01)
    assert fetched[:2] == [0, 1]
    assert [0, *items] == [0, 1, 2, 3, 4]


def test_read_ahead_raises_the_walks_error() -> None:
    def walk() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 failed")

    with pytest.raises(ValueError, match="page 2 failed"):
        list(read_ahead(walk(), "test"))


def test_on_stop_wakes_a_job_blocked_inside_read() -> None:
    """A job waiting on the server (no item to hand over) is woken by on_stop when another job fails."""
    woken = threading.Event()

    def read(job: int) -> Iterator[int]:
        if job == 0:
            raise ValueError("job 0 failed")
        woken.wait(30)  # blocks until on_stop; without it the iteration would end only after 30 s
        yield job

    began = time.monotonic()
    with pytest.raises(ValueError, match="job 0 failed"):
        list(fan_out([0, 1], read, 2, "test", on_stop=woken.set))
    assert woken.is_set() and time.monotonic() - began < 5


def test_on_stop_is_not_called_when_every_job_ends() -> None:
    stops: list[bool] = []
    assert sorted(fan_out([1, 2, 3], lambda job: [job], 3, "test", on_stop=lambda: stops.append(True))) == [1, 2, 3]
    assert stops == []


def test_no_job_starts_after_a_failure() -> None:
    started: list[int] = []
    both = threading.Barrier(2, timeout=5)  # jobs 0 and 1 run at once; job 0 fails while job 1 holds its worker

    def read(job: int) -> Iterator[int]:
        started.append(job)
        if job < 2:
            both.wait()
        if job == 0:
            raise ValueError("job 0 failed")
        time.sleep(0.2)
        yield job

    with pytest.raises(ValueError, match="job 0 failed"):
        list(fan_out(list(range(10)), read, 2, "test"))
    assert sorted(started) == [0, 1]
