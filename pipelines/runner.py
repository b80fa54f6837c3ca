"""Run one vendor's source into a destination: validation first, then dlt, then a summary a person can read."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.exceptions import DltException
from dlt.common.pipeline import TRefreshMode, get_dlt_pipelines_dir
from dlt.common.schema.utils import get_root_table
from dlt.common.storages import NormalizeStorage
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.common.accounts import DEFAULT_ACCOUNT, account_pipeline_name, current_account, use_account
from sources.common.clock import today_utc
from sources.common.config import translate_config_error
from sources.common.errors import ClickhaulError, ConfigError
from sources.common.monitor import ProgressMode, RunMonitor, current_monitor, set_monitor
from sources.common.redact import redact
from sources.common.windows import parse_date

from .dlt_settings import capabilities_remembered, speed_up_dlt
from .duckdb_files import HeldOpen, compact, duckdb_file, is_lock_error, locked_error, publish
from .duckdb_merge import merge_duckdb_from_files
from .journal import Journal
from .memory import ReleasingCollector, cap_duckdb_memory, settled_heap, tune_allocator
from .options import LoadOptions, OnPending
from .registry import VendorSpec
from .warehouse import configured_location, first_line, resolve_warehouse

log = logging.getLogger("clickhaul.run")


@cache
def prepare_loads() -> None:
    """What every load of this process needs, done by the first one (importing clickhaul changes nothing)."""
    # Arrow pages and dict rows may share a table; both must carry _dlt_load_id ("latest load wins" downstream).
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    # Merge staging tables are only needed during a load; emptying them keeps the DuckDB file from growing.
    os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")
    cap_duckdb_memory()
    tune_allocator()
    speed_up_dlt()
    merge_duckdb_from_files()


_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class RunSummary:
    vendor: str
    pipeline: str
    destination: str
    dataset: str
    start: dt.date | None
    end: dt.date | None
    warehouse: str = ""  # the DuckDB file or database, named in every summary
    state: str = ""  # the pipeline's working folder (its state) under dlt's data directory
    rows: dict[str, int] = field(default_factory=dict)  # rows each table gained or changed (what it now holds)
    extracted: dict[str, int] = field(default_factory=dict)  # rows the vendor served, duplicates included
    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    seconds: float = 0.0
    request_seconds: float = 0.0  # wall time with a request on the wire: what the vendor's answers took
    phases: dict[str, float] = field(default_factory=dict)  # where the run's time went (start, setup, extract, ...)
    new_columns: list[str] = field(default_factory=list)
    misfits: int = 0
    unchanged_rows: int = 0  # rows read again exactly as the last scheduled run loaded them: not loaded
    dbt: str | None = None

    def render(self) -> str:
        span = f" {self.start}..{self.end}" if self.start and self.end else " (incremental)"
        lines = [
            f"{self.vendor}:{span} into {self.warehouse or self.destination}, dataset {self.dataset} "
            f"(pipeline {self.pipeline}{', state in ' + self.state if self.state else ''})",
            *render_rows(self.rows, self.extracted),
        ]
        if self.unchanged_rows:
            lines.append(
                f"  {self.unchanged_rows:,} rows read were unchanged since the last run: not loaded again "
                "(a fixed range --start/--end loads every row)"
            )
        if self.new_columns:
            lines.append(f"  schema: new column(s) {', '.join(self.new_columns)} (the vendor added fields)")
        if self.misfits:
            lines.append(
                f"  schema: {self.misfits:,} value(s) no longer fit their column's type: kept as text in "
                "<column>__v_text, the typed column is NULL there"
            )
        if self.dbt:
            lines.append("  " + self.dbt.replace("\n", "\n  "))
        lines.append(
            f"  {rows_total(self.rows, self.extracted)}, {self.requests:,} requests ({self.retries} retried), "
            f"{self.rate_limit_waits} rate-limit waits ({self.rate_limit_wait_seconds:.1f} s), "
            f"{self.seconds:.1f} s"
        )
        return "\n".join(lines)


def render_rows(loaded: Mapping[str, int], extracted: Mapping[str, int]) -> list[str]:
    """One line per table with the rows it gained or changed; where the vendor served more (the same key twice),
    both figures, each named."""
    if not loaded:
        return ["  no new rows"]
    width = max(len(name) for name in loaded)
    lines = []
    for name, count in sorted(loaded.items()):
        line = f"  {name:<{width}}  {count:>10,}"
        served = extracted.get(name, count)
        if served != count:
            line += f"  (extracted {served:,}, loaded {count:,} after removing {served - count:,} served twice)"
        lines.append(line)
    return lines


def rows_total(loaded: Mapping[str, int], extracted: Mapping[str, int]) -> str:
    total, served = sum(loaded.values()), sum(extracted.get(name, count) for name, count in loaded.items())
    return f"{total:,} rows loaded" + (f" ({served:,} extracted)" if served != total else "")


def parse_range(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    """--start/--end: strict dates, end not before start; --end alone is not a range."""
    start_date = parse_date(start, "--start") if start else None
    end_date = parse_date(end, "--end") if end else None
    if end_date and not start_date:
        raise ConfigError("--end needs --start: give both to load a fixed range, or neither for an incremental run")
    if start_date and end_date and end_date < start_date:
        raise ConfigError(f"--end {end_date} is before --start {start_date}: swap them")
    return start_date, end_date


MAX_RUN_DAYS = 3660  # ten years in one run is a typo or a job for `clickhaul backfill`


def check_range_size(start: dt.date | None, end: dt.date | None, force: bool = False) -> None:
    if start is None:
        return
    if end is None and start > today_utc():
        raise ConfigError(
            f"--start {start} is after --end {today_utc()} (today, the default of --end): "
            "give a --start on or before today"
        )
    if force:
        return
    days = ((end or today_utc()) - start).days + 1
    if days > MAX_RUN_DAYS:
        raise ConfigError(
            f"--start {start} .. --end {end or 'today'} is {days:,} days; one run loads at most {MAX_RUN_DAYS:,}: "
            "check the dates, use `clickhaul backfill` (window by window, resumable), or pass --force"
        )


def parse_resources(spec: VendorSpec, resources: str | Sequence[str] | None) -> list[str] | None:
    if resources is None:
        return list(spec.default_resources) if spec.default_resources else None
    names = [name.strip() for name in (resources.split(",") if isinstance(resources, str) else resources)]
    names = [name for name in names if name]
    if not names:
        raise ConfigError(
            f"--resources {resources!r} names no resource: list some (`clickhaul resources {spec.name}` shows "
            "them), or leave --resources out to load all"
        )
    unknown = [
        name
        for name in names
        if name not in spec.resources and not (spec.resource_prefixes and name.startswith(spec.resource_prefixes))
    ]
    if unknown:
        raise ConfigError(
            f"unknown {spec.name} resource{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            f"choose from {', '.join(spec.resources)}"
        )
    return names


def check_pipeline_name(name: str) -> str:
    if not _PIPELINE_NAME.match(name):
        raise ConfigError(
            f"pipeline name {name!r} is invalid: use letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def build_source(spec: VendorSpec, preflight: bool = True, **kwargs: Any) -> Any:
    """Call the vendor's source function (dlt resolves the rest of its arguments from config), then read its
    preflight resources so that configuration the account must confirm fails before anything is written."""
    from .account_rows import stamp_source

    try:
        source = stamp_source(spec.source_function()(**kwargs), current_account() or DEFAULT_ACCOUNT)
        for name in spec.preflight if preflight else ():
            for _ in source.resources[name]:
                pass
    except ConfigFieldMissingException as error:
        raise translate_config_error(spec.name, error) from None
    except DltException as error:  # e.g. ResourceExtractionError around what the resource raised
        cause = root_cause(error)
        if isinstance(cause, ClickhaulError):
            raise cause from None
        raise ClickhaulError(f"{spec.name}: {redact(str(error))}") from None
    return source


def root_cause(error: BaseException) -> BaseException:
    """dlt wraps what a resource raised in several layers; the CLI wants the error a user can act on."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ClickhaulError, ConfigFieldMissingException)):
            return current
        current = current.__cause__ or current.__context__
    return error


