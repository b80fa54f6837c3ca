"""What a run reports while it works and at the end: progress per resource, requests, rate-limit waits.

Resources and HTTP clients report into the current monitor; the CLI picks how it is shown (a live line on a
terminal, periodic log lines for schedulers, nothing in tests).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

ProgressMode = Literal["auto", "bar", "log", "off"]
log = logging.getLogger("clickhaul.progress")


@dataclass
class TaskProgress:
    total: int | None = None
    done: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)

    def eta_seconds(self) -> float | None:
        if not self.total or not self.done:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)


class RunMonitor:
    def __init__(self, mode: ProgressMode = "off", log_every_seconds: float = 10.0) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.tasks: dict[str, TaskProgress] = {}
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.waits = 0
        self.waited_seconds = 0.0
        self.misfits = 0  # values kept as text because they no longer fit their declared type
        self._lock = threading.Lock()
        self._log_every = log_every_seconds
        self._last_log = 0.0
        self._bar: Any = None
        self._bar_tasks: dict[str, Any] = {}
        if mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rows]:>9} rows"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()

    def count(self, **counts: float) -> None:
        """HTTP clients and limiters report here as they work; whichever run is current gets the counts."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def task(self, name: str, total: int | None) -> None:
        with self._lock:
            task = self.tasks.setdefault(name, TaskProgress())
            task.total = (task.total or 0) + (total or 0) if total is not None else task.total
            if self._bar is not None:
                if name not in self._bar_tasks:
                    self._bar_tasks[name] = self._bar.add_task(name, total=task.total, rows=0)
                else:
                    self._bar.update(self._bar_tasks[name], total=task.total)

    def advance(self, name: str, windows: int = 1, rows: int = 0) -> None:
        with self._lock:
            task = self.tasks.setdefault(name, TaskProgress())
            task.done += windows
            task.rows += rows
            if self._bar is not None and name in self._bar_tasks:
                self._bar.update(self._bar_tasks[name], completed=task.done, rows=task.rows)
            elif self.mode == "log" and time.monotonic() - self._last_log >= self._log_every:
                self._last_log = time.monotonic()
                eta = task.eta_seconds()
                log.info(
                    "%s: %s/%s windows, %d rows, %d requests, %d rate-limit waits (%.0f s)%s",
                    name,
                    task.done,
                    task.total or "?",
                    task.rows,
                    self.requests,
                    self.waits + self.rate_limited,
                    self.waited_seconds,
                    f", ETA {eta:.0f} s" if eta is not None else "",
                )

    @property
    def rate_limit_waits(self) -> tuple[int, float]:
        return self.waits + self.rate_limited, self.waited_seconds

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


_current = RunMonitor("off")


def current_monitor() -> RunMonitor:
    return _current


def set_monitor(monitor: RunMonitor) -> RunMonitor:
    """Install `monitor` for the run; returns the previous one so callers can restore it."""
    global _current
    previous, _current = _current, monitor
    return previous
