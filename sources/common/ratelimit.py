"""Client-side rate limiting over several sliding windows at once (e.g. 5 / 10 s and 120 / 600 s).

Written here rather than taken from a library because the vendors count requests in ways a token bucket does
not model: Webtrekk counts every request in a sliding window on its side, and a request sent the instant the
oldest one leaves the client's window can still land inside the server's. So each request's slot is stamped
with the time its answer arrived (the server saw it before that), and a server refusal blocks every caller
for the window it names. One limiter is shared by all threads of a vendor.

The next process must not pay for what this one did: `clickhaul check` and then `clickhaul run` on the same
account are one sender to the vendor. So a limiter on the system clock keeps the recent request times of its
account in a small file under dlt's data directory (`RateMemory`), and starts from them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import itertools
import json
import logging
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import SYSTEM_CLOCK, Clock, SystemClock
from .errors import ConfigError
from .monitor import current_monitor

log = logging.getLogger("clickhaul.ratelimit")

_PENDING_POLL_SECONDS = 0.005
MEMORY_ENV = "CLICKHAUL_RATE_LIMIT_MEMORY"  # "off": every process starts with an empty limiter


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
    ticket: str | None = None  # its entry in the shared memory, if any


class RateMemory:
    """Recent request times (wall clock) of one account, shared by every process through one small JSON file:
    `{"requests": [[time, pid], ...], "blocked_until": time}`. Read and written under an exclusive lock, replaced
    atomically; entries older than the longest window are dropped on every write."""

    def __init__(self, path: Path, horizon: float) -> None:
        self.path = path
        self.horizon = horizon
        self.pid = os.getpid()

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    data = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    data = {}
                yield data if isinstance(data, dict) else {}
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, data: dict[str, Any], now: float) -> None:
        horizon = now - self.horizon - IN_FLIGHT_SECONDS
        data["requests"] = [entry for entry in data.get("requests") or [] if float(entry[0]) > horizon]
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".ratelimit-")
        with os.fdopen(handle, "w") as file:
            json.dump(data, file)
        os.replace(temporary, self.path)

    def reserve(self, decide: Callable[[list[float | None], float], float], now: float) -> tuple[float, str | None]:
        """Decide and take a slot in one step under the file's lock, so two processes can never both take the last
        room in a window. `decide(others, blocked_until)` gets the other processes' requests (their answer times;
        None while in flight) and returns the delay; at zero a request of this process is entered as in flight,
        and its ticket returned for `finish`."""
        try:
            with self._locked() as data:
                others: list[float | None] = []
                for entry in data.get("requests") or []:
                    sent, pid = float(entry[0]), entry[1]
                    done = entry[3] if len(entry) > 3 else sent  # [time, pid]: an earlier version's answer time
                    if pid == self.pid or sent <= now - self.horizon - IN_FLIGHT_SECONDS:
                        continue
                    if done is None and sent < now - IN_FLIGHT_SECONDS:
                        done = sent + IN_FLIGHT_SECONDS  # its process died mid-request: counted as answered then
                    others.append(None if done is None else float(done))
                delay = decide(others, float(data.get("blocked_until") or 0.0))
                if delay > 0:
                    return delay, None
                ticket = f"{self.pid}-{next(_tickets)}"
                data.setdefault("requests", []).append([now, self.pid, ticket, None])
                self._write(data, now)
                return delay, ticket
        except OSError as error:  # a read-only home, a full disk: pacing goes on with what this process knows
            log.debug("rate-limit memory %s unusable: %s", self.path, error)
            return decide([], 0.0), None

    def finish(self, ticket: str, stamp: float) -> None:
        """The answer to a reserved request arrived at `stamp`: from then on it counts in every window."""

        def answered(data: dict[str, Any]) -> None:
            for entry in data.get("requests") or []:
                if len(entry) > 3 and entry[2] == ticket:
                    entry[3] = stamp

        self._update(answered, stamp)

    def record(self, stamp: float | None = None, blocked_until: float | None = None, now: float = 0.0) -> None:
        def change(data: dict[str, Any]) -> None:
            if stamp is not None:
                data.setdefault("requests", []).append([stamp, self.pid, None, stamp])
            if blocked_until is not None:
                data["blocked_until"] = max(float(data.get("blocked_until") or 0.0), blocked_until)

        self._update(change, now)

    def _update(self, change: Callable[[dict[str, Any]], Any], now: float) -> None:
        try:
            with self._locked() as data:
                change(data)
                self._write(data, now)
        except OSError as error:
            log.debug("rate-limit memory %s not written: %s", self.path, error)


IN_FLIGHT_SECONDS = 300.0  # a request of another process unanswered for longer: its process is gone
_tickets = itertools.count()


def memory_path(*identity: object) -> Path:
    """`<dlt data dir>/clickhaul/ratelimits/<hash of the account>.json`: the hash keeps secrets out of the name."""
    from dlt.common.runtime import run_context

    digest = hashlib.sha256(repr(identity).encode()).hexdigest()[:32]
    return Path(run_context.active().data_dir) / "clickhaul" / "ratelimits" / f"{digest}.json"


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
    # What identifies the account beyond the vendor and host (Webtrekk counts per user): part of the memory key.
    account: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: deque[_Slot] = deque()
        self._blocked_until = 0.0
        self._horizon = max((w.seconds for w in self.windows), default=0.0)
        self.memory: RateMemory | None = None

    def remember(self, vendor: str, base_url: str) -> None:
        """Share the account's recent requests with other processes (system clock only: a test's fake clock
        has no meaning outside its process)."""
        if self.memory is not None or not self.windows or not isinstance(self.clock, SystemClock):
            return
        if os.environ.get(MEMORY_ENV, "").strip().lower() in ("off", "0", "false", "no"):
            return
        self.memory = RateMemory(memory_path(vendor, base_url, *self.account), self._horizon)

    def _decide(self, now: float, wall: float, others: list[float | None], blocked_until: float) -> float:
        """The delay before this process may send, counting other processes' requests (wall times) as its own."""
        if blocked_until > wall:
            self._blocked_until = max(self._blocked_until, now + (blocked_until - wall))
        extra = [_Slot(None if stamp is None else now - (wall - stamp)) for stamp in others]
        return self._delay(now, extra)

    def acquire(self) -> _Slot:
        """Block until every window has room, then take a slot."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock.monotonic()
                ticket = None
                if self.memory is None:
                    delay = self._delay(now)
                else:
                    wall = self.clock.time()
                    delay, ticket = self.memory.reserve(functools.partial(self._decide, now, wall), wall)
                if delay <= 0:
                    slot = _Slot(ticket=ticket)
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
        if self.memory is not None and slot.ticket is not None:
            self.memory.finish(slot.ticket, self.clock.time())

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
        if self.memory is not None:
            wall = self.clock.time()
            self.memory.record(blocked_until=wall + seconds, now=wall)

    def _delay(self, now: float, others: Sequence[_Slot] = ()) -> float:
        while self._slots and self._slots[0].stamp is not None and self._slots[0].stamp <= now - self._horizon:
            self._slots.popleft()
        delay = self._blocked_until - now
        slots = [*self._slots, *others]
        for window in self.windows:
            recent = [s.stamp for s in slots if s.stamp is None or s.stamp > now - window.seconds]
            excess = len(recent) - window.requests + 1
            if excess <= 0:
                continue
            finished = sorted(stamp for stamp in recent if stamp is not None)
            if len(finished) >= excess:
                delay = max(delay, finished[excess - 1] + window.seconds - now)
            else:
                delay = max(delay, _PENDING_POLL_SECONDS)
        return delay


_shared_lock = threading.Lock()
_shared: dict[str, RateLimiter] = {}


def login_limiter(windows: Sequence[Window], clock: Clock, login: Sequence[str], *where: str) -> RateLimiter:
    """One limiter per login (and host) in a process: accounts that share a login (Webtrekk counts per user, not
    per customer id) share its limits here, as processes share them through `RateMemory`. A test's fake clock gets
    a limiter of its own."""
    if not isinstance(clock, SystemClock):
        return RateLimiter(windows, clock, account=tuple(login))
    key = hashlib.sha256(repr((tuple(login), where, tuple(windows))).encode()).hexdigest()  # no secret in a key
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = RateLimiter(windows, clock, account=tuple(login))
        return limiter


def forget_limiters() -> None:
    with _shared_lock:
        _shared.clear()
