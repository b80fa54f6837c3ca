"""Work a source needs but must not do while it is being defined.

Defining a source happens when a DAG file is parsed (Airflow does that every 30 seconds) or when the CLI builds a
backfill window; requests belong to extraction. `Once` runs its function on first use, once for all threads,
and gives every later caller the same value, or the same error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
