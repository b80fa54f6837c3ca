"""`clickhaul demo`: every source against its simulator, into one local DuckDB file, with no credentials."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import duckdb

from simulators.registry import VENDORS as SIMULATED
from simulators.registry import DemoPlan
from sources.common.config import environment
from sources.common.monitor import ProgressMode

from .options import LoadOptions
from .registry import vendor
from .runner import run_vendor


def run_demo(database: str, *, progress: ProgressMode = "off", echo: Callable[[str], None] = print) -> dict[str, int]:
    """Load every registered vendor; returns rows per `dataset.table`."""
    database_path = Path(database).resolve()
    for leftover in (database_path, database_path.with_name(database_path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    totals: dict[str, int] = {}
    dbt_vars: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="clickhaul-demo-") as pipelines_dir:
        load = DemoLoad(database_path, pipelines_dir, progress, echo)
        for name, simulated in SIMULATED.items():
            if name == MATOMO:
                continue  # read back below, from the Matomo the demo pushed to
            simulator = simulated.simulator_class()()
            with simulator:
                plan = simulated.demo_plan(simulator)
                dbt_vars.update(plan.dbt_vars)
                load(name, simulator, plan)
        # The way back: the demo's Opentracker sessions replayed into a simulated Matomo, and read out of it again.
        replay_into_matomo(database_path, echo, load)
    # And on top: the dbt staging models and cross-vendor marts.
    from .dbt_runner import demo_step as dbt_step

    dbt_step(database_path, echo, vars=dbt_vars)
    with duckdb.connect(str(database_path), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_name not like '\\_dlt%' escape '\\' and table_schema not like '%\\_staging' escape '\\' "
            "order by 1, 2"
        ).fetchall()
        echo(f"\n{database_path} holds:")
        for schema, table in tables:
            count = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # type: ignore[index]
            totals[f"{schema}.{table}"] = count
            echo(f"  {schema + '.' + table:<48} {count:>10,} rows")
    echo(f"\nexplore it: python -c \"import duckdb; duckdb.connect('{database}').sql('show all tables').show()\"")
    return totals


class DemoLoad:
    """One vendor's demo run against its started simulator, into the demo's DuckDB file."""

    def __init__(
        self, database_path: Path, pipelines_dir: str, progress: ProgressMode, echo: Callable[[str], None]
    ) -> None:
        self.database_path = database_path
        self.pipelines_dir = pipelines_dir
        self.progress = progress
        self.echo = echo

    def __call__(self, name: str, simulator: Any, plan: DemoPlan) -> None:
        spec = vendor(name)
        self.echo(f"{spec.name}: simulator on {simulator.url}, loading {plan.start}..{plan.end}")
        with environment(plan.env):
            options = LoadOptions(
                pipeline_name=f"clickhaul_demo_{spec.name}",
                pipelines_dir=self.pipelines_dir,
                progress=self.progress,
                source_kwargs=plan.source_kwargs,
                destination_config=dlt.destinations.duckdb(str(self.database_path)),
            )
            summary = run_vendor(spec, options, start=plan.start, end=plan.end)
        self.echo(summary.render())


MATOMO = "matomo"
MATOMO_DEMO_TABLE = "opentracker.sessions"
MATOMO_DEMO_SITE = 1


def replay_into_matomo(database_path: Path, echo: Callable[[str], None], load: DemoLoad | None = None) -> None:
    """Start the Matomo simulator, send `opentracker.sessions` (if the demo loaded it), say what Matomo stored;
    with `load`, read it back with the Matomo source (dataset `matomo`)."""
    from destinations.matomo import make_config, push_table
    from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator, demo_plan

    if not database_path.exists():
        found = [(0,)]
    else:
        with duckdb.connect(str(database_path), read_only=True) as connection:
            schema, name = MATOMO_DEMO_TABLE.split(".")
            found = connection.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchall()
    if not found[0][0]:
        echo(f"matomo: {MATOMO_DEMO_TABLE} is not in {database_path}; nothing to replay")
        return
    with MatomoSimulator() as simulator:
        config = make_config(f"{simulator.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=MATOMO_DEMO_SITE)
        echo(f"matomo: simulator on {simulator.url}, replaying {MATOMO_DEMO_TABLE} as site {MATOMO_DEMO_SITE}'s visits")
        summary = push_table(database_path, MATOMO_DEMO_TABLE, config=config, mapping_name="opentracker_sessions")
        echo(summary.render())
        stored = simulator.stored()
        visits = sum(1 for hit in stored if hit.params.get("new_visit") == "1")
        visitors = len({hit.params.get("_id") for hit in stored})
        echo(
            f"matomo: the simulator stored {len(stored):,} page views in {visits:,} visits of {visitors:,} visitors; "
            f"rejected rows are in matomo.matomo_rejected"
        )
        if load is not None and stored:
            load(MATOMO, simulator, demo_plan(simulator))


def matomo_simulator(port: int = 0) -> tuple[Any, list[str]]:
    """`clickhaul simulate matomo`: a Matomo to push to without a server, and to read back, started, and how to point
    at it."""
    from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator, demo_plan

    simulator = MatomoSimulator(port=port)
    simulator.start()
    plan = demo_plan(simulator)
    sites = ", ".join(str(site) for site in sorted(simulator.sites))
    return simulator, [
        f"matomo simulator listening on {simulator.url} (sites {sites})",
        "point clickhaul at it with:",
        f"  export DESTINATION__MATOMO__TRACKING_URL={simulator.url}/matomo.php",
        f"  export DESTINATION__MATOMO__TOKEN_AUTH={DEMO_SUPERUSER_TOKEN}",
        "  export DESTINATION__MATOMO__IDSITE=1",
        "then e.g.: clickhaul push matomo --table opentracker.sessions --mapping opentracker_sessions",
        "and read it with the Matomo source:",
        *(f"  export {key}={value}" for key, value in plan.env.items()),
        "then, after a push: clickhaul run matomo --start <first day> --end <last day>",
    ]
