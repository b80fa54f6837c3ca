"""`clickhaul push pirsch`: send a loaded table's rows to Pirsch as page views and events, each hit once."""

from __future__ import annotations

from typing import Any

import click

from pipelines.command import ClickhaulCommand

from .pushing import push_from_warehouse, table_options


@click.command("pirsch", cls=ClickhaulCommand)
@table_options
@click.option("--domain-id", help="Overrides destination.pirsch.domain_id (default: the client's one domain).")
@click.option("--max-age-days", type=int, help="Overrides destination.pirsch.max_age_days (older rows are not sent).")
@click.option("--batch-size", type=int, help="Overrides destination.pirsch.batch_size (hits per batch, 100).")
@click.option("--workers", type=int, help="Overrides destination.pirsch.workers (default 2).")
def push_pirsch(
    table: str,
    database: str | None,
    destination: str | None,
    pipeline_name: str | None,
    mapping_name: str,
    key_columns: str | None,
    progress: str,
    **overrides: Any,
) -> None:
    """Send TABLE's rows to Pirsch through its batch endpoints (/api/v1/hit/batch, /api/v1/event/batch), each
    hit with its time, in order. Rows Pirsch acknowledged in an earlier run are skipped; rows it would drop (bots,
    another hostname, older than max_age_days) land in pirsch.pirsch_rejected with the reason. client_secret comes
    from [destination.pirsch] in .dlt/secrets.toml or DESTINATION__PIRSCH__CLIENT_SECRET."""
    from destinations.pirsch import push_table, resolve_config
    from destinations.pirsch.settings import DEFAULT_LEDGER_DATABASE

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
        push.add_command(push_pirsch)
