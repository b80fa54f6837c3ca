"""Work a source needs but must not do while it is being defined.

Defining a source happens when a DAG file is parsed (Airflow does that every 30 seconds) or when the CLI builds a
backfill window; requests belong to extraction. `Once` runs its function on first use, once for all threads,
and gives every later caller the same value, or the same error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Once(Generic[T]):
    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def __call__(self) -> T:
        with self._lock:
            if not self._done:
                try:
                    self._value = self._compute()
                except BaseException as error:
                    self._error = error
                self._done = True
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class SharedUse:
    """Counts the resources of a run that use one client: the first to start and the last to finish (or fail) run
    the hooks — a logout, a usage report — once, however the resources are scheduled."""

    def __init__(self, on_first: Callable[[], None] | None = None, on_last: Callable[[], None] | None = None) -> None:
        self._on_first = on_first
        self._on_last = on_last
        self._active = 0
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[None]:
        with self._lock:
            if self._active == 0 and self._on_first is not None:
                self._on_first()
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                last = self._active == 0
            if last and self._on_last is not None:
                self._on_last()
