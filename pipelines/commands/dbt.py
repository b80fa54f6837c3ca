"""`clickhaul dbt run|test|build` (the dbt package in `dbt/`) and `clickhaul report` (HTML charts from its marts)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pipelines.cli import handle_errors

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
            default="clickhaul_demo.duckdb",
            show_default=True,
            help="The DuckDB file clickhaul loaded into (duckdb target).",
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


@click.command("dbt")
@click.argument("command", type=click.Choice(["run", "test", "build"]))
@target_options
@click.option("--select", "select", multiple=True, help="dbt node selection (repeatable), e.g. marts or +fct_sessions.")
@click.option("--vars", "vars_text", metavar="JSON", help="dbt vars of the package (see docs/dbt.md).")
@handle_errors
def dbt_command(
    command: str, target: str, database: str, schema: str, select: tuple[str, ...], vars_text: str | None
) -> None:
    """Build the staging models and cross-vendor marts on the loaded data (dbt run|test|build)."""
    from pipelines.dbt_runner import run_dbt

    result = run_dbt(
        command,
        target=target,
        database_path=database if target == "duckdb" else None,
        schema=schema,
        vars=parse_vars(vars_text),
        select=select,
    )
    click.echo(result.render())
    if not result.success:
        sys.exit(1)


@click.command("report")
@click.option("--out", default="report.html", show_default=True, help="The HTML file to write.")
@target_options
@handle_errors
def report_command(out: str, target: str, database: str, schema: str) -> None:
    """Write a self-contained HTML report (daily traffic, top pages, top channels) from the dbt marts."""
    from pipelines.report import write_report

    data = write_report(out, target=target, database_path=database if target == "duckdb" else None, schema=schema)
    sites = len({label for label, _, _, _ in data.traffic})
    click.echo(
        f"ok: wrote {out}: {sites} site(s) of daily traffic, {len(data.pages)} pages, {len(data.channels)} channels"
    )


def register(cli: click.Group) -> None:
    cli.add_command(dbt_command)
    cli.add_command(report_command)
