"""Ctrl-C (and SIGTERM) end every command within a bounded time, with one line and exit status 130 (143).

A run is many threads: dlt's extraction pool, a vendor's request fan-out, Matomo's senders. Unwinding them all from
a KeyboardInterrupt is not reliable (dlt can wait on a worker blocked in a request, or close a generator another
thread is running: "generator already executing", then a hang). So the first signal starts a deadline: the main
thread unwinds as far as it can, in-flight work gets until the deadline to commit, then the process ends. Ending
at any point is safe: dlt writes files atomically and loads whole packages, DuckDB commits whole transactions, the
journal is replaced atomically, and the next run loads what a stopped run left pending (tests/chaos/test_kill.py
and test_interrupt.py prove it). A second signal ends the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

GRACE_SECONDS = 1.0  # what in-flight work gets to finish after Ctrl-C; the process ends by then
EXIT_STATUS: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
CONTINUE = "run the same command to continue"
_WATCHDOG = "clickhaul-interrupt"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command had done when it came (e.g. the windows a backfill finished)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Interrupts:
    """The process's handler of SIGINT and SIGTERM while a command runs."""

    def __init__(
        self, message: str, grace: float = GRACE_SECONDS, hint: str = CONTINUE, prefix: str = "interrupted"
    ) -> None:
        self.message = message
        self.grace = grace
        self.hint = hint
        self.prefix = prefix
        self.signal: int | None = None
        self.deadline = 0.0
        self._said = threading.Lock()
        self._done = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            self.exit()  # a second Ctrl-C: now
        self.signal = signum
        self.deadline = time.monotonic() + self.grace
        quiet()
        threading.Thread(target=self._watch, name=_WATCHDOG, daemon=True).start()
        raise KeyboardInterrupt

    def _watch(self) -> None:
        time.sleep(max(0.0, self.deadline - time.monotonic()))
        self.exit()

    def exit(self, detail: str | None = None) -> None:
        """Say it once and end the process (other threads get no say)."""
        with self._said:
            if not self._done:
                self._done = True
                try:
                    sys.stdout.flush()
                except Exception:  # a closed pipe must not keep the process alive
                    pass
                text = f"{self.prefix}: {detail or self.message}"
                if self.hint and self.hint not in text:
                    text = f"{text}: {self.hint}"
                os.write(2, text.encode() + b"\n")
            os._exit(EXIT_STATUS.get(self.signal or signal.SIGINT, 130))

    def finish(self, detail: str | None = None) -> None:
        """The main thread unwound: threads still committing (a Matomo batch, a DuckDB load) get the rest of the
        grace period, then the process ends."""
        if self.signal is None:  # a KeyboardInterrupt Python raised itself (no handler installed)
            self.signal = signal.SIGINT
            self.deadline = time.monotonic() + self.grace
            quiet()
        current = threading.current_thread()
        for thread in threading.enumerate():
            # daemon threads too: Matomo's senders are, and a batch Matomo stored must reach the ledger
            if thread is current or thread.name == _WATCHDOG or not thread.is_alive():
                continue
            thread.join(max(0.0, self.deadline - time.monotonic()))
        self.exit(detail)


def quiet() -> None:
    """After Ctrl-C, what unwinding threads print (dlt's "thread pool could not be completed", a worker's trace)
    is noise: the one line the user needs comes from `Interrupts.exit`. clickhaul's own warnings stay (a source
    saying what it cleaned up, e.g. calculations cancelled on the vendor's side)."""
    logging.getLogger("dlt").setLevel(logging.CRITICAL + 1)
    threading.excepthook = lambda args: None
    sys.unraisablehook = lambda args: None


_active: Interrupts | None = None


@contextmanager
def interruptible(message: str, **options: Any) -> Iterator[Interrupts]:
    """Install the handler for a command (main thread only; elsewhere, e.g. in a scheduler's worker, Python's
    default stays)."""
    global _active
    interrupts = Interrupts(message, **options)
    try:
        previous: dict[int, Any] = {sig: signal.signal(sig, interrupts.handle) for sig in EXIT_STATUS}
    except ValueError:
        yield interrupts
        return
    _active = interrupts
    try:
        yield interrupts
    finally:
        _active = None
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupt_requested() -> bool:
    """Ctrl-C came: whatever error unwinding produced (dlt wraps the KeyboardInterrupt) is part of stopping."""
    return _active is not None and _active.signal is not None


def install_early() -> None:
    """From the first instant of the process, before the CLI's imports (a second or so): Ctrl-C then ends it at
    once, with the same line; each command installs its own handler when it starts."""
    starting = Interrupts("clickhaul stopped while starting; nothing was done", grace=0.0)

    def stop(signum: int, frame: FrameType | None) -> None:
        starting.signal = signum
        starting.exit()

    try:
        for sig in EXIT_STATUS:
            signal.signal(sig, stop)
    except ValueError:  # not the main thread
        pass
