"""`clickhaul`: run, check, simulate and demo every vendor."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sources.common.errors import ClickhaulError
from sources.common.redact import redact

from .registry import VENDORS, vendor

F = TypeVar("F", bound=Callable[..., Any])


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("clickhaul").setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)
    # dlt's own progress and warnings are noise next to ours unless asked for.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "INFO" if verbose else "ERROR")


def fail(error: BaseException) -> None:
    click.echo(f"error: {redact(str(error))}", err=True)
    sys.exit(1)


def handle_errors(function: F) -> F:
    """Every expected failure ends as one line on stderr and exit status 1, never a trace."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ClickhaulError as error:
            fail(error)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


SOURCE = click.Choice(list(VENDORS), case_sensitive=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log every request and retry.")
def cli(verbose: bool) -> None:
    """clickhaul: load web-analytics vendors' data into DuckDB or any dlt destination."""
    configure_logging(verbose)


def load_options(function: F) -> F:
    """Where and how a load goes: shared by `run` and `backfill`."""
    options = [
        click.option("--resources", metavar="A,B", help="Only these resources (comma separated)."),
        click.option("--destination", default="duckdb", show_default=True, help="Any dlt destination name."),
        click.option("--dataset", help="Dataset (schema) name. Default: the source name."),
        click.option("--pipeline", "pipeline_name", help="dlt pipeline name. Default: clickhaul_<source>."),
        click.option(
            "--progress",
            type=click.Choice(["auto", "bar", "log", "off"]),
            default="auto",
            show_default=True,
            help="Progress display: a bar on a terminal, log lines for schedulers.",
        ),
        click.option(
            "--on-pending",
            type=click.Choice(["load", "drop", "fail"]),
            default="load",
            show_default=True,
            help="What to do with load packages a failed run left behind (default: load them first).",
        ),
        click.option("--force", is_flag=True, help="Override a source's safety checks (e.g. a vendor quota)."),
        click.option(
            "--publish",
            metavar="PATH",
            help="After a successful load, atomically replace a read-only copy of the DuckDB file at PATH for readers.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command()
@click.argument("source", type=SOURCE)
@click.option("--start", metavar="YYYY-MM-DD", help="First day to load (inclusive). Without it: incremental.")
@click.option("--end", metavar="YYYY-MM-DD", help="Last day to load (inclusive). Default: today.")
@click.option(
    "--dbt", is_flag=True, help="After the load, build the dbt staging models and marts on the same destination."
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Run incrementally even though the dataset has tables but no saved state exists (reloads from start_date).",
)
@load_options
@handle_errors
def run(source: str, start: str | None, end: str | None, **load: Any) -> None:
    """Load SOURCE: an incremental run from saved state, or exactly --start..--end."""
    from .runner import run_vendor

    click.echo(run_vendor(vendor(source.lower()), start=start, end=end, **load).render())


@cli.command()
@click.argument("source", type=SOURCE)
@click.option("--start", metavar="YYYY-MM-DD", required=True, help="First day (inclusive).")
@click.option("--end", metavar="YYYY-MM-DD", required=True, help="Last day (inclusive).")
@click.option(
    "--chunk",
    type=click.Choice(["day", "week", "month"]),
    default="day",
    show_default=True,
    help="Window size: each window is loaded and recorded before the next.",
)
@click.option("--workers", type=int, default=None, help="Parallel extraction threads per window (default: dlt's 5).")
@load_options
@handle_errors
def backfill(source: str, start: str, end: str, chunk: str, workers: int | None, **load: Any) -> None:
    """Load SOURCE for --start..--end window by window; after a crash or Ctrl-C, the same command continues."""
    from .backfill import run_backfill

    summary = run_backfill(vendor(source.lower()), start=start, end=end, chunk=chunk, workers=workers, **load)  # type: ignore[arg-type]
    click.echo(summary.render())
    if summary.interrupted:
        sys.exit(130)


@cli.command()
@click.argument("source", type=SOURCE, required=False)
@click.option("--pipeline", "pipeline_name", help="dlt pipeline name. Default: clickhaul_<source>.")
@handle_errors
def status(source: str | None, pipeline_name: str | None) -> None:
    """Last run, cursor, backfill progress, rows per table and last error, per source."""
    from .status import pipeline_status

    names = [source.lower()] if source else list(VENDORS)
    for name in names:
        click.echo(pipeline_status(vendor(name), pipeline_name).render())


@cli.command()
@click.argument("source", type=SOURCE, required=False)
@click.option("--database", metavar="PATH", help="The DuckDB file. Default: the source's, clickhaul_<source>.duckdb.")
@handle_errors
def compact(source: str | None, database: str | None) -> None:
    """Rewrite a DuckDB file without the space merges leave behind (copy, verify, swap; the original is kept on
    any failure). Run it when nothing else has the file open."""
    from pathlib import Path

    from .duckdb_files import compact as compact_file

    if not database:
        if not source:
            raise ClickhaulError("give a SOURCE or --database PATH")
        database = os.environ.get("DESTINATION__DUCKDB__CREDENTIALS") or f"clickhaul_{source.lower()}.duckdb"
    before, after = compact_file(Path(database))
    click.echo(f"compacted {database}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


@cli.command()
@click.argument("source", type=SOURCE)
@handle_errors
def check(source: str) -> None:
    """Verify SOURCE's credentials and reachability (exit status 0 or 1)."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    from sources.common.config import translate_config_error

    spec = vendor(source.lower())
    try:
        message = spec.check_function()()
    except ConfigFieldMissingException as error:
        raise translate_config_error(spec.name, error) from None
    except ClickhaulError as error:
        raise ClickhaulError(f"{spec.name} check failed: {error}") from None
    click.echo(f"ok: {message}")


@cli.command()
@click.argument("source", type=SOURCE)
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
def simulate(source: str, port: int) -> None:
    """Serve SOURCE's simulator on 127.0.0.1 for you to explore (Ctrl-C stops it)."""
    spec = vendor(source.lower())
    simulator = spec.simulator_class()(port=port)
    simulator.start()
    plan = spec.demo_function()(simulator)
    click.echo(f"{spec.name} simulator listening on {simulator.url}")
    click.echo("point clickhaul at it with:")
    for key, value in plan.env.items():
        click.echo(f"  export {key}={value}")
    click.echo(f"then e.g.: clickhaul run {spec.name} --start {plan.start} --end {plan.end}")
    click.echo("Ctrl-C stops the simulator")
    simulator.serve_forever()


@cli.group()
def push() -> None:
    """Send rows from a loaded table back to a vendor (Matomo tracking, Webtrekk importData)."""


@cli.command()
@click.option("--database", default="clickhaul_demo.duckdb", show_default=True, help="DuckDB file to load into.")
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "off"]), default="off", show_default=True)
@handle_errors
def demo(database: str, progress: str) -> None:
    """Start the bundled simulators, load every source into a local DuckDB file and show what landed."""
    from .demo import run_demo

    run_demo(database, progress=progress, echo=click.echo)  # type: ignore[arg-type]


def main() -> None:
    cli(prog_name="clickhaul")


from .commands import register_all  # noqa: E402 - the commands attach to `cli`, defined above

register_all(cli)


if __name__ == "__main__":
    main()
