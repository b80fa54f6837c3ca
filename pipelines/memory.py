"""A run's memory: what it needs at its peak, not what it ever touched.

Measured on a backfill of 1M Opentracker sessions (day windows of 100k): 662 MiB peak with the process defaults,
under 450 MiB with the three measures below. Each one alone leaves most of the growth:
- DuckDB takes up to 80 % of RAM for a merge unless capped (1M sessions in one run: 1.8 GiB);
- glibc keeps one heap per thread (up to 8 x cores) and serves ~1 MB page bodies from them, so the pages that
  worker threads parse leave scattered, unreturned heap behind; capped arenas and mmap for large blocks return it;
- between dlt's steps nothing from the step before is still needed, so freed memory goes back to the OS there
  (`malloc_trim`, Arrow's pool) instead of the next step's peak landing on top of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from dlt.common.runtime.collector import NullCollector

from sources.common.monitor import current_monitor

log = logging.getLogger("clickhaul.memory")

DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
_M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's malloc.h
_M_ARENA_MAX = -8
_MMAP_THRESHOLD_BYTES = 128 * 1024
_ARENAS = 2
_PR_SET_THP_DISABLE = 41  # prctl option, from linux/prctl.h


def cap_duckdb_memory() -> None:
    """Spill a large merge to disk instead of growing with the run. CLICKHAUL__DUCKDB_MEMORY_LIMIT=off lifts the
    cap; an explicit DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG wins."""
    limit = os.environ.get("CLICKHAUL__DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if limit.lower() in ("", "off", "none") or "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG" in os.environ:
        return
    os.environ["DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG"] = json.dumps({"memory_limit": limit})


@cache
def _glibc() -> Any:
    """glibc's malloc controls, or None elsewhere (macOS, musl): there the measures are simply not taken."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
        return libc
    except (OSError, AttributeError):
        return None


def tune_allocator() -> None:
    """Before worker threads start: at most `_ARENAS` heaps, blocks of 128 KiB or more in their own mappings, and
    no transparent huge pages. MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MIMALLOC_ALLOW_THP set by the user win.

    Huge pages: Arrow's allocator (mimalloc) asks for them, gives freed pages back to the OS after 10 ms and
    touches them again for the next page of rows; each touch then faults in and zeroes a whole 2 MiB page. perf on
    the 100k-session command: 6.5 % of the process's CPU in the kernel zeroing mimalloc's huge pages. Without them
    (what MIMALLOC_ALLOW_THP=0 does, for the whole process, here independent of when pyarrow is first imported):
    4.56-4.76 -> 4.29-4.31 s of CPU, the same peak RSS."""
    libc = _glibc()
    if libc is None:
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, _ARENAS)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    if "MIMALLOC_ALLOW_THP" not in os.environ:
        libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0)


def release_memory() -> None:
    """Give freed memory back to the OS: Python's cycles, the C heap, Arrow's pool."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow is a dependency; kept for trimmed installs
        pass


@contextmanager
def settled_heap() -> Iterator[None]:
    """During a run, the objects that exist before it (dlt, pyarrow, duckdb, config: ~1M of them) are left out of
    the garbage collector's full passes, which pages of small lists and dicts set off again and again; measured
    +10-15 % on a Webtrekk export. Unfrozen afterwards, so a long-lived process (a scheduler, a notebook) can still
    collect them (garbage frozen with them is collected then, too: no collection first, it costs ~50 ms)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class ReleasingCollector(NullCollector):
    """dlt's progress hook, used for its step boundaries: memory is released before normalize and load,
    `before_extract` runs before extraction (the runner lets go of the DuckDB file it held through the setup) and
    `before_load` before load (the runner waits there for a file another process holds, and keeps it open);
    `after_run` is the runner's to call when `pipeline.run` has returned or failed."""

    def __init__(
        self,
        before_load: Callable[[], None] | None = None,
        after_run: Callable[[], None] | None = None,
        before_extract: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.before_load = before_load
        self.after_run = after_run
        self.before_extract = before_extract

    def on_start_trace_step(self, trace: Any, step: str, pipeline: Any) -> None:
        current_monitor().step_started(step)
        if step == "extract" and self.before_extract is not None:
            self.before_extract()
        if step in ("normalize", "load"):
            release_memory()
        if step == "load" and self.before_load is not None:
            self.before_load()
