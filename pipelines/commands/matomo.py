"""`clickhaul push matomo`: send a loaded table's rows to Matomo as tracking hits, each hit once."""

from __future__ import annotations

from typing import Any

import click

from pipelines.cli import handle_errors


@click.command("matomo")
@click.option("--table", required=True, metavar="DATASET.TABLE", help="The table to send, e.g. opentracker.sessions.")
@click.option(
    "--database",
    metavar="PATH",
    help="DuckDB file holding the table (default: clickhaul_<DATASET>.duckdb, where `clickhaul run` loads it).",
)
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
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "off"]), default="auto", show_default=True)
@handle_errors
def push_matomo(
    table: str,
    database: str | None,
    mapping_name: str,
    key_columns: str | None,
    tracking_url: str | None,
    idsite: int | None,
    batch_size: int | None,
    workers: int | None,
    queued_tracking: bool | None,
    progress: str,
) -> None:
    """Send TABLE's rows to Matomo with bulk tracking. Rows Matomo acknowledged in an earlier run are skipped;
    rows that fail validation land in matomo.matomo_rejected. token_auth comes from [destination.matomo] in
    .dlt/secrets.toml or DESTINATION__MATOMO__TOKEN_AUTH, never from the command line."""
    from destinations.matomo import push_table, resolve_config, split_table

    from ..runner import monitored

    dataset, _ = split_table(table)
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
    with monitored(progress) as _:  # type: ignore[arg-type]
        summary = push_table(
            database or f"clickhaul_{dataset}.duckdb", table, config=config, mapping_name=mapping_name, key_columns=keys
        )
    click.echo(summary.render())


def register(cli: click.Group) -> None:
    push = cli.commands.get("push")
    if isinstance(push, click.Group):
        push.add_command(push_matomo)
