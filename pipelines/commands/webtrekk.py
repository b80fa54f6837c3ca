"""Webtrekk commands: `clickhaul push webtrekk` (importData) and `clickhaul webtrekk delete-tv-data`."""

from __future__ import annotations

import click

from pipelines.command import ClickhaulCommand, ClickhaulGroup


@click.command("webtrekk", cls=ClickhaulCommand)
@click.option("--upload-type", required=True, help="importData uploadType, e.g. content_categories.")
@click.option("--table", "table", required=True, metavar="DATASET.TABLE", help="The loaded table to upload.")
@click.option(
    "--database",
    metavar="PATH",
    help="DuckDB file holding the table. Default: where `clickhaul run` loads it: [destination.duckdb] "
    "credentials (DESTINATION__DUCKDB__CREDENTIALS), else clickhaul_<DATASET>.duckdb in the working directory.",
)
@click.option("--destination", help="Read the table from this dlt destination instead (e.g. postgres).")
@click.option("--pipeline", "pipeline_name", help="The pipeline that loaded the table (default: clickhaul_<DATASET>).")
@click.option("--chunk-rows", type=click.IntRange(1, 10_000), default=10_000, show_default=True)
def push_webtrekk(
    upload_type: str,
    table: str,
    database: str | None,
    destination: str | None,
    pipeline_name: str | None,
    chunk_rows: int,
) -> None:
    """Upload a table's rows to Webtrekk with importData (header row + rows, at most 10,000 rows a call)."""
    from destinations.webtrekk import UPLOAD_TYPES, push_table
    from pipelines.warehouse import open_table, resolve_warehouse, split_table
    from sources.webtrekk.config import WebtrekkConfig

    if upload_type not in UPLOAD_TYPES:
        raise click.BadParameter(f"choose one of {', '.join(UPLOAD_TYPES)}", param_hint="--upload-type")
    dataset, _ = split_table(table)
    warehouse = resolve_warehouse(pipeline_name or f"clickhaul_{dataset}", database=database, destination=destination)
    with open_table(warehouse, table) as rows:  # a missing warehouse or table is named first
        config = WebtrekkConfig.from_config()  # then bad settings, before the rows are read
        total, calls = push_table(config, rows, upload_type, chunk_rows, echo=click.echo)
    click.echo(f"ok: {total:,} rows of {table} imported as {upload_type} in {calls} call(s)")


@click.group("webtrekk", cls=ClickhaulGroup)
def webtrekk_group() -> None:
    """Webtrekk administration."""


@webtrekk_group.command("delete-tv-data")
@click.option("--start", required=True, metavar="'YYYY-MM-DD[ HH:MM:SS]'", help="First moment to delete.")
@click.option("--stop", required=True, metavar="'YYYY-MM-DD[ HH:MM:SS]'", help="Last moment (a date: its end).")
@click.option("--yes", is_flag=True, help="Really delete. Without it nothing is sent.")
def delete_tv_data(start: str, stop: str, yes: bool) -> None:
    """Initiate the deletion of the account's TV data between --start and --stop (deleteTvData)."""
    import sys

    from destinations.webtrekk import delete_tv_data, tv_range
    from sources.webtrekk.config import WebtrekkConfig

    time_start, time_stop = tv_range(start, stop)
    config = WebtrekkConfig.from_config()
    account = config.customer_id or "(customer_id not set)"
    click.echo(f"this deletes the TV data of Webtrekk customer {account} from {time_start} to {time_stop}")
    if not yes:
        click.echo("refusing without --yes: nothing was sent; run again with --yes to delete", err=True)
        sys.exit(1)
    answer = delete_tv_data(config, time_start, time_stop)
    click.echo(f"ok: {'; '.join(str(part) for part in answer)}")


def register(cli: click.Group) -> None:
    push = cli.commands.get("push")
    if isinstance(push, click.Group):
        push.add_command(push_webtrekk)
    cli.add_command(webtrekk_group)
