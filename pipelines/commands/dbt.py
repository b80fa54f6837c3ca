"""`clickhaul dbt run|test|build` (the dbt package in `dbt/`) and `clickhaul report` (HTML charts from its marts)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pipelines.command import ClickhaulCommand
from sources.common.errors import ConfigError

TARGET = click.Choice(["duckdb", "postgres"])


def target_options(function: Any) -> Any:
    options = [
        click.option(
            "--target",
            type=TARGET,
            default="duckdb",
            show_default=True,
            help="Where the data was loaded: a DuckDB file, or PostgreSQL (credentials from dlt's "
            "destination.postgres.credentials, e.g. DESTINATION__POSTGRES__CREDENTIALS).",
        ),
        click.option(
            "--database",
            metavar="PATH",
            help="The DuckDB file clickhaul loaded into (duckdb target). Default: [destination.duckdb] credentials "
            "(DESTINATION__DUCKDB__CREDENTIALS), the file `run` loads every source into; else clickhaul_demo.duckdb.",
        ),
        click.option(
            "--schema", default="analytics", show_default=True, help="Schema of the marts (staging: <schema>_staging)."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def parse_vars(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise click.BadParameter('a JSON object, e.g. \'{"clickhaul_webtrekk_site_id": "123"}\'') from None
    if not isinstance(value, dict):
        raise click.BadParameter("a JSON object of dbt vars")
    return value


@click.command("dbt", cls=ClickhaulCommand)
@click.argument("command", type=click.Choice(["run", "test", "build"]))
@target_options
@click.option("--select", "select", multiple=True, help="dbt node selection (repeatable), e.g. marts or +fct_sessions.")
@click.option(
    "--vars", "vars_text", metavar="JSON", help='dbt vars of the package (README, "dbt package": Package vars).'
)
def dbt_command(
    command: str, target: str, database: str | None, schema: str, select: tuple[str, ...], vars_text: str | None
) -> None:
    """Build the staging models and cross-vendor marts on the loaded data (dbt run|test|build).

    The package, its vars and its models: README.md, section "dbt package"."""
    from pipelines.dbt_runner import run_dbt

    path = duckdb_path(target, database)
    result = run_dbt(
        command,
        target=target,
        database_path=path,
        schema=schema,
        vars=parse_vars(vars_text),
        select=select,
    )
    click.echo(result.render())
    if not result.success:
        sys.exit(1)


@click.command("report", cls=ClickhaulCommand)
@click.option("--out", default="report.html", show_default=True, help="The HTML file to write.")
@target_options
def report_command(out: str, target: str, database: str | None, schema: str) -> None:
    """Write a self-contained HTML report (daily traffic, top pages, top channels) from the dbt marts."""
    from pipelines.report import write_report

    path = duckdb_path(target, database)
    data = write_report(out, target=target, database_path=path, schema=schema)
    sites = len({label for label, _, _, _ in data.traffic})
    source = f" from DuckDB file {path}" if path else " from PostgreSQL"
    click.echo(
        f"ok: wrote {out}{source}: {sites} site(s) of daily traffic, {len(data.pages)} pages, "
        f"{len(data.channels)} channels"
    )


def duckdb_path(target: str, database: str | None) -> str | None:
    """The DuckDB file by the rule every command follows; dbt reads every source at once, so the default is the
    configured warehouse (or the demo's file), not one pipeline's."""
    if target != "duckdb":
        return None
    from pipelines.warehouse import SHARED_DEFAULT, resolve_warehouse

    warehouse = resolve_warehouse(SHARED_DEFAULT, database=database)
    if warehouse.path is None or not warehouse.path.is_file():
        raise ConfigError(warehouse.missing_hint())
    return str(warehouse.path)


def register(cli: click.Group) -> None:
    cli.add_command(dbt_command)
    cli.add_command(report_command)
