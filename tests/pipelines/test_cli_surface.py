"""What users of dlt and dbt look for, through the real CLI: --version, resources, run --dry-run, status --json,
simulate matomo, messages in the flags' names, an empty --resources refused, help that points at what exists."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import duckdb

from pipelines.registry import VENDORS
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from simulators.webtrekk import WebtrekkData, WebtrekkSimulator
from tests.support import ROOT, run_cli, sql_now
from tests.support.webtrekk import make_env

LAST = dt.date(2024, 3, 31)


def pirsch() -> PirschSimulator:
    return PirschSimulator(PirschData(days=10, last_day=LAST, sessions_per_day=(20, 30), paths=20))


def nothing_written(folder: Path) -> bool:
    pipelines = folder / "dlt" / "pipelines"
    return not list(folder.glob("*.duckdb")) and (not pipelines.exists() or not any(pipelines.iterdir()))


def test_version_names_clickhaul_and_what_it_runs_on(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(
        f"clickhaul {version('clickhaul')} (dlt {version('dlt')}, duckdb {version('duckdb')}"
    )


def test_messages_name_flags_and_an_empty_resource_list_is_refused(tmp_path: Path) -> None:
    with pirsch() as simulator:
        env = {**demo_plan(simulator).env, "DLT_DATA_DIR": str(tmp_path / "dlt"), "CLICKHAUL_TODAY": "2026-12-04"}
        future = run_cli("run", "pirsch", "--start", "2030-01-01", env=env, cwd=tmp_path)
        assert future.returncode == 1
        assert future.stderr.strip() == (
            "error: --start 2030-01-01 is after --end 2026-12-04 (today, the default of --end): "
            "give a --start on or before today"
        )
        for args in (["run", "pirsch", "--resources", ""], ["backfill", "pirsch", "--start", "2024-03-01",
                     "--end", "2024-03-02", "--resources", " , "]):  # fmt: skip
            empty = run_cli(*args, env=env, cwd=tmp_path)
            assert empty.returncode == 1 and "names no resource" in empty.stderr, empty.stderr
            assert "clickhaul resources pirsch" in empty.stderr
        assert simulator.count("") == 0 and nothing_written(tmp_path)


def test_help_points_only_at_documents_that_exist(tmp_path: Path) -> None:
    commands = [[], ["run"], ["backfill"], ["status"], ["dbt"], ["report"], ["push", "matomo"], ["push", "webtrekk"]]
    for command in commands:
        shown = run_cli(*command, "--help", cwd=tmp_path).stdout
        for document in re.findall(r"[\w/]+\.md", shown):
            assert (ROOT / document).exists(), f"`clickhaul {' '.join(command)} --help` points at {document}"
    assert "README" in run_cli("dbt", "--help", cwd=tmp_path).stdout


def test_resources_lists_tables_keys_and_dispositions_without_credentials(tmp_path: Path) -> None:
    for name, spec in VENDORS.items():
        result = run_cli("resources", name, "--json", env={"DLT_DATA_DIR": str(tmp_path / "dlt")}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
        prefixes = tuple(spec.resource_prefixes) or ("\0",)
        assert all(table in spec.resources or table.startswith(prefixes) for table in listed), sorted(listed)
        for entry in listed.values():
            assert entry["write_disposition"] in ("merge", "replace", "append")
        if name == "pirsch":
            assert set(listed) == set(spec.resources)
    table = run_cli("resources", "pirsch", cwd=tmp_path).stdout.splitlines()
    assert table[0].split() == ["resource", "primary", "key", "write", "loaded"]
    assert any(re.match(r"pages\s+domain_id, day, path, title, account\s+merge\s+yes", line) for line in table)
    assert any(re.match(r"keywords\s+.*merge\s+on request", line) for line in table)


def test_dry_run_says_days_resources_and_requests_without_calling_data_endpoints(tmp_path: Path) -> None:
    with pirsch() as simulator:
        env = {**demo_plan(simulator).env, "DLT_DATA_DIR": str(tmp_path / "dlt")}
        args = ["run", "pirsch", "--start", "2024-03-01", "--end", "2024-03-31", "--resources", "visitors,pages"]
        result = run_cli(*args, "--dry-run", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert simulator.count("/statistics/") == 0 and nothing_written(tmp_path)
    lines = result.stdout.splitlines()
    assert "days: 2024-03-01..2024-03-31 (31 days, fixed range)" in result.stdout
    assert "resources (2): visitors, pages" in result.stdout
    assert "domains: 2" in result.stdout
    # visitors: one request a month per domain; pages: one a day per domain
    assert any(line.strip().startswith("requests: at least 64 ") for line in lines), lines
    with WebtrekkSimulator(WebtrekkData(days=5, last_day=dt.date(2026, 11, 19))) as simulator:
        env = {**make_env(simulator, [(5, 10), (120, 600)]), "DLT_DATA_DIR": str(tmp_path / "dlt")}
        args = ["run", "webtrekk", "--start", "2026-11-01", "--end", "2026-11-19", "--dry-run"]
        webtrekk = run_cli(*args, env=env, cwd=tmp_path)
        assert webtrekk.returncode == 0, webtrekk.stderr
        assert simulator.count("") == 0
    assert "rate limit 5 per 10 s, 120 per 600 s: at least" in webtrekk.stdout


def test_status_json_is_what_status_prints(tmp_path: Path) -> None:
    with pirsch() as simulator:
        env = {**demo_plan(simulator).env, "DLT_DATA_DIR": str(tmp_path / "dlt")}
        day = LAST.isoformat()
        assert run_cli("run", "pirsch", "--start", day, "--end", day, env=env, cwd=tmp_path).returncode == 0
    result = run_cli("status", "pirsch", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (status,) = json.loads(result.stdout)
    assert status["pipeline"] == "clickhaul_pirsch" and status["exists"]
    assert status["warehouse"] == f"DuckDB file {tmp_path / 'clickhaul_pirsch.duckdb'}"
    with duckdb.connect(str(tmp_path / "clickhaul_pirsch.duckdb"), read_only=True) as connection:
        assert status["rows"]["visitors"] == connection.execute("select count(*) from pirsch.visitors").fetchone()[0]  # type: ignore[index]
    assert status["last_success"]["start"] == day and status["last_error"] is None


def test_simulate_matomo_serves_a_matomo_to_push_to(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "simulate", "matomo"], cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(6)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        assert set(exports) == {
            "DESTINATION__MATOMO__TRACKING_URL",
            "DESTINATION__MATOMO__TOKEN_AUTH",
            "DESTINATION__MATOMO__IDSITE",
        }
        database = tmp_path / "hits.duckdb"
        with duckdb.connect(str(database)) as connection:
            connection.execute("create schema events")
            connection.execute(
                "create table events.hits as select 'v' || i as visitor_id, 'https://example.org/' || i as page_url, "
                f"{sql_now()} - interval 1 hour as timestamp from range(5) t(i)"
            )
        pushed = run_cli("push", "matomo", "--table", "events.hits", "--database", str(database), "--progress", "off",
                         env=exports, cwd=tmp_path)  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        assert re.search(r"\b5\b.*hits|hits.*\b5\b", pushed.stdout), pushed.stdout
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and stdout.strip().endswith("simulator stopped")


def test_every_command_ends_its_errors_in_one_line_and_commands_do_not_import_the_cli() -> None:
    import click

    from pipelines.cli import cli
    from pipelines.command import ClickhaulCommand, ClickhaulGroup

    def leaves(group: click.Group) -> list[click.Command]:
        found: list[click.Command] = []
        for command in group.commands.values():
            found += leaves(command) if isinstance(command, click.Group) else [command]
        return found

    commands = leaves(cli)
    assert len(commands) >= 12 and all(isinstance(command, ClickhaulCommand) for command in commands)
    try:
        ClickhaulGroup().add_command(click.Command("plain"))
        raise AssertionError("a plain click command was accepted")
    except TypeError as error:
        assert "cls=ClickhaulCommand" in str(error)
    probe = "import sys, pipelines.commands.matomo, pipelines.commands.dbt; print('pipelines.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"
