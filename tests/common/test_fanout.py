"""fan_out: every item once, parallel for real, the first error wins, an early close stops the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sources.common.fanout import fan_out


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
