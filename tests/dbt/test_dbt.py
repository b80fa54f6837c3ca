"""The dbt package on real loads: built through the CLI on all four vendors, on one vendor alone, on nothing; the
cross-checks hold and can fail; the latest load wins; and PostgreSQL builds the same marts as DuckDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
import yaml

from pipelines.dbt_runner import PROJECT_DIR, DbtResult, run_dbt
from pipelines.report import write_report
from tests.support import postgres_url
from tests.support.dbt import VENDOR_NAMES, Loaded, copy_of, load_all, require_dbt

require_dbt()

MARTS = ("dim_sites", "fct_traffic_daily", "fct_pages_daily", "fct_acquisition_daily", "fct_sessions")


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def scalar(database: Path, sql: str) -> Any:
    return query(database, sql)[0][0]


def drop_vendors(database: Path, keep: tuple[str, ...]) -> None:
    with duckdb.connect(str(database)) as connection:
        for vendor in VENDOR_NAMES:
            if vendor not in keep:
                connection.execute(f'drop schema if exists "{vendor}" cascade')
                connection.execute(f'drop schema if exists "{vendor}_staging" cascade')


def assert_built(result: DbtResult) -> None:
    assert result.success, result.render()
    assert not result.failed(), result.render()
    assert any(node.kind == "test" for node in result.nodes)


# -- every vendor (built through the CLI by the `built` fixture) ----------------------------------------------
def test_build_on_every_vendor_fills_every_mart(built: Path) -> None:
    vendors = {row[0] for row in query(built, "select distinct vendor from analytics.fct_traffic_daily")}
    assert vendors == set(VENDOR_NAMES)
    for mart in MARTS:
        assert scalar(built, f"select count(*) from analytics.{mart}") > 0, mart
    pages = {row[0] for row in query(built, "select distinct vendor from analytics.fct_pages_daily")}
    assert pages == set(VENDOR_NAMES)
    acquisition = {row[0] for row in query(built, "select distinct vendor from analytics.fct_acquisition_daily")}
    assert acquisition == {"pirsch", "umami", "opentracker", "matomo"}  # Webtrekk's analyses carry no referrers
    assert {row[0] for row in query(built, "select distinct vendor from analytics.fct_sessions")} == {
        "umami",
        "opentracker",
        "matomo",
    }


def test_marts_equal_the_raw_tables(built: Path, loaded: Loaded) -> None:
    """Independent of the dbt cross-checks: totals recomputed here from the tables the sources loaded."""
    expected = {
        "pirsch": query(built, "select sum(sessions), sum(views) from pirsch.visitors")[0],
        "umami": query(built, "select sum(visits), sum(pageviews) from umami.website_stats")[0],
        "webtrekk": query(built, "select sum(visits), sum(page_impressions) from webtrekk.analysis_traffic")[0],
        "opentracker": query(built, "select count(distinct session_id), sum(pages_viewed) from opentracker.sessions")[
            0
        ],
        "matomo": query(
            built, "select sum(nb_visits), (select sum(nb_hits) from matomo.pages) from matomo.visits_summary"
        )[0],
    }
    for vendor, (visits, pageviews) in expected.items():
        actual = query(
            built, f"select sum(visits), sum(pageviews) from analytics.fct_traffic_daily where vendor = '{vendor}'"
        )[0]
        assert actual == (int(visits), int(pageviews)), vendor
    # Webtrekk's rows are named after the configured customer id, which dim_sites knows with its title.
    site_key = f"webtrekk:{loaded.webtrekk_customer_id}"
    assert query(built, f"select site_name from analytics.dim_sites where site_key = '{site_key}'") == [("Demo shop",)]
    assert (
        scalar(built, "select count(distinct site_key) from analytics.fct_pages_daily where vendor = 'webtrekk'") == 1
    )
    # Opentracker: one session row per visit; the daily row's distinct visitors come from those rows.
    assert scalar(built, "select count(*) from analytics.fct_sessions where vendor = 'opentracker'") == scalar(
        built, "select count(distinct session_id) from opentracker.sessions"
    )
    # Umami's entry metric is what fct_pages_daily counts as entries.
    assert scalar(built, "select sum(entries) from analytics.fct_pages_daily where vendor = 'umami'") == scalar(
        built, "select sum(total) from umami.metrics where type = 'entry'"
    )


def test_marts_are_documented_with_grain_and_non_additive_flags(built: Path) -> None:
    documented = yaml.safe_load((PROJECT_DIR / "models" / "marts" / "_marts.yml").read_text())
    flags = {
        (model["name"], column["name"]): column.get("meta", {}).get("additive")
        for model in documented["models"]
        for column in model.get("columns", [])
    }
    assert flags[("fct_traffic_daily", "visitors")] is False
    assert flags[("fct_traffic_daily", "bounce_rate")] is False
    assert flags[("fct_pages_daily", "visitors")] is False
    assert flags[("fct_traffic_daily", "visits")] is True
    for model in documented["models"]:
        assert "Grain" in model["description"] and model["meta"]["grain"], model["name"]
        built_columns = [row[0] for row in query(built, f"describe analytics.{model['name']}")]
        assert [column["name"] for column in model["columns"]] == built_columns, model["name"]
        undocumented = [column["name"] for column in model["columns"] if not column.get("description")]
        assert not undocumented, f"{model['name']}: {undocumented}"


def test_sources_yml_is_in_step_with_the_loaded_tables(built: Path) -> None:
    """Every column sources.yml declares exists in what the connectors created (so the staging SQL reads real data)."""
    defaults = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    identifiers = {
        "analysis_traffic": defaults["clickhaul_webtrekk_traffic_table"],
        "analysis_pages": defaults["clickhaul_webtrekk_pages_table"],
    }
    checked = 0
    for path in sorted((PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml")):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                identifier = table.get("identifier", table["name"])
                for default, value in identifiers.items():
                    if default in identifier:
                        identifier = value
                present = {
                    row[0]
                    for row in query(
                        built,
                        "select column_name from information_schema.columns "
                        f"where table_schema = '{source['name']}' and table_name = '{identifier}'",
                    )
                }
                declared = {column["name"] for column in table["columns"]}
                assert declared <= present, f"{source['name']}.{identifier}: {sorted(declared - present)} not loaded"
                checked += 1
    assert checked >= 15


# -- one vendor, and none ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def umami_only(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DbtResult]:
    database = copy_of(loaded, tmp_path_factory, "dbt-umami")
    drop_vendors(database, keep=("umami",))
    # A stale copy of a daily row from an earlier load: staging keeps the latest load's row.
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            "insert into umami.website_stats by name select * replace (pageviews + 1000 as pageviews, "
            "'1000000000.1' as _dlt_load_id) from umami.website_stats"
        )
    return database, run_dbt("build", database_path=database)


def test_build_with_one_vendor_loaded(umami_only: tuple[Path, DbtResult]) -> None:
    database, result = umami_only
    assert_built(result)
    for mart in MARTS:
        vendors = {row[0] for row in query(database, f"select distinct vendor from analytics.{mart}")}
        assert vendors == {"umami"}, mart


def test_the_latest_load_wins(umami_only: tuple[Path, DbtResult]) -> None:
    database, _ = umami_only
    assert scalar(database, "select count(*) from umami.website_stats") == 2 * scalar(
        database, "select count(*) from analytics.fct_traffic_daily"
    )
    latest = scalar(database, "select sum(pageviews) from umami.website_stats where _dlt_load_id <> '1000000000.1'")
    assert scalar(database, "select sum(pageviews) from analytics.fct_traffic_daily") == latest


def test_a_cross_check_fails_when_the_mart_drifts(umami_only: tuple[Path, DbtResult]) -> None:
    database, _ = umami_only
    with duckdb.connect(str(database)) as connection:
        connection.execute("update analytics.fct_traffic_daily set pageviews = pageviews + 1")
    result = run_dbt("test", database_path=database, select=["assert_traffic_equals_staging"])
    assert not result.success
    assert [node.name for node in result.failed()] == ["assert_traffic_equals_staging"]
    assert result.failed()[0].failures == 1  # one vendor's totals differ


def test_cli_refuses_a_missing_database_before_running_dbt(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipelines.cli import cli

    result = CliRunner().invoke(cli, ["dbt", "build", "--database", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 1
    assert "--database" in result.output and "does not exist" in result.output
    assert not (tmp_path / "nope.duckdb").exists()


# -- PostgreSQL ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")  # session, like `built`: the skip comes before any load
def postgres() -> Iterator[str]:
    yield postgres_url()


@pytest.mark.slow
def test_postgres_build_equals_duckdb(
    postgres: str, built: Path, loaded: Loaded, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import psycopg2

    suffix = f"_t{uuid.uuid4().hex[:8]}"
    schema = f"analytics{suffix}"
    workdir = tmp_path_factory.mktemp("dbt-pg")
    customer_id = load_all(workdir, dlt.destinations.postgres(postgres), dataset_suffix=suffix)
    schemas = {f"clickhaul_{name}_schema": f"{name}{suffix}" for name in VENDOR_NAMES}
    try:
        result = run_dbt(
            "build",
            target="postgres",
            credentials=postgres,
            schema=schema,
            vars={**schemas, "clickhaul_webtrekk_site_id": customer_id},
        )
        assert_built(result)
        totals = (
            "select vendor, count(*), sum(visits), sum(pageviews), sum(bounces) from {}.fct_traffic_daily "
            "group by vendor order by vendor"
        )
        connection = psycopg2.connect(postgres)
        try:
            with connection.cursor() as cursor:
                cursor.execute(totals.format(schema))
                actual = [
                    tuple(None if v is None else int(v) if not isinstance(v, str) else v for v in row)
                    for row in cursor.fetchall()
                ]
                cursor.execute(f"select count(*) from {schema}.fct_sessions")
                sessions = cursor.fetchone()[0]  # type: ignore[index]
        finally:
            connection.close()
        expected = [tuple(row) for row in query(built, totals.format("analytics"))]
        assert actual == expected
        assert sessions == scalar(built, "select count(*) from analytics.fct_sessions")
        # The report reads PostgreSQL marts the same way.
        report = write_report(workdir / "report.html", target="postgres", credentials=postgres, schema=schema)
        assert {vendor for vendor, *_ in report.totals} == set(VENDOR_NAMES)
        assert report.pages and report.channels
    finally:
        connection = psycopg2.connect(postgres)
        try:
            with connection.cursor() as cursor:
                for name in [*schemas.values(), schema]:
                    cursor.execute(f'drop schema if exists "{name}" cascade')
                    cursor.execute(f'drop schema if exists "{name}_staging" cascade')
            connection.commit()
        finally:
            connection.close()
