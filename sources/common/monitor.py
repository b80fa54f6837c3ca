"""What a run reports while it works and at the end: progress of the whole run and per table, requests, waits.

Resources and HTTP clients report into the current monitor; the CLI picks how it is shown: on a terminal one live
line for the whole run (windows and requests done of the total, ETA of the run) and, where the terminal has room,
one line per table in flight, never wider or taller than the terminal; when piped, a line about the whole run
every few seconds; nothing in tests.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Page = TypeVar("Page")

ProgressMode = Literal["auto", "bar", "log", "off"]
log = logging.getLogger("clickhaul.progress")

LOG_EVERY_ENV = "CLICKHAUL_PROGRESS_EVERY"  # seconds between piped progress lines (default 10)
_BAR_WIDTH = 20
_TABLE_BAR_WIDTH = 12
_AFTER_EXTRACT = {"normalize": "normalizing", "load": "loading"}  # dlt's steps after the requests are done

command_began: float | None = None  # monotonic time the `clickhaul` command began (before its imports)


def mark_command_start() -> None:
    """Called first by the CLI: a run's `start` phase is the time from here to the run (imports, parsing)."""
    global command_began
    command_began = time.monotonic()


@dataclass
class TaskProgress:
    total: int | None = None
    done: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class Overview:
    """The whole run at one moment: what the live line and the piped lines say."""

    label: str
    fraction: float | None  # of the whole run, None while nothing says how much there is
    windows_done: int
    windows_total: int | None  # None: nothing has said yet
    windows_estimated: bool  # some tables have not said how many they have: the total is an estimate
    requests: int
    requests_total: int | None  # estimated from the requests per window so far
    rows: int
    tables_done: int
    tables: int | None
    eta_seconds: float | None
    waits: int
    waited_seconds: float
    step: str
    backfill: tuple[int, int] | None  # backfill windows done, of

    def text(self) -> str:
        """The most telling first, so a narrow terminal cuts the least telling: ETA, windows, requests, ..."""
        parts = []
        if self.step in _AFTER_EXTRACT:
            parts.append(_AFTER_EXTRACT[self.step])
        elif self.eta_seconds is not None:
            parts.append(f"ETA {duration(self.eta_seconds)}")
        if self.backfill:
            parts.append(f"backfill window {min(self.backfill[0] + 1, self.backfill[1])}/{self.backfill[1]}")
        about = "~" if self.windows_estimated else ""
        of_windows = f"/{about}{self.windows_total:,}" if self.windows_total is not None else ""
        parts.append(f"{self.windows_done:,}{of_windows} windows")
        of_requests = f"/~{self.requests_total:,}" if self.requests_total is not None else ""
        parts.append(f"{self.requests:,}{of_requests} requests")
        parts.append(f"{self.rows:,} rows")
        if self.tables:
            parts.append(f"{self.tables_done}/{self.tables} tables")
        if self.waits:
            parts.append(f"{self.waits} rate-limit waits ({self.waited_seconds:.0f} s)")
        return ", ".join(parts)


