"""Helpers the Matomo tests and the chaos suite share: what the simulator holds, and pushes in a child process
that can be SIGKILLed."""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from destinations.matomo import MatomoConfig, push_table
from simulators.matomo import MatomoSimulator
from sources.common.http import RetryPolicy


def stored_urls(simulator: MatomoSimulator) -> collections.Counter[str]:
    return collections.Counter(hit.params["url"] for hit in simulator.stored())


def exactly_once(simulator: MatomoSimulator, expected: list[str]) -> tuple[int, int]:
    """(hits missing, hits doubled) compared with `expected` URLs, one hit each."""
    counts, wanted = stored_urls(simulator), set(expected)
    missing = sum(1 for url in wanted if counts[url] == 0)
    doubled = sum(count - 1 for count in counts.values() if count > 1)
    return missing, doubled + sum(count for url, count in counts.items() if url not in wanted)


def _push(database: str, table: str, config: MatomoConfig, retry: RetryPolicy | None) -> None:
    push_table(database, table, config=config, retry=retry)


def forked_push(database: Path, table: str, config: MatomoConfig, retry: RetryPolicy | None) -> Any:
    """`push_table` in a forked child (no interpreter start-up to pay); the caller may SIGKILL it."""
    context: Any = multiprocessing.get_context("fork")
    process = context.Process(target=_push, args=(str(database), table, config, retry), daemon=True)
    process.start()
    return process


def kill_when(process: Any, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """SIGKILL `process` as soon as `condition()` holds; False when the process ended first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_alive():
            return False
        if condition():
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=30)
            return True
        time.sleep(0.002)
    raise AssertionError("the push neither ended nor reached the moment to kill it")
