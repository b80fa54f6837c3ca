"""`clickhaul backfill`: a long range as a sequence of windows, each loaded and recorded before the next, so a
crash, a kill or Ctrl-C costs at most the window in flight (Ctrl-C ends within a second, see `interrupt`)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sources.common.errors import ClickhaulError, ConfigError
from sources.common.spec import load_object
from sources.common.windows import WindowUnit, split_windows

from .interrupt import Interrupted, interrupt_requested
from .journal import Journal
from .options import LoadOptions
from .registry import VendorSpec
from .runner import (
    LoadResult,
    account_scope,
    adopt_tables,
    after_load,
    build_source,
    extract_and_load,
    monitored,
    open_pipeline,
    parse_range,
    parse_resources,
    prepare_loads,
    release_warehouse,
    render_rows,
    rows_total,
    settle_pending,
    summarize,
    translated_errors,
    warehouse_of,
)

log = logging.getLogger("clickhaul.backfill")

MAX_WINDOWS = 5000  # ~13 years of days: more is a typo, not a backfill


@dataclass
class BackfillSummary:
    vendor: str
    pipeline: str
    windows: int
    skipped: int
    loaded: int
    interrupted: bool
    rows: dict[str, int] = field(default_factory=dict)  # rows each table gained or changed in this backfill
    extracted: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    warehouse: str = ""

    def render(self) -> str:
        state = (
            f"stopped after {self.skipped + self.loaded} of {self.windows} windows: run the same command to continue"
            if self.interrupted
            else f"complete: {self.windows} windows ({self.skipped} already done, {self.loaded} loaded now)"
        )
        into = f" into {self.warehouse}" if self.warehouse else ""
        lines = [
            f"{self.vendor} backfill{into} (pipeline {self.pipeline}) {state}",
            *render_rows(self.rows, self.extracted),
        ]
        lines.append(f"  {rows_total(self.rows, self.extracted)}, {self.requests:,} requests, {self.seconds:.1f} s")
        return "\n".join(lines)


def run_backfill(
    spec: VendorSpec,
    options: LoadOptions | None = None,
    *,
    start: str | dt.date,
    end: str | dt.date,
    chunk: WindowUnit = "day",
    workers: int | None = None,
    on_window: Callable[[str], None] | None = None,
    account: str | None = None,
    **load: Any,
) -> BackfillSummary:
    """`account`: one of the vendor's accounts (see `sources.common.accounts`); None: the implicit `default`."""
    with account_scope(account):
        return _run_backfill(spec, LoadOptions.of(options, **load), start, end, chunk, workers, on_window)


