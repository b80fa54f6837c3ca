"""One warehouse, one way to find it: `run`, `push matomo`, `push webtrekk`, `dbt`, `report`, `status` and
`compact` all use the file `[destination.duckdb] credentials` names (relative to where they run), each says which
file it used, and a run started in another directory writes where it runs."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import duckdb
import pytest

from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.chaos.vendors import VENDORS
from tests.support import postgres_url, run_cli


def count(database: Path, table: str) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        return int(connection.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]


def load_args(name: str) -> list[str]:
    vendor = VENDORS[name]
    args = ["run", name, "--start", vendor.start.isoformat(), "--end", vendor.end.isoformat(), "--progress", "off"]
    return args + (["--resources", vendor.resources] if vendor.resources else [])


def test_every_command_reads_and_writes_the_configured_warehouse(tmp_path: Path) -> None:
    # An older per-pipeline file beside it, as a user who ran without the setting first would have.
    stale = tmp_path / "clickhaul_opentracker.duckdb"
    with duckdb.connect(str(stale)) as connection:
        connection.execute("create schema opentracker")
        connection.execute("create table opentracker.sessions as select 'stale' as session_id")
    warehouse = tmp_path / "warehouse.duckdb"
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "DESTINATION__DUCKDB__CREDENTIALS": "warehouse.duckdb"}
    opentracker, webtrekk = VENDORS["opentracker"], VENDORS["webtrekk"]
    with (
        opentracker.build(Faults()) as ot_server,
        webtrekk.build(Faults()) as wt_server,
        MatomoSimulator() as matomo,
    ):
        env |= {**opentracker.env(ot_server), **webtrekk.env(wt_server)}
        env |= {
            "DESTINATION__MATOMO__TRACKING_URL": f"{matomo.url}/matomo.php",
            "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
            "DESTINATION__MATOMO__IDSITE": "1",
        }
        for name in ("opentracker", "webtrekk"):
            loaded = run_cli(*load_args(name), env=env, cwd=tmp_path)
            assert loaded.returncode == 0, loaded.stderr
            assert f"into DuckDB file {warehouse}," in loaded.stdout
        sessions = count(warehouse, "opentracker.sessions")
        assert sessions > 1

        push = ["push", "matomo", "--table", "opentracker.sessions", "--mapping", "opentracker_sessions"]
        first = run_cli(*push, "--progress", "off", env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert f"from DuckDB file {warehouse}; ledger in {warehouse}" in first.stdout
        visits = sum(1 for hit in matomo.stored() if hit.params.get("new_visit") == "1")
        assert visits == sessions  # the warehouse's sessions, not the stale file's one
        stored = len(matomo.stored())
        again = run_cli(*push, "--progress", "off", env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(matomo.stored()) == stored  # the ledger is in the same file: nothing is sent twice

        table = "webtrekk.export_content_categories"
        uploaded = run_cli(
            "push", "webtrekk", "--upload-type", "content_categories", "--table", table, env=env, cwd=tmp_path
        )
        assert uploaded.returncode == 0, uploaded.stderr
        assert f"from DuckDB file {warehouse}" in uploaded.stdout
        assert len(wt_server.imported["content_categories"]) == count(warehouse, table)  # type: ignore[attr-defined]

    built = run_cli("dbt", "build", env=env, cwd=tmp_path, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert f"on DuckDB file {warehouse}" in built.stdout
    report = run_cli("report", "--out", "report.html", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert f"from DuckDB file {warehouse}" in report.stdout
    status = run_cli("status", "opentracker", env=env, cwd=tmp_path)
    assert f"warehouse: DuckDB file {warehouse}" in status.stdout
    assert f"sessions  {sessions:>10,}" in status.stdout
    compacted = run_cli("compact", "opentracker", env=env, cwd=tmp_path)
    assert compacted.returncode == 0 and f"compacted {warehouse}:" in compacted.stdout, compacted.stderr
    assert count(stale, "opentracker.sessions") == 1  # the stale file was never touched


def test_a_missing_warehouse_names_the_rule_not_a_wrong_hint(tmp_path: Path) -> None:
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "DESTINATION__DUCKDB__CREDENTIALS": "nowhere.duckdb"}
    for args in (["dbt", "build"], ["report"], ["push", "webtrekk", "--upload-type", "content_categories",
                 "--table", "webtrekk.export_content_categories"]):  # fmt: skip
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1
        line = result.stderr.strip().splitlines()[-1]
        assert f"DuckDB file {tmp_path / 'nowhere.duckdb'}" in line and "DESTINATION__DUCKDB__CREDENTIALS" in line
        assert "load a source into it first" not in line


def test_a_run_started_in_another_directory_writes_where_it_runs(tmp_path: Path) -> None:
    last = dt.date(2024, 3, 31)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    state = tmp_path / "dlt"
    with PirschSimulator(PirschData(days=10, last_day=last, sessions_per_day=(20, 30), paths=20)) as simulator:
        env = {**demo_plan(simulator).env, "DLT_DATA_DIR": str(state)}
        for folder, day in ((first_dir, last), (second_dir, last - dt.timedelta(days=1))):
            args = ["run", "pirsch", "--start", day.isoformat(), "--end", day.isoformat(), "--resources", "visitors"]
            result = run_cli(*args, env=env, cwd=folder)
            assert result.returncode == 0, result.stderr
            assert f"into DuckDB file {folder / 'clickhaul_pirsch.duckdb'}," in result.stdout
            assert f"state in {state / 'pipelines' / 'clickhaul_pirsch'})" in result.stdout
    for folder in (first_dir, second_dir):
        assert count(folder / "clickhaul_pirsch.duckdb", "pirsch.visitors") == 2  # one day of 2 domains each


@pytest.mark.slow
def test_push_reads_the_table_run_loaded_into_postgres(tmp_path: Path) -> None:
    url = postgres_url()
    dataset = f"t_push_{uuid.uuid4().hex[:8]}"
    opentracker = VENDORS["opentracker"]
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "DESTINATION__POSTGRES__CREDENTIALS": url}
    with opentracker.build(Faults()) as server, MatomoSimulator() as matomo:
        env |= {
            **opentracker.env(server),
            "DESTINATION__MATOMO__TRACKING_URL": f"{matomo.url}/matomo.php",
            "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
            "DESTINATION__MATOMO__IDSITE": "1",
        }
        loaded = run_cli(*load_args("opentracker"), "--destination", "postgres", "--dataset", dataset, env=env,
                         cwd=tmp_path)  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        assert "into postgres database" in loaded.stdout
        push = ["push", "matomo", "--destination", "postgres", "--table", f"{dataset}.sessions", "--mapping",
                "opentracker_sessions", "--progress", "off"]  # fmt: skip
        first = run_cli(*push, env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "from postgres database" in first.stdout and "; ledger in postgres database" in first.stdout
        assert not (tmp_path / "matomo_ledger.duckdb").exists()  # the ledger is in the warehouse, beside the rows
        visits = sum(1 for hit in matomo.stored() if hit.params.get("new_visit") == "1")
        assert visits > 0
        stored = len(matomo.stored())
        elsewhere = tmp_path / "another_worker"  # a fresh directory: only the warehouse knows what was sent
        elsewhere.mkdir()
        again = run_cli(*push, env={**env, "DLT_DATA_DIR": str(elsewhere / "dlt")}, cwd=elsewhere)
        assert again.returncode == 0, again.stderr
        assert len(matomo.stored()) == stored
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'select count(*) from "{dataset}".sessions')
            assert cursor.fetchone()[0] == visits  # type: ignore[index]
            source = f"{dataset}.sessions"
            cursor.execute("select sum(hits) from matomo.matomo_ledger where source = %s", [source])
            assert cursor.fetchone()[0] == stored  # type: ignore[index]
            cursor.execute("delete from matomo.matomo_ledger_hits where batch_hash in "
                           "(select batch_hash from matomo.matomo_ledger where source = %s)", [source])  # fmt: skip
            cursor.execute("delete from matomo.matomo_ledger where source = %s", [source])
            cursor.execute(f'drop schema "{dataset}" cascade')
            cursor.execute(f'drop schema if exists "{dataset}_staging" cascade')
        connection.commit()
    finally:
        connection.close()
