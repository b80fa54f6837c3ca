"""`clickhaul demo`: the first thing a new user runs must work without credentials or network."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.registry import VENDORS
from tests.support import run_cli


def test_demo_loads_every_source_into_duckdb(tmp_path: Path) -> None:
    database = tmp_path / "demo.duckdb"
    result = run_cli("demo", "--database", str(database), cwd=tmp_path, env={"DLT_DATA_DIR": str(tmp_path / "dlt")})
    assert result.returncode == 0, result.stderr[-3000:]
    with duckdb.connect(str(database), read_only=True) as connection:
        schemas = {
            schema: count
            for schema, count in connection.execute(
                "select table_schema, count(*) from information_schema.tables "
                "where table_name not like '_dlt%' group by 1"
            ).fetchall()
        }
        for name in VENDORS:
            assert schemas.get(name, 0) > 0, f"demo loaded no {name} tables"
        visitors = connection.execute("select count(*), sum(visitors) from pirsch.visitors").fetchone()
        # Matomo: the replayed Opentracker sessions, read back as visits, actions and daily reports
        matomo = connection.execute(
            "select (select count(*) from matomo.visits), (select count(*) from matomo.actions), "
            "(select sum(nb_visits) from matomo.visits_summary)"
        ).fetchone()
    assert matomo is not None and matomo[0] > 0 and matomo[1] >= matomo[0] and matomo[2] == matomo[0]
    assert visitors is not None and visitors[0] > 0 and visitors[1] > 0
    assert "holds:" in result.stdout and "pirsch.visitors" in result.stdout
