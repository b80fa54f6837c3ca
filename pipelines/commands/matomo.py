"""`clickhaul push matomo`: send a loaded table's rows to Matomo as tracking hits, each hit once."""

from __future__ import annotations

from typing import Any

import click

from pipelines.command import ClickhaulCommand


@click.command("matomo", cls=ClickhaulCommand)
@click.option("--table", required=True, metavar="DATASET.TABLE", help="The table to send, e.g. opentracker.sessions.")
@click.option(
    "--database",
    metavar="PATH",
    help="DuckDB file holding the table. Default: where `clickhaul run` loads it: [destination.duckdb] "
    "credentials (DESTINATION__DUCKDB__CREDENTIALS), else clickhaul_<DATASET>.duckdb in the working directory.",
)
@click.option(
    "--destination",
    help="Read the table from this dlt destination instead (e.g. postgres; credentials from dlt config, as `run`).",
)
@click.option("--pipeline", "pipeline_name", help="The pipeline that loaded the table (default: clickhaul_<DATASET>).")
@click.option(
    "--mapping",
    "mapping_name",
    default="default",
    show_default=True,
    help="How rows become hits: default (Tracking API or friendly column names) or opentracker_sessions.",
)
@click.option("--key", "key_columns", metavar="COL[,COL]", help="Columns that identify a row across runs.")
@click.option("--tracking-url", help="Overrides destination.matomo.tracking_url (…/matomo.php).")
@click.option("--idsite", type=int, help="Overrides destination.matomo.idsite (rows without idsite).")
@click.option("--batch-size", type=int, help="Overrides destination.matomo.batch_size (default 200).")
@click.option("--workers", type=int, help="Overrides destination.matomo.workers (default 4).")
@click.option(
    "--queued-tracking/--no-queued-tracking",
    default=None,
    help="Overrides destination.matomo.queued_tracking (default off: queuedtracking=0 is sent).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even though this ledger has no record of the table and Matomo already holds visits in its days.",
)
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "off"]), default="auto", show_default=True)
def push_matomo(
    table: str,
    database: str | None,
    destination: str | None,
    pipeline_name: str | None,
    mapping_name: str,
    key_columns: str | None,
    tracking_url: str | None,
    idsite: int | None,
    batch_size: int | None,
    workers: int | None,
    queued_tracking: bool | None,
    force: bool,
    progress: str,
) -> None:
    """Send TABLE's rows to Matomo with bulk tracking. Rows Matomo acknowledged in an earlier run are skipped;
    rows that fail validation land in matomo.matomo_rejected. token_auth comes from [destination.matomo] in
    .dlt/secrets.toml or DESTINATION__MATOMO__TOKEN_AUTH, never from the command line.

    The table is read from the warehouse `clickhaul run` loaded (any dlt SQL destination); the ledger of what
    Matomo acknowledged lives in that warehouse (DuckDB or PostgreSQL), or for another destination in
    matomo_ledger.duckdb here."""

    from destinations.matomo import push_table, resolve_config
    from destinations.matomo.settings import DEFAULT_LEDGER_DATABASE

    from ..runner import monitored
    from ..warehouse import ledger_place, open_table, resolve_warehouse, split_table

    dataset, _ = split_table(table)
    warehouse = resolve_warehouse(pipeline_name or f"clickhaul_{dataset}", database=database, destination=destination)
    overrides: dict[str, Any] = {
        name: value
        for name, value in dict(
            tracking_url=tracking_url,
            idsite=idsite,
            batch_size=batch_size,
            workers=workers,
            queued_tracking=queued_tracking,
        ).items()
        if value is not None
    }
    config = resolve_config(**overrides)
    keys = [part.strip() for part in key_columns.split(",") if part.strip()] if key_columns else None
    ledger = ledger_place(warehouse, DEFAULT_LEDGER_DATABASE)
    # The ledger writes into a DuckDB warehouse: the table is opened for writing too (one process, one database).
    with open_table(warehouse, table, read_only=warehouse.path is None) as rows, monitored(progress):  # type: ignore[arg-type]
        click.echo(f"reading {table} ({rows.total:,} rows) from {warehouse.describe()}; ledger in {ledger}")
        summary = push_table(
            ledger, table, config=config, mapping_name=mapping_name, key_columns=keys, rows=rows, force=force
        )
    click.echo(summary.render())


def register(cli: click.Group) -> None:
    push = cli.commands.get("push")
    if isinstance(push, click.Group):
        push.add_command(push_matomo)
