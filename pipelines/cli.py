"""`clickhaul`: run, check, simulate and demo every vendor."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sources.common.errors import ClickhaulError, ConfigError

from .command import ClickhaulGroup
from .commands import register_all
from .options import LoadOptions
from .registry import VENDORS, vendor

F = TypeVar("F", bound=Callable[..., Any])


class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now: the live progress display redirects it to print above itself."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool) -> None:
    handler = CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    logging.getLogger("clickhaul").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("clickhaul.progress").setLevel(logging.INFO)  # the piped progress lines
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)
    # dlt's own progress and warnings are noise next to ours unless asked for.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "INFO" if verbose else "ERROR")
    # dlt's own Ctrl-C handling in normalize and load waits for its job pools to drain (minutes, on a big load);
    # the CLI's handler (`interrupt`) ends the process within a second, which every step survives.
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")


SOURCE = click.Choice(list(VENDORS), case_sensitive=False)


def print_version(context: click.Context, _: Any, value: bool) -> None:
    if not value or context.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    click.echo(
        f"clickhaul {of('clickhaul')} (dlt {of('dlt')}, duckdb {of('duckdb')}, dbt-core {of('dbt-core')}, "
        f"Python {sys.version.split()[0]})"
    )
    context.exit()


@click.group(cls=ClickhaulGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Show the versions of clickhaul, dlt, duckdb and dbt, then exit.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request and retry.")
def cli(verbose: bool) -> None:
    """clickhaul: load web-analytics vendors' data into DuckDB or any dlt destination.

    Every command finds the warehouse the same way: --database/--destination if given, else
    [destination.duckdb] credentials (DESTINATION__DUCKDB__CREDENTIALS), else <pipeline>.duckdb in the
    working directory."""
    configure_logging(verbose)


def load_options(function: F) -> F:
    """Where and how a load goes: shared by `run` and `backfill`."""
    options = [
        click.option(
            "--resources",
            metavar="A,B",
            help="Only these resources (comma separated; `clickhaul resources SOURCE` lists them).",
        ),
        click.option("--destination", default="duckdb", show_default=True, help="Any dlt destination name."),
        click.option(
            "--database",
            metavar="PATH",
            help="The DuckDB file to load into. Default: [destination.duckdb] credentials "
            "(DESTINATION__DUCKDB__CREDENTIALS), else <pipeline>.duckdb in the working directory.",
        ),
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

    @functools.wraps(function)
    def with_load_options(**params: Any) -> Any:
        flags = {name: params.pop(name) for name in LOAD_FLAGS}
        return function(load=LoadOptions(**flags), **params)

    for option in reversed(options):
        with_load_options = option(with_load_options)
    return with_load_options  # type: ignore[return-value]


ACCOUNT_OPTION = click.option(
    "--account",
    metavar="NAME",
    help="Only this account ([sources.<source>.accounts.NAME]). Default: every declared account, one after another.",
)


def each_account(source: str, account: str | None) -> list[str]:
    from .accounts import accounts_to_run

    return accounts_to_run(source, account)


LOAD_FLAGS = (
    "resources",
    "destination",
    "database",
    "dataset",
    "pipeline_name",
    "progress",
    "on_pending",
    "force",
    "publish",
)


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
    help="Drop the source's tables and saved state (only the --resources' with --resources), then reload from "
    "start_date. Asks first on a terminal; needs --yes otherwise.",
)
@click.option("--yes", is_flag=True, help="Confirm --full-refresh without asking.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what the run would load (days, resources, requests against the rate limit) without loading.",
)
@ACCOUNT_OPTION
@load_options
def run(
    source: str,
    start: str | None,
    end: str | None,
    dbt: bool,
    full_refresh: bool,
    yes: bool,
    dry_run: bool,
    account: str | None,
    load: LoadOptions,
) -> None:
    """Load SOURCE: an incremental run from saved state, or exactly --start..--end."""
    spec = vendor(source.lower())
    if dry_run:
        from .dryrun import plan_run

        for name in each_account(spec.name, account):
            click.echo(plan_run(spec, load, start=start, end=end, account=name).render())
        return
    if full_refresh:
        confirm_full_refresh(spec.name, load, yes)
    from .runner import run_vendor

    names = each_account(spec.name, account)
    for index, name in enumerate(names):
        last = index == len(names) - 1  # dbt builds the marts once, after every account is loaded
        summary = run_vendor(
            spec, load, start=start, end=end, full_refresh=full_refresh, dbt=dbt and last, account=name
        )
        click.echo(summary.render())


def confirm_full_refresh(source: str, load: LoadOptions, yes: bool) -> None:
    """--full-refresh destroys what earlier runs loaded: say what, and ask (or require --yes without a terminal)."""
    from .warehouse import resolve_warehouse

    pipeline = load.pipeline_name or f"clickhaul_{source}"
    warehouse = resolve_warehouse(pipeline, database=load.database, destination=load.destination)
    what = f"the tables of {load.resources}" if load.resources else "every table"
    question = (
        f"--full-refresh drops {what} of dataset {load.dataset or source} in {warehouse.describe()} and "
        f"the saved state of pipeline {pipeline}, then reloads from start_date"
    )
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{question}: add --yes to confirm (there is no terminal to ask on); nothing was dropped")
    if not click.confirm(f"{question}. Continue?", default=False, err=True):
        raise ConfigError("--full-refresh not confirmed: nothing was dropped")


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
@ACCOUNT_OPTION
@load_options
def backfill(
    source: str, start: str, end: str, chunk: str, workers: int | None, account: str | None, load: LoadOptions
) -> None:
    """Load SOURCE for --start..--end window by window; after a crash or Ctrl-C, the same command continues."""
    from .backfill import run_backfill

    spec = vendor(source.lower())
    for name in each_account(spec.name, account):
        summary = run_backfill(spec, load, start=start, end=end, chunk=chunk, workers=workers, account=name)  # type: ignore[arg-type]
        click.echo(summary.render())
        if summary.interrupted:
            sys.exit(130)


@cli.command()
@click.argument("source", type=SOURCE, required=False)
@click.option("--pipeline", "pipeline_name", help="dlt pipeline name. Default: clickhaul_<source>.")
@click.option("--database", metavar="PATH", help="The DuckDB file the pipeline loads into (default: as `run`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source, for scripts and monitoring.")
def status(source: str | None, pipeline_name: str | None, database: str | None, as_json: bool) -> None:
    """Last run, cursor, backfill progress, rows per table and last error, per source."""
    import json

    from .status import pipeline_status

    names = [source.lower()] if source else list(VENDORS)
    found = [
        pipeline_status(name, pipeline_name, database=database, account=account)
        for name in names
        for account in each_account(name, None)
    ]
    if as_json:
        click.echo(json.dumps([entry.as_dict() for entry in found], indent=2, default=str))
        return
    for entry in found:
        click.echo(entry.render())


@cli.command()
@click.argument("source", type=SOURCE, required=False)
@click.option(
    "--database",
    metavar="PATH",
    help="The DuckDB file. Default: as `run` finds it ([destination.duckdb] credentials, else "
    "clickhaul_<source>.duckdb in the working directory).",
)
def compact(source: str | None, database: str | None) -> None:
    """Rewrite a DuckDB file without the space merges leave behind (copy, verify, swap; the original is kept on
    any failure). Run it when nothing else has the file open."""
    from .duckdb_files import compact as compact_file
    from .warehouse import resolve_warehouse

    if not database and not source:
        raise ClickhaulError("give a SOURCE or --database PATH")
    warehouse = resolve_warehouse(f"clickhaul_{(source or '').lower()}", database=database)
    assert warehouse.path is not None
    if not warehouse.path.exists():
        raise ClickhaulError(warehouse.missing_hint())
    before, after = compact_file(warehouse.path)
    click.echo(f"compacted {warehouse.path}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


@cli.command()
@click.argument("source", type=SOURCE)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=5.0,
    show_default=True,
    help="Seconds to wait for an answer, retries included: a host that is down fails within them.",
)
def check(source: str, timeout: float) -> None:
    """Verify SOURCE's credentials and reachability (exit status 0 or 1)."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    from sources.common.config import translate_config_error
    from sources.common.http import answer_within

    spec = vendor(source.lower())
    try:
        with answer_within(timeout, "clickhaul check --timeout sets the patience"):
            message = spec.check_function()()
    except ConfigFieldMissingException as error:
        raise translate_config_error(spec.name, error) from None
    except ClickhaulError as error:
        raise ClickhaulError(f"{spec.name} check failed: {error}") from None
    click.echo(f"ok: {message}")


