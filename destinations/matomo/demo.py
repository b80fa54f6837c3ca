"""`clickhaul demo`'s Matomo step: replay the demo's Opentracker sessions into the Matomo simulator."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import duckdb

from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator

from . import make_config, push_table

DEMO_TABLE = "opentracker.sessions"
DEMO_SITE = 1


def has_table(database_path: pathlib.Path, table: str) -> bool:
    if not database_path.exists():
        return False
    schema, name = table.split(".")
    with duckdb.connect(str(database_path), read_only=True) as connection:
        found = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchall()
    return bool(found[0][0])


def demo_step(database_path: pathlib.Path, echo: Callable[[str], None]) -> None:
    """Start the simulator, send `opentracker.sessions` (if the demo loaded it) and print what Matomo stored."""
    if not has_table(database_path, DEMO_TABLE):
        echo(f"matomo: {DEMO_TABLE} is not in {database_path}; nothing to replay")
        return
    with MatomoSimulator() as simulator:
        config = make_config(f"{simulator.url}/matomo.php", DEMO_SUPERUSER_TOKEN, idsite=DEMO_SITE)
        echo(f"matomo: simulator on {simulator.url}, replaying {DEMO_TABLE} as visits of site {DEMO_SITE}")
        summary = push_table(database_path, DEMO_TABLE, config=config, mapping_name="opentracker_sessions")
        echo(summary.render())
        stored = simulator.stored()
        visits = sum(1 for hit in stored if hit.params.get("new_visit") == "1")
        visitors = len({hit.params.get("_id") for hit in stored})
        echo(
            f"matomo: the simulator stored {len(stored):,} page views in {visits:,} visits of {visitors:,} visitors; "
            f"rejected rows are in matomo.matomo_rejected"
        )
