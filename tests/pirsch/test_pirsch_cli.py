"""`clickhaul run|check pirsch` as a user runs them: bad input, summaries, and secrets that never leak."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from simulators.pirsch import DEMO_CLIENT_SECRET, PirschSimulator, demo_plan
from tests.support import files_containing, run_cli
from tests.support.pirsch import LAST_DAY


def cli_env(simulator: PirschSimulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**demo_plan(simulator).env, "DLT_DATA_DIR": str(tmp_path / "dlt"), **extra}


def assert_nothing_written(tmp_path: Path) -> None:
    assert not list(tmp_path.glob("*.duckdb")), "a DuckDB file was created"
    assert not (tmp_path / "dlt" / "pipelines").exists() or not any((tmp_path / "dlt" / "pipelines").iterdir())


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["run", "nosuchvendor"], {}, "nosuchvendor"),
        (["run", "pirsch", "--resources", "pages,nope"], {}, "unknown pirsch resource nope"),
        (["run", "pirsch", "--start", "2024-03-10", "--end", "2024-03-01"], {}, "before --start"),
        (["run", "pirsch", "--start", "2024-02-30"], {}, "--start '2024-02-30' is not a date"),
        (["run", "pirsch", "--end", "2024-02-01"], {}, "--end needs --start"),
        (["run", "pirsch", "--pipeline", "bad name!"], {}, "pipeline name"),
        (
            ["run", "pirsch", "--start", "2024-03-01", "--end", "2024-03-02"],
            {"SOURCES__PIRSCH__CLIENT_SECRET": ""},
            "SOURCES__PIRSCH__CLIENT_SECRET",
        ),
        (
            ["run", "pirsch", "--start", "2024-03-01", "--end", "2024-03-02"],
            {"SOURCES__PIRSCH__DOMAIN_IDS": '["nope1"]'},
            "unknown pirsch domain id nope1",
        ),
        (
            ["run", "pirsch", "--start", "2024-03-01", "--end", "2024-03-02"],
            {"SOURCES__PIRSCH__TIMEZONE": "Mars/Olympus"},
            "IANA",
        ),
        (
            ["run", "pirsch", "--start", "2024-03-01", "--end", "2024-03-02"],
            {"SOURCES__PIRSCH__BASE_URL": "http://api.pirsch.io"},
            "plain HTTP",
        ),
    ],
)
def test_bad_input_fails_with_one_clear_message_and_writes_nothing(
    simulator: PirschSimulator, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_cli(*args, env=cli_env(simulator, tmp_path, **env), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_written(tmp_path)
    assert simulator.count("/statistics/") == 0


def test_missing_credentials_name_the_key_and_the_variable(simulator: PirschSimulator, tmp_path: Path) -> None:
    env = cli_env(simulator, tmp_path, SOURCES__PIRSCH__CLIENT_ID="", SOURCES__PIRSCH__CLIENT_SECRET="")
    result = run_cli("run", "pirsch", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "sources.pirsch.client_id" in result.stderr and "SOURCES__PIRSCH__CLIENT_ID" in result.stderr
    assert "sources.pirsch.client_secret" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert simulator.count("") == 0  # not a single request


def test_run_prints_a_summary_and_loads_into_duckdb(simulator: PirschSimulator, tmp_path: Path) -> None:
    start = (LAST_DAY - dt.timedelta(days=1)).isoformat()
    result = run_cli(
        "run",
        "pirsch",
        "--start",
        start,
        "--end",
        LAST_DAY.isoformat(),
        "--resources",
        "visitors,pages",
        "--progress",
        "log",
        env=cli_env(simulator, tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "visitors" in result.stdout and "pages" in result.stdout
    assert "requests" in result.stdout
    assert (tmp_path / "clickhaul_pirsch.duckdb").exists()


def test_check_reports_ok_and_failure(simulator: PirschSimulator, tmp_path: Path) -> None:
    ok = run_cli("check", "pirsch", env=cli_env(simulator, tmp_path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: pirsch") and "2 domain(s)" in ok.stdout
    bad = run_cli(
        "check",
        "pirsch",
        env=cli_env(simulator, tmp_path, SOURCES__PIRSCH__CLIENT_SECRET="wrong-secret-value"),
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "check failed" in bad.stderr and "refused" in bad.stderr
    assert "wrong-secret-value" not in bad.stderr
    unreachable = run_cli(
        "check",
        "pirsch",
        env=cli_env(
            simulator, tmp_path, SOURCES__PIRSCH__BASE_URL="http://127.0.0.1:9", CLICKHAUL_RETRY_MAX_ATTEMPTS="2"
        ),
        cwd=tmp_path,
    )
    assert unreachable.returncode == 1 and "check failed" in unreachable.stderr


def test_no_secret_in_logs_state_or_database(simulator: PirschSimulator, tmp_path: Path) -> None:
    simulator.tokens.ttl_seconds = 120  # short-lived tokens: renewals happen and must be masked too
    result = run_cli(
        "-v",
        "run",
        "pirsch",
        "--start",
        (LAST_DAY - dt.timedelta(days=2)).isoformat(),
        "--end",
        LAST_DAY.isoformat(),
        "--resources",
        "visitors,pages,referrers",
        "--progress",
        "log",
        env=cli_env(simulator, tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP Request" in result.stderr  # verbose logging really was on
    secrets = [DEMO_CLIENT_SECRET, *simulator.tokens._tokens]
    assert len(secrets) >= 2
    output = result.stdout + result.stderr
    assert [s for s in secrets if s in output] == []
    assert files_containing(tmp_path, secrets) == []
    assert all("secret" not in r.query and "token" not in str(r.query) for r in simulator.requests)