@contextmanager
def monitored(progress: ProgressMode, label: str = "") -> Iterator[RunMonitor]:
    monitor = RunMonitor(progress, label=label)
    previous = set_monitor(monitor)
    try:
        yield monitor
    finally:
        monitor.close()
        set_monitor(previous)


ON_PENDING = ("load", "drop", "fail")


def open_pipeline(spec: VendorSpec, options: LoadOptions) -> dlt.Pipeline:
    """The pipeline, pointed at the warehouse by the one rule (`warehouse.resolve_warehouse`), unless the caller
    hands over a destination of its own (the demo, tests)."""
    pipelines_dir = options.pipelines_dir
    base = check_pipeline_name(options.pipeline_name or f"clickhaul_{spec.name}")
    name = account_pipeline_name(base)
    destination = options.destination_config
    if destination is None:  # every account of a vendor loads into the one warehouse of its base pipeline
        warehouse = resolve_warehouse(
            base, database=options.database, destination=options.destination, pipelines_dir=pipelines_dir
        )
        destination = warehouse.dlt_destination()
    drop_interrupted_writes(Path(pipelines_dir or get_dlt_pipelines_dir()) / name)
    collector = ReleasingCollector()
    where: dict[str, Any] = {"pipelines_dir": pipelines_dir} if pipelines_dir else {}
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=options.dataset or spec.name,
        progress=collector,
        **where,
    )
    database_file = duckdb_file(pipeline)
    if database_file is not None:
        # Held from here through the setup (dlt's state, the journal and the tables are read through it, without
        # opening the file each time), let go while extracting, held again through the load. Each open waits
        # (bounded) for a file another process holds.
        held = HeldOpen(database_file)
        held.open()
        collector.before_extract, collector.before_load, collector.after_run = held.close, held.open, held.close
    return pipeline