class RunMonitor:
    def __init__(self, mode: ProgressMode = "off", log_every_seconds: float | None = None, label: str = "") -> None:
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
        self.unchanged_rows = 0  # rows of windows read again exactly as the last scheduled run loaded them
        self.label = label  # what runs: the vendor's name
        self.expected_tables: int | None = None
        self.backfill: list[int] | None = None  # [done, total] windows of a backfill
        self.step = ""
        self.request_seconds = 0.0  # wall time with at least one request on the wire
        self.phases: dict[str, float] = {}  # seconds of each phase of the run, in order (see `phase`)
        self._in_flight = 0
        self._in_flight_since = 0.0
        self._lock = threading.Lock()
        self._began = time.monotonic()
        global command_began
        if command_began is not None and label:  # the command's first run: its start-up is this run's
            self.phases["start"] = self._began - command_began
            command_began = None
        self._window_began = self._began
        self._requests_before_window = 0
        self._finished_windows: list[tuple[float, int]] = []  # (seconds, requests) of finished backfill windows
        self._rows_before = 0  # rows of finished backfill windows
        self._closed = threading.Event()
        self._live: Any = None
        self._ticker: threading.Thread | None = None
        if log_every_seconds is None:
            log_every_seconds = float(os.environ.get(LOG_EVERY_ENV) or 10.0)
        self._log_every = log_every_seconds
        if mode == "bar":
            self._start_live()
        elif mode == "log":
            self._ticker = threading.Thread(target=self._log_periodically, name="clickhaul-progress", daemon=True)
            self._ticker.start()

    # -- what runs report ---------------------------------------------------------------------------------
    def count(self, **counts: float) -> None:
        """HTTP clients and limiters report here as they work; whichever run is current gets the counts."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    @contextmanager
    def request_in_flight(self) -> Iterator[None]:
        """Around one request on the wire. Requests overlap (workers), so what adds up is the time during which
        at least one is in flight: the part of a run the vendor's answers take."""
        with self._lock:
            if not self._in_flight:
                self._in_flight_since = time.monotonic()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self.request_seconds += time.monotonic() - self._in_flight_since

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Times a phase of the run (setup, extract, normalize, load, summary, journal): where a run's time goes."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.add_phase(name, time.monotonic() - began)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def plan(self, *, tables: int | None = None, windows: int | None = None, done: int = 0) -> None:
        """What the run will do as far as it is known up front: `tables` selected; a backfill's `windows`."""
        with self._lock:
            if tables is not None:
                self.expected_tables = tables
            if windows is not None:
                self.backfill = [done, windows]

    def task(self, name: str, total: int | None) -> None:
        with self._lock:
            task = self.tasks.setdefault(name, TaskProgress())
            task.total = (task.total or 0) + (total or 0) if total is not None else task.total

    def advance(self, name: str, windows: int = 1, rows: int = 0) -> None:
        with self._lock:
            task = self.tasks.setdefault(name, TaskProgress())
            task.done += windows
            task.rows += rows

    def counted(self, name: str, pages: Iterable[Page]) -> Iterator[Page]:
        """The pages of one window of task `name`, their rows counted as they pass, the window when they end."""
        for page in pages:
            self.advance(name, windows=0, rows=rows_in(page))
            yield page
        self.advance(name)

    def window_done(self) -> None:
        """A backfill window is loaded: its tables start again at zero in the next one."""
        with self._lock:
            if self.backfill is not None:
                self.backfill[0] += 1
            now = time.monotonic()
            self._finished_windows.append((now - self._window_began, self.requests - self._requests_before_window))
            self._window_began, self._requests_before_window = now, self.requests
            self._rows_before += sum(task.rows for task in self.tasks.values())
            self.tasks.clear()

    def step_started(self, step: str) -> None:
        """dlt's step (extract, normalize, load): after extraction the ETA has nothing left to count."""
        if step in ("extract", *_AFTER_EXTRACT):
            with self._lock:
                self.step = step

    @property
    def rate_limit_waits(self) -> tuple[int, float]:
        return self.waits + self.rate_limited, self.waited_seconds

    def rows_so_far(self) -> int:
        """Rows read so far (call with the lock held)."""
        return self._rows_before + sum(task.rows for task in self.tasks.values())

    # -- the whole run --------------------------------------------------------------------------------------
    def overview(self) -> Overview:
        with self._lock:
            tasks = [task for task in self.tasks.values() if task.total is not None]
            registered = sum(task.total or 0 for task in tasks)
            done = sum(task.done for task in self.tasks.values())
            extracting = self.step not in _AFTER_EXTRACT
            estimated = float(registered)
            if tasks and self.expected_tables and len(tasks) < self.expected_tables and extracting:
                # Tables still waiting for a worker have not said how much they have: assume the average so far.
                estimated += (self.expected_tables - len(tasks)) * registered / len(tasks)
            inner = done / estimated if estimated else (None if extracting else 1.0)
            if inner is not None:
                inner = min(1.0, inner)
            now = time.monotonic()
            fraction: float | None
            if self.backfill is not None:
                windows_done, windows_all = self.backfill
                fraction = (windows_done + (inner or 0.0)) / windows_all if windows_all else 1.0
                elapsed = now - self._began
                per_window = [seconds for seconds, _ in self._finished_windows]
                if per_window and inner is None:
                    eta: float | None = sum(per_window) / len(per_window) * (windows_all - windows_done)
                else:
                    eta = elapsed * (1 - fraction) / fraction if fraction else None
            else:
                fraction = inner
                elapsed = now - self._began
                eta = elapsed * (1 - fraction) / fraction if fraction else None
            requests_total = round(self.requests / fraction) if fraction and self.requests else None
            return Overview(
                label=self.label,
                fraction=fraction,
                windows_done=done,
                windows_total=round(estimated) if tasks else None,
                windows_estimated=bool(tasks) and estimated > registered,
                requests=self.requests,
                requests_total=requests_total if fraction and fraction < 1 else None,
                rows=self.rows_so_far(),
                tables_done=(
                    sum(1 for task in tasks if task.finished) if extracting else (self.expected_tables or len(tasks))
                ),
                tables=self.expected_tables if self.expected_tables is not None else (len(tasks) or None),
                eta_seconds=eta,
                waits=self.waits + self.rate_limited,
                waited_seconds=self.waited_seconds,
                step=self.step,
                backfill=(self.backfill[0], self.backfill[1]) if self.backfill else None,
            )

    def lines(self, width: int, height: int) -> list[str]:
        """What a terminal of `width` x `height` shows: the run's line first, then tables in flight while they
        fit (the last line says how many more), each cut to the width, so nothing wraps or scrolls away."""
        overview = self.overview()
        bar = ""
        if overview.fraction is not None:
            size = min(_BAR_WIDTH, max(6, width // 8))
            filled = round(size * overview.fraction)
            bar = "━" * filled + "╺" + "─" * (size - filled - 1) if filled < size else "━" * size
            bar = f"{bar} {overview.fraction:.0%} "
        head = f"{overview.label + ': ' if overview.label else ''}{bar}{overview.text()}"
        lines = [fit(head, width)]
        room = height - 2  # the run's line, and one line the shell's cursor sits on
        with self._lock:
            active = [(name, task) for name, task in self.tasks.items() if not task.finished]
        if room < 1 or not active:
            return lines[: max(1, height - 1)]
        shown = active if len(active) <= room else active[: room - 1]
        name_width = min(24, max(len(name) for name, _ in shown))
        for name, task in shown:
            share = task.done / task.total if task.total else 0.0
            filled = round(_TABLE_BAR_WIDTH * share)
            table_bar = "━" * filled + "─" * (_TABLE_BAR_WIDTH - filled)
            of = f"/{task.total:,}" if task.total is not None else ""
            detail = f"  {name[:name_width]:<{name_width}} {table_bar} {task.done:,}{of}  {task.rows:,} rows"
            lines.append(fit(detail, width))
        if len(shown) < len(active):
            lines.append(fit(f"  ... and {len(active) - len(shown)} more tables in flight", width))
        return lines

    # -- showing it -----------------------------------------------------------------------------------------
    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        monitor = self

        class Lines:
            def __rich_console__(self, console: Any, options: Any) -> Any:
                from rich.text import Text

                height = options.max_height or console.size.height
                for line in monitor.lines(options.max_width, height):
                    yield Text(line, no_wrap=True, overflow="crop")

        self._live = Live(Lines(), console=console, refresh_per_second=4, transient=True, redirect_stdout=False)
        self._live.start()

    def _log_periodically(self) -> None:
        while not self._closed.wait(self._log_every):
            overview = self.overview()
            if overview.windows_done or overview.requests:
                log.info("%s%s", f"{overview.label}: " if overview.label else "", overview.text())

    def close(self) -> None:
        self._closed.set()
        if self._live is not None:
            self._live.stop()
            self._live = None


def fit(text: str, width: int) -> str:
    """One terminal line: never wider than the terminal (a wrapped line is a line the display cannot erase)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


_current = RunMonitor("off")


def rows_in(page: Any) -> int:
    """Rows of a page: an Arrow table, a list of rows, or either inside dlt's hints."""
    page = getattr(page, "data", page)
    return int(page.num_rows) if hasattr(page, "num_rows") else len(page) if isinstance(page, list) else 1


def current_monitor() -> RunMonitor:
    return _current


def set_monitor(monitor: RunMonitor) -> RunMonitor:
    """Install `monitor` for the run; returns the previous one so callers can restore it."""
    global _current
    previous, _current = _current, monitor
    return previous
