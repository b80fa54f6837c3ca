"""What `push umami` and `push pirsch` share: where the table is read from, where the ledger lives, the summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def table_options(command: F) -> F:
    """--table, --database, --destination, --pipeline, --mapping, --key, --progress."""
    options = [
        click.option(
            "--table", required=True, metavar="DATASET.TABLE", help="The table to send, e.g. opentracker.sessions."
        ),
        click.option(
            "--database",
            metavar="PATH",
            help="DuckDB file holding the table. Default: where `clickhaul run` loads it: [destination.duckdb] "
            "credentials (DESTINATION__DUCKDB__CREDENTIALS), else clickhaul_<DATASET>.duckdb here.",
        ),
        click.option(
            "--destination", help="Read the table from this dlt destination instead (e.g. postgres; as `run`)."
        ),
        click.option("--pipeline", "pipeline_name", help="The pipeline that loaded the table (clickhaul_<DATASET>)."),
        click.option(
            "--mapping",
            "mapping_name",
            default="default",
            show_default=True,
            help="How rows become hits: default (Tracking API or friendly column names), opentracker_sessions or "
            "umami_events.",
        ),
        click.option("--key", "key_columns", metavar="COL[,COL]", help="Columns that identify a row across runs."),
        click.option("--progress", type=click.Choice(["auto", "bar", "log", "off"]), default="auto", show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def push_from_warehouse(
    table: str,
    database: str | None,
    destination: str | None,
    pipeline_name: str | None,
    progress: str,
    default_ledger: str,
    push: Callable[[Any, Any, list[str] | None], Any],
    key_columns: str | None,
) -> Any:
    """Open TABLE in its warehouse, push it with `push(ledger_database, rows, keys)`, print the summary. The
    ledger lives in the warehouse (DuckDB or PostgreSQL), or for another destination in `default_ledger` here."""
    from ..runner import monitored
    from ..warehouse import ledger_place, open_table, resolve_warehouse, split_table

    dataset, _ = split_table(table)
    warehouse = resolve_warehouse(pipeline_name or f"clickhaul_{dataset}", database=database, destination=destination)
    keys = [part.strip() for part in key_columns.split(",") if part.strip()] if key_columns else None
    ledger = ledger_place(warehouse, default_ledger)
    with open_table(warehouse, table, read_only=warehouse.path is None) as rows, monitored(progress):  # type: ignore[arg-type]
        click.echo(f"reading {table} ({rows.total:,} rows) from {warehouse.describe()}; ledger in {ledger}")
        summary = push(ledger, rows, keys)
    click.echo(summary.render())
    return summary


def register(cli: click.Group) -> None:
    """Nothing to register: shared pieces of other commands."""
