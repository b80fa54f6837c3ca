"""Client-side rate limiting over several sliding windows at once (e.g. 5 / 10 s and 120 / 600 s).

Written here rather than taken from a library because the vendors count requests in ways a token bucket does
not model: Webtrekk counts every request in a sliding window on its side, and a request sent the instant the
oldest one leaves the client's window can still land inside the server's. So each request's slot is stamped
with the time its answer arrived (the server saw it before that), and a server refusal blocks every caller
for the window it names. One limiter is shared by all threads of a vendor.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigError
from .monitor import current_monitor

_PENDING_POLL_SECONDS = 0.005


@dataclass(frozen=True)
class Window:
    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds <= 0:
            raise ConfigError(
                f"rate limit window {self.requests} requests / {self.seconds} s is invalid: "
                "both numbers must be positive"
            )


def parse_windows(pairs: Sequence[Sequence[float]] | None) -> list[Window]:
    """Read config like `[[5, 10], [120, 600]]` (requests, seconds)."""
    windows = []
    for pair in pairs or ():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(
                f"rate_limits entry {pair!r} is invalid: write pairs of [requests, seconds], "
                "e.g. rate_limits = [[5, 10], [120, 600]]"
            )
        windows.append(Window(int(pair[0]), float(pair[1])))
    return windows


@dataclass
class _Slot:
    stamp: float | None = None  # None while the request is in flight


@dataclass
class LimiterStats:
    waits: int = 0
    waited_seconds: float = 0.0
    penalties: int = 0


@dataclass
class RateLimiter:
    windows: Sequence[Window]
    clock: Clock = SYSTEM_CLOCK
    stats: LimiterStats = field(default_factory=LimiterStats)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: deque[_Slot] = deque()
        self._blocked_until = 0.0
        self._horizon = max((w.seconds for w in self.windows), default=0.0)

    def acquire(self) -> _Slot:
        """Block until every window has room, then take a slot."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay(self.clock.monotonic())
                if delay <= 0:
                    slot = _Slot()
                    self._slots.append(slot)
                    if waited:
                        self.stats.waits += 1
                        self.stats.waited_seconds += waited
                        current_monitor().count(waits=1, waited_seconds=waited)
                    return slot
            self.clock.sleep(delay)
            waited += delay

    def release(self, slot: _Slot) -> None:
        with self._lock:
            slot.stamp = self.clock.monotonic()

    @contextmanager
    def slot(self) -> Iterator[None]:
        taken = self.acquire()
        try:
            yield
        finally:
            self.release(taken)

    def penalize(self, seconds: float) -> None:
        """The server refused: nobody sends for `seconds`."""
        with self._lock:
            self.stats.penalties += 1
            self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def _delay(self, now: float) -> float:
        while self._slots and self._slots[0].stamp is not None and self._slots[0].stamp <= now - self._horizon:
            self._slots.popleft()
        delay = self._blocked_until - now
        for window in self.windows:
            recent = [s.stamp for s in self._slots if s.stamp is None or s.stamp > now - window.seconds]
            excess = len(recent) - window.requests + 1
            if excess <= 0:
                continue
            finished = sorted(stamp for stamp in recent if stamp is not None)
            if len(finished) >= excess:
                delay = max(delay, finished[excess - 1] + window.seconds - now)
            else:
                delay = max(delay, _PENDING_POLL_SECONDS)
        return delay
