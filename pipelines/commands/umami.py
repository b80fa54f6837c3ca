"""`clickhaul push umami`: send a loaded table's rows to Umami as page views and custom events, each hit once."""

from __future__ import annotations

from typing import Any

import click

from pipelines.command import ClickhaulCommand

from .pushing import push_from_warehouse, table_options


@click.command("umami", cls=ClickhaulCommand)
@table_options
@click.option("--base-url", help="Overrides destination.umami.base_url.")
@click.option("--website-id", help="Overrides destination.umami.website_id (the website the hits go to).")
@click.option("--hostname", help="Overrides destination.umami.hostname (for rows whose URL has no host).")
@click.option("--batch-size", type=int, help="Overrides destination.umami.batch_size (hits per ledger batch, 50).")
@click.option("--workers", type=int, help="Overrides destination.umami.workers (default 4).")
def push_umami(
    table: str,
    database: str | None,
    destination: str | None,
    pipeline_name: str | None,
    mapping_name: str,
    key_columns: str | None,
    progress: str,
    **overrides: Any,
) -> None:
    """Send TABLE's rows to Umami through POST /api/send (Umami 2 and 3): page views, and custom events with their
    data. Rows Umami acknowledged in an earlier run are skipped; rows it would drop or refuse land in
    umami.umami_rejected with the reason. The password or api_key comes from [destination.umami] in
    .dlt/secrets.toml or DESTINATION__UMAMI__PASSWORD / __API_KEY, never from the command line.

    Umami has no de-duplication: the ledger (in the warehouse when it is DuckDB or PostgreSQL, else
    umami_ledger.duckdb here) is what keeps a hit from being counted twice; a hit whose answer was lost is looked
    for among the website's events."""
    from destinations.umami import push_table, resolve_config
    from destinations.umami.settings import DEFAULT_LEDGER_DATABASE

    config = resolve_config(**{name: value for name, value in overrides.items() if value is not None})
    push_from_warehouse(
        table, database, destination, pipeline_name, progress, DEFAULT_LEDGER_DATABASE,
        lambda ledger, rows, keys: push_table(
            ledger, table, config=config, mapping_name=mapping_name, key_columns=keys, rows=rows
        ),
        key_columns,
    )  # fmt: skip


def register(cli: click.Group) -> None:
    push = cli.commands.get("push")
    if isinstance(push, click.Group):
        push.add_command(push_umami)
