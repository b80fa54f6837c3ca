"""`clickhaul migrate FROM --to TO`: move a vendor's history into another and reconcile it day by day."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.command import ClickhaulCommand


@click.command("migrate", cls=ClickhaulCommand)
@click.argument("source", metavar="FROM")
@click.option("--to", "target", required=True, help="The vendor to move the history into: matomo, umami or pirsch.")
@click.option("--start", required=True, metavar="YYYY-MM-DD", help="First UTC day to move.")
@click.option("--end", metavar="YYYY-MM-DD", help="Last UTC day to move (default: --start).")
@click.option(
    "--database",
    metavar="PATH",
    help="FROM's DuckDB warehouse (default: where `clickhaul run FROM` loads it); the ledger and "
    "migrate.reconciliation live there.",
)
@click.option("--html", "html_path", metavar="PATH", help="Where to write the reconciliation page "
              "(default: migrate_<FROM>_<TO>.html here).")  # fmt: skip
def migrate_command(
    source: str, target: str, start: str, end: str | None, database: str | None, html_path: str | None
) -> None:
    """Load FROM for the range when needed, push its rows to TO as hits (each once: a second run sends nothing,
    a killed run resumes), read TO back through clickhaul's own source for it, and reconcile every UTC day:
    visits, page views and events on each side, the difference and its counted causes. Settings of TO come from
    [destination.<TO>] as for `clickhaul push <TO>`."""
    from ..migrate import run_migrate
    from ..runner import parse_range
    from ..warehouse import resolve_warehouse

    first, last = parse_range(start, end)
    assert first is not None
    last = last or first
    warehouse = resolve_warehouse(f"clickhaul_{source}", database=database)
    if warehouse.path is None:
        raise click.UsageError("migrate works on a DuckDB warehouse: give --database")
    page = Path(html_path or f"migrate_{source}_{target}.html").resolve()
    migration = run_migrate(source, target, first, last, database=warehouse.path, workdir=Path.cwd(), html_path=page)
    click.echo(migration.render())
    click.echo(f"reconciliation in {warehouse.path} (migrate.reconciliation) and {page}")
    if migration.unexplained:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(migrate_command)
