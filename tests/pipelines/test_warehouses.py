"""The same CLI and sources load into warehouses: a real PostgreSQL server, and the filesystem destination writing
parquet, each compared row for row with a DuckDB load of the same days."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from pipelines.registry import VENDORS
from pipelines.runner import run_vendor
from simulators.registry import simulated
from tests.support import environment, postgres_url
from tests.support.webtrekk import FAST_LIMITS


def normalize(value: Any) -> Any:
    if isinstance(value, float | decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    return value


def rows(fetch: Any, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return sorted((tuple(normalize(v) for v in row) for row in fetch(f"select {quoted} from {table}")), key=repr)


def duckdb_tables(database: Path, schema: str) -> dict[str, list[str]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        found: dict[str, list[str]] = {}
        for table, column in connection.execute(
            "select table_name, column_name from information_schema.columns where table_schema = ? "
            "and table_name not like '_dlt%' and column_name not like '_dlt%' order by table_name, ordinal_position",
            [schema],
        ).fetchall():
            found.setdefault(table, []).append(column)
        return found


def started(name: str) -> Any:
    """The vendor's demo simulator; Webtrekk's with limits a test need not wait for (the demo's are the real ones)."""
    simulator = simulated(name).simulator_class()(port=0)
    if name == "webtrekk":
        simulator.set_rate_limits(FAST_LIMITS)
    return simulator


def load(spec: Any, simulator: Any, tmp_path: Path, name: str, destination: Any, dataset: str) -> None:
    plan = simulated(spec.name).demo_plan(simulator)
    env = dict(plan.env)
    if spec.name == "webtrekk":
        env["SOURCES__WEBTREKK__RATE_LIMITS"] = json.dumps([list(pair) for pair in FAST_LIMITS])
    with environment(env):
        run_vendor(
            spec,
            start=plan.end - dt.timedelta(days=1),
            end=plan.end,
            pipeline_name=f"wh_{name}",
            pipelines_dir=str(tmp_path / name),
            progress="off",
            source_kwargs=plan.source_kwargs,
            destination_config=destination,
            dataset=dataset,
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VENDORS))
def test_postgres_load_equals_the_duckdb_load(name: str, tmp_path: Path) -> None:
    url = postgres_url()
    spec = VENDORS[name]
    dataset = f"t_{name}_{uuid.uuid4().hex[:8]}"
    database = tmp_path / "reference.duckdb"
    with started(spec.name) as simulator:
        load(spec, simulator, tmp_path, "duck", dlt.destinations.duckdb(str(database)), dataset)
        load(spec, simulator, tmp_path, "pg", dlt.destinations.postgres(url), dataset)

    import psycopg2

    tables = duckdb_tables(database, dataset)
    assert tables
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:

            def fetch_pg(sql: str) -> list[tuple[Any, ...]]:
                cursor.execute(sql)
                return cursor.fetchall()

            with duckdb.connect(str(database), read_only=True) as duck:
                for table, columns in tables.items():
                    expected = rows(lambda sql: duck.execute(sql).fetchall(), f'"{dataset}"."{table}"', columns)
                    actual = rows(fetch_pg, f'"{dataset}"."{table}"', columns)
                    assert actual == expected, f"{name}.{table} differs between PostgreSQL and DuckDB"
            cursor.execute(f'drop schema "{dataset}" cascade')
            cursor.execute(f'drop schema if exists "{dataset}_staging" cascade')
        connection.commit()
    finally:
        connection.close()


def test_filesystem_destination_writes_parquet_equal_to_the_duckdb_load(tmp_path: Path) -> None:
    spec = VENDORS["pirsch"]
    database = tmp_path / "reference.duckdb"
    bucket = tmp_path / "bucket"
    with simulated(spec.name).simulator_class()(port=0) as simulator:
        load(spec, simulator, tmp_path, "duck", dlt.destinations.duckdb(str(database)), "pirsch")
        load(spec, simulator, tmp_path, "fs", dlt.destinations.filesystem(bucket_url=bucket.as_uri()), "pirsch")
    tables = duckdb_tables(database, "pirsch")
    with duckdb.connect(str(database), read_only=True) as duck:
        for table, columns in tables.items():
            files = sorted((bucket / "pirsch" / table).glob("*.parquet"))
            assert files, f"no parquet files for {table}"
            paths = ", ".join(f"'{f}'" for f in files)
            expected = rows(lambda sql: duck.execute(sql).fetchall(), f"pirsch.{table}", columns)
            actual = rows(lambda sql: duck.execute(sql).fetchall(), f"read_parquet([{paths}])", columns)
            assert actual == expected, table