def release_warehouse(pipeline: dlt.Pipeline) -> None:
    """Lets go of the DuckDB file a failed setup still holds (a finished run has let go of it already)."""
    if isinstance(pipeline.collector, ReleasingCollector) and pipeline.collector.after_run is not None:
        pipeline.collector.after_run()


@contextmanager
def account_scope(account: str | None) -> Iterator[None]:
    """Work for `account` (its settings, its pipeline) in this block; a named account's merges go through staging
    tables of its own (`<dataset>_staging_<account>`), so accounts may load into one warehouse at once."""
    from sources.common.config import environment

    with use_account(account):
        named = current_account()
        layout = "DESTINATION__STAGING_DATASET_NAME_LAYOUT"  # a layout the user set wins
        env = {layout: f"%s_staging_{named}"} if named and layout not in os.environ else {}
        with environment(env):
            yield


def adopt_tables(pipeline: dlt.Pipeline) -> None:
    from .account_rows import adopt_existing_tables

    adopt_existing_tables(pipeline)


def warehouse_of(pipeline: dlt.Pipeline) -> str:
    """The words that name where a pipeline loads, for every summary: the DuckDB file, or the destination."""
    database = duckdb_file(pipeline)
    if database is not None:
        return f"DuckDB file {database}"
    name = str(pipeline.destination.destination_name) if pipeline.destination else "?"
    return f"{name} {configured_location(name)}".rstrip()


@contextmanager
def translated_errors(spec: VendorSpec, pipeline: dlt.Pipeline) -> Iterator[None]:
    """dlt's wrapped errors, wherever a run meets them (state sync, pending packages, the load), become the one
    line a user can act on; a locked DuckDB file always gives the same message."""
    try:
        yield
    except ClickhaulError:
        raise
    except ConfigFieldMissingException as error:
        raise translate_config_error(spec.name, error) from None
    except Exception as error:
        cause = root_cause(error)
        database = duckdb_file(pipeline)
        if database is not None and is_lock_error(cause):
            raise locked_error(database, str(cause), 0) from None
        if isinstance(cause, ConfigFieldMissingException):
            raise translate_config_error(spec.name, cause) from None
        if isinstance(cause, ClickhaulError):
            raise cause from None
        if not isinstance(error, DltException):
            raise
        step = f" in step {error.step}" if isinstance(error, PipelineStepFailed) else ""
        if cause is error and isinstance(error, PipelineStepFailed) and error.exception is not None:
            cause = error.exception  # "Pipeline execution failed at step=load ... with exception:" names no cause
        raise ClickhaulError(f"{spec.name} run failed{step}: {first_line(redact(str(cause)))}") from None


_ATOMIC_WRITE_TEMPORARY = re.compile(r"^[0-9a-f]{16}$")


def drop_interrupted_writes(working_dir: Path) -> None:
    """dlt writes a file atomically through a temporary named by 16 hex digits beside it, then renames it. A kill
    in between leaves the temporary; in `schemas/` dlt then takes it for a schema and fails every later run
    ("is an invalid schema/source name"). The renamed file is the complete one, so the temporary can go."""
    if not working_dir.is_dir():
        return
    for folder, _, files in os.walk(working_dir):
        for name in files:
            if _ATOMIC_WRITE_TEMPORARY.match(name):
                Path(folder, name).unlink(missing_ok=True)
                log.warning("removed %s, a temporary file left by a run killed while dlt was writing", name)


def drop_normalized_leftovers(pipeline: dlt.Pipeline) -> None:
    """A kill between normalize's commit (an atomic rename into load/) and its deletion of the extracted copy
    leaves one package in both places; dlt would normalize it again and fail on the existing target forever.
    The normalized copy is complete, so the extracted one is the leftover."""
    done = set(pipeline.list_normalized_load_packages()) | set(pipeline.list_completed_load_packages())
    leftovers = sorted(set(pipeline.list_extracted_load_packages()) & done)
    extracted = Path(pipeline.working_dir, "normalize", NormalizeStorage.EXTRACTED_FOLDER)
    for load_id in leftovers:
        shutil.rmtree(extracted / load_id)
        log.warning("removed the extracted copy of load package %s left by a run killed after normalize", load_id)


def settle_pending(pipeline: dlt.Pipeline, on_pending: OnPending) -> int:
    """Packages a failed run left behind: dlt would load them and silently skip new data; we decide first."""
    if on_pending not in ON_PENDING:
        raise ConfigError(f"--on-pending {on_pending!r} is unknown: use one of {', '.join(ON_PENDING)}")
    drop_normalized_leftovers(pipeline)
    pending = len(pipeline.list_extracted_load_packages()) + len(pipeline.list_normalized_load_packages())
    if not pending:
        return 0
    if on_pending == "fail":
        raise ClickhaulError(
            f"pipeline {pipeline.pipeline_name} has {pending} pending load package(s) from an earlier failed run: "
            "re-run with --on-pending load to load them first, or --on-pending drop to discard them"
        )
    if on_pending == "drop":
        pipeline.drop_pending_packages()
        log.warning("dropped %d pending load package(s) of pipeline %s", pending, pipeline.pipeline_name)
    else:
        log.warning("loading %d pending load package(s) left by an earlier failed run first", pending)
        try:
            pipeline.normalize()
            pipeline.load()
        except PipelineStepFailed as error:
            raise ClickhaulError(
                f"the {pending} pending load package(s) of pipeline {pipeline.pipeline_name} still fail to load "
                f"({redact(str(root_cause(error)))[:300]}): fix the destination, or re-run with --on-pending drop"
            ) from None
    return pending


def guard_missing_state(pipeline: dlt.Pipeline, full_refresh: bool) -> None:
    """On an ephemeral runner the pipeline folder is gone: dlt restores the state (the cursors) from the
    destination. When even the destination has none for this pipeline but its dataset already holds tables, an
    incremental run would silently reload everything from `start_date`: refuse unless asked to."""
    if full_refresh or pipeline.state.get("_state_version", 0):
        return  # a refresh starts over; a local state is what run() syncs with the destination itself
    pipeline.sync_destination()
    if pipeline.state.get("_state_version", 0):
        return
    existing = dataset_tables(pipeline)
    if existing:
        raise ConfigError(
            f"dataset {pipeline.dataset_name} already holds {len(existing)} table(s) ({', '.join(existing[:5])}"
            f"{', ...' if len(existing) > 5 else ''}) but no saved state of pipeline {pipeline.pipeline_name} was "
            "found, locally or in the destination: an incremental run would reload from start_date. Use the "
            "--pipeline name that loaded them, load a fixed range with --start/--end, or pass --full-refresh "
            "(drops those tables and reloads from start_date)"
        )


def dataset_tables(pipeline: dlt.Pipeline) -> list[str]:
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return []
            dataset = pipeline.dataset_name.replace("'", "''")
            rows = client.execute_sql(
                "select table_name from information_schema.tables "
                f"where table_schema = '{dataset}' and table_name not like '_dlt%' order by 1"
            )
    except DltException:  # destinations without SQL (filesystem): nothing to compare with
        return []
    return [str(row[0]) for row in rows or []]


def schema_columns(pipeline: dlt.Pipeline) -> dict[str, set[str]]:
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    return {table: set(schema.get_table_columns(table)) for table in schema.data_table_names()}


def added_columns(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    """Columns that appeared in tables that already existed: schema drift worth a line in the summary."""
    return sorted(
        f"{table}.{column}"
        for table, columns in after.items()
        if table in before
        for column in columns - before[table]
        if not column.startswith("_dlt")
    )


@dataclass
class LoadResult:
    """What one dlt run put into the destination: rows per table as extracted, and the load ids that carry them."""

    extracted: dict[str, int]
    load_ids: list[str]


def extract_and_load(
    pipeline: dlt.Pipeline, spec: VendorSpec, source: Any, refresh: TRefreshMode | None = None
) -> LoadResult:
    """One dlt run. dlt's wrapped errors become the error a user can act on."""
    began = time.monotonic()
    try:
        with translated_errors(spec, pipeline), settled_heap(), capabilities_remembered():
            trace = run_retrying_schema_races(pipeline, source, refresh)
    finally:
        ran = time.monotonic() - began
        if isinstance(pipeline.collector, ReleasingCollector) and pipeline.collector.after_run is not None:
            with current_monitor().phase("checkpoint"):
                pipeline.collector.after_run()
    record_steps(trace, ran)
    normalize = trace.last_normalize_info if trace else None
    load = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    extracted = {
        table: count
        for table, count in (normalize.row_counts if normalize else {}).items()
        if not table.startswith("_dlt")
    }
    return LoadResult(extracted, list(load.loads_ids) if load else [])


SCHEMA_RACE_ATTEMPTS = 5


def run_retrying_schema_races(pipeline: dlt.Pipeline, source: Any, refresh: TRefreshMode | None) -> Any:
    """`pipeline.run`, whose load is tried again when its schema update lost a race with another process creating
    the same tables (accounts loading into one fresh PostgreSQL dataset at once): dlt reads the destination again
    and applies only what is missing. The run's trace, with its extract and normalize figures."""
    from dlt.pipeline.helpers import retry_schema_update
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    run_trace: list[Any] = []
    for attempt in Retrying(
        retry=retry_if_exception(retry_schema_update()),
        stop=stop_after_attempt(SCHEMA_RACE_ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.2, max=3),
        reraise=True,
    ):
        with attempt:
            if not run_trace:
                try:
                    pipeline.run(source, refresh=refresh)  # type: ignore[arg-type]
                finally:
                    run_trace.append(pipeline.last_trace)
            else:
                log.warning("loading %s again: another process changed the same tables at once", pipeline.pipeline_name)
                pipeline.load()
    return run_trace[0]


def record_steps(trace: Any, seconds: float) -> None:
    """dlt's steps as phases of the run; what `pipeline.run` spent outside them is its state and schema sync."""
    monitor = current_monitor()
    stepped = 0.0
    for step in trace.steps if trace else ():
        if step.step in ("extract", "normalize", "load") and step.finished_at and step.started_at:
            took = (step.finished_at - step.started_at).total_seconds()
            monitor.add_phase(step.step, took)
            stepped += took
    monitor.add_phase("state sync", max(0.0, seconds - stepped))


def rows_loaded(pipeline: dlt.Pipeline, tables: Sequence[str], load_ids: Sequence[str]) -> dict[str, int] | None:
    """Rows of each table that carry one of `load_ids`: what the loads inserted or replaced, after the merge
    removed keys served twice. None where the destination cannot be queried (a filesystem bucket)."""
    if not tables:
        return {}
    if not load_ids:
        return dict.fromkeys(tables, 0)
    schema = pipeline.default_schema
    ids = ", ".join("'" + load_id.replace("'", "''") + "'" for load_id in load_ids)
    counts = {}
    try:
        with pipeline.sql_client() as client:
            for table in tables:
                qualified = client.make_qualified_table_name(table)
                root = str(get_root_table(schema.tables, table)["name"])
                if root == table:
                    sql = f"select count(*) from {qualified} where _dlt_load_id in ({ids})"
                else:  # a nested table's rows belong to the load of their root row
                    parent = client.make_qualified_table_name(root)
                    sql = (
                        f"select count(*) from {qualified} c join {parent} r on c._dlt_root_id = r._dlt_id "
                        f"where r._dlt_load_id in ({ids})"
                    )
                with client.execute_query(sql) as cursor:
                    counts[table] = int(cursor.fetchone()[0])  # type: ignore[index]
    except DltException as error:
        log.debug("cannot count loaded rows in %s: %s", pipeline.destination, error)
        return None
    return counts


def summarize(
    spec: VendorSpec,
    pipeline: dlt.Pipeline,
    monitor: RunMonitor,
    result: LoadResult,
    began: float,
    start: dt.date | None,
    end: dt.date | None,
) -> RunSummary:
    waits, waited = monitor.rate_limit_waits
    loaded = rows_loaded(pipeline, sorted(result.extracted), result.load_ids)
    return RunSummary(
        vendor=spec.name,
        pipeline=pipeline.pipeline_name,
        destination=str(pipeline.destination.destination_name) if pipeline.destination else "?",
        dataset=pipeline.dataset_name,
        warehouse=warehouse_of(pipeline),
        state=pipeline.working_dir,
        start=start,
        end=end,
        rows=result.extracted if loaded is None else loaded,
        extracted=result.extracted,
        requests=monitor.requests,
        retries=monitor.retries,
        rate_limit_waits=waits,
        rate_limit_wait_seconds=waited,
        seconds=time.monotonic() - began,
        request_seconds=monitor.request_seconds,
        misfits=monitor.misfits,
        unchanged_rows=monitor.unchanged_rows,
    )


def run_vendor(
    spec: VendorSpec,
    options: LoadOptions | None = None,
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    full_refresh: bool = False,
    dbt: bool = False,
    account: str | None = None,
    **load: Any,
) -> RunSummary:
    """`full_refresh`: dlt's refresh, as dlt users know it: the source's tables and state are dropped (only the
    selected resources' with `resources`) and the run reloads from `start_date`. The CLI asks first.
    `account`: one of the vendor's accounts (`sources.common.accounts`); None: the implicit `default`."""
    with account_scope(account):
        return _run_vendor(spec, LoadOptions.of(options, **load), start, end, full_refresh, dbt)


def _run_vendor(
    spec: VendorSpec,
    options: LoadOptions,
    start: str | dt.date | None,
    end: str | dt.date | None,
    full_refresh: bool,
    dbt: bool,
) -> RunSummary:
    if full_refresh and current_account():
        raise ConfigError(
            f"--full-refresh with account {current_account()!r} would drop the {spec.name} tables every account "
            "shares: reload the account's rows with --start/--end instead (the merge replaces them), or delete "
            "them first with `delete from <dataset>.<table> where account = '...'`; nothing was dropped"
        )
    start_date, end_date = parse_range(
        start.isoformat() if isinstance(start, dt.date) else start,
        end.isoformat() if isinstance(end, dt.date) else end,
    )
    check_range_size(start_date, end_date, options.force)
    selected = parse_resources(spec, options.resources)
    check_pipeline_name(options.pipeline_name or f"clickhaul_{spec.name}")
    prepare_loads()
    kwargs: dict[str, Any] = dict(options.source_kwargs)
    if start_date:
        kwargs["start_date"] = start_date
        kwargs["end_date"] = end_date or today_utc()

    began = time.monotonic()
    with monitored(options.progress, spec.name) as monitor:
        with monitor.phase("setup"):
            source = build_source(spec, **kwargs)
            if selected:
                source = source.with_resources(*selected)
            monitor.plan(tables=len(source.selected_resources))
            pipeline = open_pipeline(spec, options)
            journal = Journal.of(pipeline)
        refresh: TRefreshMode | None = None
        if full_refresh:
            refresh = "drop_resources" if selected else "drop_sources"
        try:
            with translated_errors(spec, pipeline), monitor.phase("setup"):
                settle_pending(pipeline, options.on_pending)
                adopt_tables(pipeline)
                if not start_date or full_refresh:
                    guard_missing_state(pipeline, full_refresh)
                columns_before = schema_columns(pipeline)
            result = extract_and_load(pipeline, spec, source, refresh)
        except ClickhaulError as error:
            journal.record_error(str(error))
            raise
        finally:
            release_warehouse(pipeline)
        with monitor.phase("summary"):
            summary = summarize(spec, pipeline, monitor, result, began, start_date, kwargs.get("end_date"))
            summary.new_columns = added_columns(columns_before, schema_columns(pipeline))
        with monitor.phase("journal"):
            summary.phases = monitor.phases  # the journal's copy is complete up to its own write
            journal.record_success(summary)
            after_load(pipeline, journal, options.publish)
        summary.seconds = time.monotonic() - began
        log.info("%s: where the time went: %s", spec.name, render_phases(summary))
        if dbt:
            summary.dbt = build_marts(pipeline)
        return summary


def render_phases(summary: RunSummary) -> str:
    phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in summary.phases.items())
    return f"{phases}; requests on the wire {summary.request_seconds:.2f} s"


def build_marts(pipeline: dlt.Pipeline) -> str:
    """`--dbt`: the dbt package's staging models and marts, on the destination just loaded."""
    from .dbt_runner import pipeline_target, run_dbt

    result = run_dbt("build", **pipeline_target(pipeline))
    if not result.success:
        raise ClickhaulError(f"the load succeeded, dbt build failed:\n{result.render()}")
    return result.render()


def after_load(pipeline: dlt.Pipeline, journal: Journal, publish_to: str | None) -> None:
    """Housekeeping of a DuckDB file after a successful load: compact every N loads, publish a reader copy."""
    database = duckdb_file(pipeline)
    if database is None:
        if publish_to:
            raise ConfigError("--publish works with the duckdb destination only")
        return
    every = compact_every()
    if every:
        loads = int(journal.data.get("loads_since_compact", 0)) + 1
        if loads >= every:
            before, after = compact(database)
            log.warning("compacted %s: %.1f MB -> %.1f MB", database, before / 1e6, after / 1e6)
            loads = 0
        journal.data["loads_since_compact"] = loads
        journal.save()
    if publish_to:
        publish(database, Path(publish_to))


def compact_every() -> int:
    """Config `clickhaul.compact_every` (env CLICKHAUL__COMPACT_EVERY): compact the DuckDB file every N loads."""
    value: Any = dlt.config.get("clickhaul.compact_every")
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ConfigError(f"clickhaul.compact_every {value!r} is not a whole number") from None