def _run_backfill(
    spec: VendorSpec,
    options: LoadOptions,
    start: str | dt.date,
    end: str | dt.date,
    chunk: WindowUnit,
    workers: int | None,
    on_window: Callable[[str], None] | None,
) -> BackfillSummary:
    start_date, end_date = parse_range(
        start.isoformat() if isinstance(start, dt.date) else start,
        end.isoformat() if isinstance(end, dt.date) else end,
    )
    if start_date is None or end_date is None:
        raise ConfigError("a backfill needs both --start and --end")
    if workers is not None and not 1 <= workers <= 32:
        raise ConfigError(f"--workers {workers} is out of range: use 1 to 32")
    windows = split_windows(start_date, end_date, chunk)
    if len(windows) > MAX_WINDOWS:
        raise ConfigError(
            f"{start_date}..{end_date} in {chunk} windows is {len(windows)} windows (limit {MAX_WINDOWS}): "
            "check the dates, or use --chunk week or month"
        )
    selected = parse_resources(spec, options.resources)
    names = [str(window) for window in windows]
    key = f"{start_date}..{end_date}/{chunk}/{','.join(selected or ['*'])}"

    prepare_loads()
    extra = dict(options.source_kwargs)
    began = time.monotonic()
    totals = LoadResult({}, [])
    requests = 0
    loaded = 0
    with monitored(options.progress, spec.name) as monitor:
        pipeline = open_pipeline(spec, options)
        journal = Journal.of(pipeline)
        entry = journal.start_backfill(key, names, {"chunk": chunk, "resources": selected, "workers": workers})
        done = set(entry["done"])
        skipped = sum(1 for name in names if name in done)
        if skipped:
            log.warning("resuming %s: %d of %d windows already loaded", key, skipped, len(names))
        monitor.plan(windows=len(names), done=skipped)
        try:
            with translated_errors(spec, pipeline):
                settle_pending(pipeline, options.on_pending)
                adopt_tables(pipeline)
        finally:
            release_warehouse(pipeline)  # each window holds the file through its own load
        if spec.before_backfill:
            todo = [window for window, name in zip(windows, names, strict=True) if name not in done]
            note = load_object(spec.before_backfill)(todo, selected, options.force)
            if note:
                log.warning("%s", note)
        try:
            for window, name in zip(windows, names, strict=True):
                if name in done:
                    continue
                result = load_window(spec, pipeline, journal, window, name, selected, extra, workers, monitor)
                journal.window_done(key, name)
                after_load(pipeline, journal, options.publish)
                loaded += 1
                for table, count in result.extracted.items():
                    totals.extracted[table] = totals.extracted.get(table, 0) + count
                totals.load_ids += result.load_ids
                requests = monitor.requests
                monitor.window_done()
                if on_window:
                    on_window(name)
        except (KeyboardInterrupt, Exception) as error:
            # after Ctrl-C, whatever broke (dlt's wrapping of it, the journal's write to the destination cut off)
            # is the interrupt: say how far the backfill got
            if not isinstance(error, KeyboardInterrupt) and not interrupt_requested():
                raise
            finished = len(journal.backfill(key)["done"])  # type: ignore[index]
            raise Interrupted(
                f"{spec.name} backfill stopped after {finished} of {len(names)} windows (pipeline "
                f"{pipeline.pipeline_name}); the window in flight loads again"
            ) from None
        interrupted = len(journal.backfill(key)["done"]) < len(names)  # type: ignore[index]
        summary = summarize(spec, pipeline, monitor, totals, began, start_date, end_date)
        if not interrupted:
            journal.record_success(summary)
    return BackfillSummary(
        vendor=spec.name,
        pipeline=pipeline.pipeline_name,
        windows=len(names),
        skipped=skipped,
        loaded=loaded,
        interrupted=interrupted,
        rows=summary.rows,
        extracted=totals.extracted,
        requests=requests,
        seconds=time.monotonic() - began,
        warehouse=warehouse_of(pipeline),
    )


def load_window(
    spec: VendorSpec,
    pipeline: Any,
    journal: Journal,
    window: Any,
    name: str,
    selected: list[str] | None,
    extra: dict[str, Any],
    workers: int | None,
    monitor: Any,
) -> LoadResult:
    """One window, loaded whole; a failure names the window and says the windows before it stay loaded."""
    source = build_source(spec, start_date=window.start, end_date=window.end, **extra)
    if selected:
        source = source.with_resources(*selected)
    monitor.plan(tables=len(source.selected_resources))
    try:
        with extract_workers(workers):
            return extract_and_load(pipeline, spec, source)
    except ClickhaulError as error:
        if interrupt_requested():
            raise
        journal.record_error(f"backfill window {name}: {error}")
        raise ClickhaulError(
            f"backfill window {name} failed: {error} — windows before it are loaded; "
            "run the same command again to continue from this window"
        ) from None


@contextmanager
def extract_workers(workers: int | None) -> Iterator[None]:
    """dlt's extraction threads: the resources of one window are read in parallel, sharing one rate limiter."""
    if workers is None:
        yield
        return
    key = "EXTRACT__WORKERS"
    previous = os.environ.get(key)
    os.environ[key] = str(workers)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous
