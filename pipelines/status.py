"""`clickhaul status`: what a person on call needs at 3 a.m. — last success, cursor, backfill progress, rows,
last error — read from the pipeline's local state and its destination.

The state and schema are read from their files (`dlt_files`), not through `dlt.attach`: status answers in a
fraction of a second, where importing dlt alone takes half of one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sources.common.accounts import DEFAULT_ACCOUNT, account_pipeline_name
from sources.common.errors import ClickhaulError
from sources.common.incremental import WATERMARKS, legacy_cursor

from . import dlt_files
from .journal import FILE_NAME, Journal
from .warehouse import DUCKDB, Warehouse, first_line, open_dataset, resolve_warehouse


@dataclass
class PipelineStatus:
    vendor: str
    pipeline: str
    exists: bool
    state: str = ""  # the pipeline's folder under dlt's data directory
    warehouse: str = ""
    last_success: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    watermarks: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> entity -> last complete day
    backfill: dict[str, Any] | None = None
    rows: dict[str, int] = field(default_factory=dict)
    rows_error: str | None = None

    def render(self) -> str:
        if not self.exists:
            return f"{self.vendor}: no pipeline {self.pipeline} yet in {self.state} (run `clickhaul run {self.vendor}`)"
        lines = [f"{self.vendor} (pipeline {self.pipeline}, state in {self.state})", f"  warehouse: {self.warehouse}"]
        if self.last_success:
            success = self.last_success
            span = f" {success.get('start')}..{success.get('end')}" if success.get("start") else ""
            lines.append(
                f"  last success: {success['at']}{span}, {sum((success.get('rows') or {}).values()):,} rows, "
                f"{success.get('requests', 0):,} requests"
            )
        else:
            lines.append("  last success: never")
        lines += render_watermarks(self.watermarks)
        if self.backfill:
            done, windows = len(self.backfill["done"]), len(self.backfill["windows"])
            pending = [w for w in self.backfill["windows"] if w not in set(self.backfill["done"])]
            state = "finished" if not pending else f"interrupted, {len(pending)} pending from {pending[0]}"
            lines.append(f"  backfill {self.backfill['key']}: {done}/{windows} windows done, {state}")
        if self.rows:
            width = max(len(name) for name in self.rows)
            lines.append("  rows:")
            lines += [f"    {name:<{width}}  {count:>10,}" for name, count in sorted(self.rows.items())]
        elif self.rows_error:
            lines.append(f"  rows: unavailable ({self.rows_error})")
        if self.last_error and (not self.last_success or self.last_error["at"] >= self.last_success["at"]):
            lines.append(f"  last error: {self.last_error['at']}: {self.last_error['message']}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_watermarks(watermarks: dict[str, dict[str, str]]) -> list[str]:
    """One line when every table is complete through the same day, else a line per table (and entity, where
    its entities differ): the day the next scheduled run re-reads its lookback from."""
    days = {day for marks in watermarks.values() for day in marks.values()}
    if not days:
        return []
    if len(days) == 1:
        return [f"  complete through: {days.pop()} (every table and entity; the next run re-reads the lookback)"]
    lines = ["  complete through (per table and entity; the next run re-reads the lookback before it):"]
    width = max(len(table) for table in watermarks)
    for table, marks in sorted(watermarks.items()):
        if len(set(marks.values())) == 1:
            text = f"{next(iter(marks.values()))} ({len(marks)} {'entity' if len(marks) == 1 else 'entities'})"
        else:
            text = ", ".join(f"{entity} {day}" for entity, day in sorted(marks.items()))
        lines.append(f"    {table:<{width}}  {text}")
    return lines


def table_watermarks(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each day-based resource's watermark per entity, from the pipeline state (an earlier version's single
    cursor shows as the table's `*`)."""
    found: dict[str, dict[str, str]] = {}
    for source in (state.get("sources") or {}).values():
        for resource, resource_state in (source.get("resources") or {}).items():
            marks = resource_state.get(WATERMARKS)
            if isinstance(marks, dict):
                found[resource] = {str(entity): str(day) for entity, day in marks.items()}
            elif (legacy := legacy_cursor(resource_state)) is not None:
                found[resource] = {"*": legacy.isoformat()}
    return found


def pipeline_status(
    vendor: str,
    pipeline_name: str | None = None,
    pipelines_dir: str | None = None,
    database: str | None = None,
    account: str | None = None,
) -> PipelineStatus:
    """`vendor` by name only: its spec would import the vendor's source, and with it dlt. `account`: one of the
    vendor's accounts, whose pipeline is `<pipeline>__<account>` in the same warehouse."""
    base = pipeline_name or f"clickhaul_{vendor}"
    name = account_pipeline_name(base, account or DEFAULT_ACCOUNT)
    directory = Path(pipelines_dir or dlt_files.pipelines_dir()) / name
    status = PipelineStatus(vendor, name, exists=(directory / dlt_files.STATE_FILE).exists(), state=str(directory))
    if not status.exists:
        return status
    journal = Journal(directory / FILE_NAME)
    status.last_success = journal.data.get("last_success")
    status.last_error = journal.data.get("last_error")
    current = journal.data.get("current_backfill")
    if current and journal.backfill(current):
        status.backfill = {"key": current, **journal.backfill(current)}  # type: ignore[dict-item]
    state = dlt_files.read_state(directory)
    status.watermarks = table_watermarks(state)
    warehouse = resolve_warehouse(
        base, database=database, destination=destination_of(state), pipelines_dir=pipelines_dir
    )
    status.warehouse = warehouse.describe()
    try:
        schema = state.get("default_schema_name")
        tables = dlt_files.data_table_names(directory, schema) if schema else []
        status.rows = table_rows(warehouse, str(state.get("dataset_name") or vendor), tables)
    except ClickhaulError as error:  # locked (after the same wait as every command), missing, unreachable
        status.rows_error = str(error)
    except Exception as error:  # the destination may be down; status must still answer, in whole words
        status.rows_error = f"{type(error).__name__}: {first_line(str(error))}"
    return status


def destination_of(state: dict[str, Any]) -> str:
    """The destination the pipeline last loaded into: its name, else the last part of its type
    ("dlt.destinations.postgres")."""
    return str(state.get("destination_name") or str(state.get("destination_type") or DUCKDB).rpartition(".")[2])


def table_rows(warehouse: Warehouse, dataset_name: str, tables: list[str]) -> dict[str, int]:
    """`count(*)` of each table the pipeline's schema knows, read from the warehouse by the one rule."""
    if not tables:
        return {}
    if warehouse.path is not None and not warehouse.path.exists():
        raise ClickhaulError(warehouse.missing_hint())
    with open_dataset(warehouse, dataset_name) as dataset:
        present = set(dataset.tables())
        return {table: dataset.count(table) for table in tables if table in present}