@cli.command()
@click.argument("source", type=click.Choice([*VENDORS, "matomo"], case_sensitive=False))
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
def simulate(source: str, port: int) -> None:
    """Serve SOURCE's simulator (or Matomo's, for `push matomo`) on 127.0.0.1 to explore (Ctrl-C stops it)."""
    if source.lower() == "matomo":
        from .demo import matomo_simulator

        simulator, lines = matomo_simulator(port)
    else:
        from simulators.registry import simulated

        spec = vendor(source.lower())
        simulator = simulated(spec.name).simulator_class()(port=port)
        simulator.start()
        plan = simulated(spec.name).demo_plan(simulator)
        lines = [
            f"{spec.name} simulator listening on {simulator.url}",
            "point clickhaul at it with:",
            *(f"  export {key}={value}" for key, value in plan.env.items()),
            f"then e.g.: clickhaul run {spec.name} --start {plan.start} --end {plan.end}",
        ]
    for line in [*lines, "Ctrl-C stops the simulator"]:
        click.echo(line)
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is how a simulator ends: no "interrupted"
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
    click.echo("simulator stopped")


@cli.command()
@click.argument("source", type=SOURCE)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def resources(source: str, as_json: bool) -> None:
    """List SOURCE's resources: the table each loads, its primary key, write disposition and whether a run
    loads it by default. Makes no request."""
    import json

    from .catalog import resource_table

    found = resource_table(vendor(source.lower()))
    if as_json:
        click.echo(json.dumps([vars(entry) for entry in found], indent=2))
        return
    # Some sources set a table's key from the data (Webtrekk: an export's header): nothing to show before a load.
    keys = {
        entry.name: ", ".join(entry.primary_key) or ("(from the data)" if entry.write_disposition == "merge" else "-")
        for entry in found
    }
    width, key_width = max(len(entry.name) for entry in found), max(len(key) for key in keys.values())
    click.echo(f"{'resource':<{width}}  {'primary key':<{key_width}}  {'write':<8}  loaded")
    for entry in found:
        click.echo(
            f"{entry.name:<{width}}  {keys[entry.name]:<{key_width}}  {entry.write_disposition:<8}  "
            f"{'yes' if entry.selected else 'on request (--resources)'}"
        )


@cli.group()
def push() -> None:
    """Send rows from a loaded table back to a vendor (Matomo tracking, Webtrekk importData)."""


@cli.command()
@click.option("--database", default="clickhaul_demo.duckdb", show_default=True, help="DuckDB file to load into.")
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "off"]), default="off", show_default=True)
def demo(database: str, progress: str) -> None:
    """Start the bundled simulators, load every source into a local DuckDB file and show what landed."""
    from .demo import run_demo

    run_demo(database, progress=progress, echo=click.echo)  # type: ignore[arg-type]


def main() -> None:
    cli(prog_name="clickhaul")


register_all(cli)


if __name__ == "__main__":
    main()
