"""Several accounts of one vendor: their own credentials and pipeline, their rows in the same tables, told apart by
an `account` column that is part of every key; tables loaded before accounts existed are adopted."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.accounts import accounts_to_run, declared_accounts
from simulators.pirsch import PirschData, PirschSimulator
from sources.common.accounts import use_account
from sources.common.config import environment
from sources.common.errors import ConfigError
from sources.pirsch.config import PirschConfig
from tests.support import ROOT, postgres_url, run_cli

LAST_DAY = dt.date(2024, 3, 31)
DAYS = [LAST_DAY - dt.timedelta(days=i) for i in range(3)]
ACCOUNTS = ("client_a", "client_b", "client_c")


@pytest.fixture
def simulators() -> Iterator[dict[str, PirschSimulator]]:
    """One Pirsch login per account, each with its own domains and traffic (its own seed)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                PirschSimulator(
                    PirschData(days=10, last_day=LAST_DAY, sessions_per_day=(20, 40), seed=100 + index),
                    clients={f"id-{name}": f"secret-{name}"},
                )
            )
            for index, name in enumerate(ACCOUNTS)
        }


def account_env(simulators: dict[str, PirschSimulator], tmp_path: Path) -> dict[str, str]:
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "SOURCES__PIRSCH__TIMEZONE": "UTC"}
    for name, simulator in simulators.items():
        prefix = f"SOURCES__PIRSCH__ACCOUNTS__{name.upper()}__"
        env |= {
            prefix + "BASE_URL": simulator.url,
            prefix + "CLIENT_ID": f"id-{name}",
            prefix + "CLIENT_SECRET": f"secret-{name}",
        }
    return env


def visitors_truth(simulator: PirschSimulator) -> set[tuple[str, dt.date, int]]:
    return {
        (domain, day, simulator.truth("visitor", domain, day, tz="UTC")[0]["visitors"])
        for domain in simulator.domain_ids
        for day in DAYS
    }


def cli_run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    first, last = DAYS[-1].isoformat(), DAYS[0].isoformat()
    return run_cli("run", "pirsch", "--start", first, "--end", last, "--resources", "domains,visitors",
                   "--progress", "off", *args, env=env, cwd=cwd)  # fmt: skip


def test_accounts_are_declared_in_config_and_fall_back_to_the_vendor_section(tmp_path: Path) -> None:
    env = {
        "SOURCES__PIRSCH__TIMEZONE": "Europe/Berlin",
        "SOURCES__PIRSCH__ACCOUNTS__CLIENT_A__CLIENT_ID": "a",
        "SOURCES__PIRSCH__ACCOUNTS__CLIENT_A__CLIENT_SECRET": "secret-a",
        "SOURCES__PIRSCH__ACCOUNTS__CLIENT_B__CLIENT_ID": "b",
    }
    with environment(env):
        assert declared_accounts("pirsch") == ["client_a", "client_b"]
        assert accounts_to_run("pirsch") == ["client_a", "client_b"]
        with use_account("client_a"):
            config = PirschConfig.from_config()
            assert (config.client_id, config.timezone) == ("a", "Europe/Berlin")
        with use_account("client_b"), pytest.raises(ConfigError) as missing:
            PirschConfig.from_config()
        assert "sources.pirsch.accounts.client_b.client_secret is not set" in str(missing.value)
        assert "SOURCES__PIRSCH__ACCOUNTS__CLIENT_B__CLIENT_SECRET" in str(missing.value)
        with pytest.raises(ConfigError, match="--account 'nope' is not an account of pirsch"):
            accounts_to_run("pirsch", "nope")
    assert accounts_to_run("pirsch") == ["default"]  # no accounts declared: the vendor section is the one account


def test_every_account_lands_in_the_same_tables_with_its_own_pipeline(
    simulators: dict[str, PirschSimulator], tmp_path: Path
) -> None:
    env = account_env(simulators, tmp_path)
    result = cli_run(env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ACCOUNTS:
        assert f"(pipeline clickhaul_pirsch__{name}, state in" in result.stdout
        assert (tmp_path / "dlt" / "pipelines" / f"clickhaul_pirsch__{name}").is_dir()
    with duckdb.connect(str(tmp_path / "clickhaul_pirsch.duckdb"), read_only=True) as connection:
        for name, simulator in simulators.items():
            rows = connection.execute(
                "select domain_id, day, visitors from pirsch.visitors where account = ?", [name]
            ).fetchall()
            assert set(rows) == visitors_truth(simulator) and len(rows) == len(DAYS) * 2
            domains = connection.execute("select count(*) from pirsch.domains where account = ?", [name]).fetchone()
            assert domains == (2,)
        assert connection.execute("select count(*) from pirsch.visitors").fetchone() == (3 * len(DAYS) * 2,)

    status = run_cli("status", "pirsch", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    for name in ACCOUNTS:
        assert f"pirsch (pipeline clickhaul_pirsch__{name}, state in" in status.stdout
    assert "last success: never" not in status.stdout and status.stdout.count(str(tmp_path / "clickhaul_pirsch")) == 3

    # one account alone: only its vendor is asked, and a replace-table run replaces that account's rows only
    asked = {name: simulator.count("/statistics/") for name, simulator in simulators.items()}
    again = cli_run("--account", "client_b", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "clickhaul_pirsch__client_a" not in again.stdout
    after = {name: simulator.count("/statistics/") for name, simulator in simulators.items()}
    assert after["client_b"] > asked["client_b"]
    assert after["client_a"] == asked["client_a"] and after["client_c"] == asked["client_c"]
    with duckdb.connect(str(tmp_path / "clickhaul_pirsch.duckdb"), read_only=True) as connection:
        assert connection.execute("select count(*) from pirsch.visitors").fetchone() == (3 * len(DAYS) * 2,)
        assert connection.execute("select count(distinct account) from pirsch.domains").fetchone() == (3,)

    unknown = cli_run("--account", "client_z", env=env, cwd=tmp_path)
    assert unknown.returncode != 0
    assert "--account 'client_z' is not an account of pirsch: configured are client_a, client_b, client_c" in (
        unknown.stderr
    )


def test_tables_loaded_before_accounts_existed_are_adopted(tmp_path: Path) -> None:
    """A table written by the single-credential pipeline (no `account` column) gets the column, filled with
    `default`; the next load of the same days merges onto those rows instead of doubling them."""
    with PirschSimulator(PirschData(days=10, last_day=LAST_DAY, sessions_per_day=(20, 40))) as simulator:
        from simulators.pirsch import demo_plan
        from sources.pirsch import pirsch_source

        env = {**demo_plan(simulator).env, "SOURCES__PIRSCH__TIMEZONE": "UTC", "DLT_DATA_DIR": str(tmp_path / "dlt")}
        database = tmp_path / "clickhaul_pirsch.duckdb"
        with environment(env):  # what clickhaul did before accounts: the source straight into dlt
            old = dlt.pipeline("clickhaul_pirsch", destination=dlt.destinations.duckdb(str(database)),
                               dataset_name="pirsch")  # fmt: skip
            old.run(pirsch_source(start_date=DAYS[-1], end_date=DAYS[0]).with_resources("visitors"))
        with duckdb.connect(str(database), read_only=True) as connection:
            columns = [row[0] for row in connection.execute("describe pirsch.visitors").fetchall()]
        assert "account" not in columns
        result = cli_run(env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        with duckdb.connect(str(database), read_only=True) as connection:
            rows = connection.execute("select domain_id, day, visitors, account from pirsch.visitors").fetchall()
        assert sorted(rows) == sorted((*row, "default") for row in visitors_truth(simulator))


@pytest.mark.slow
def test_accounts_load_into_postgres_at_the_same_time(simulators: dict[str, PirschSimulator], tmp_path: Path) -> None:
    """Three processes, one per account, merging into the same PostgreSQL tables at once (each through its own
    staging tables): every account's rows exact."""
    url = postgres_url()
    dataset = f"t_accounts_{uuid.uuid4().hex[:8]}"
    env = {**account_env(simulators, tmp_path), "DESTINATION__POSTGRES__CREDENTIALS": url}
    first, last = DAYS[-1].isoformat(), DAYS[0].isoformat()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines",
                "run",
                "pirsch",
                "--account",
                name,
                "--start",
                first,
                "--end",
                last,
                "--resources",
                "domains,visitors",
                "--progress",
                "off",
                "--destination",
                "postgres",
                "--dataset",
                dataset,
            ],
            env={**os.environ, **env},
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ACCOUNTS
    ]
    outcomes = [process.communicate(timeout=300) for process in processes]
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            for (_, err), process in zip(outcomes, processes, strict=True):
                assert process.returncode == 0, err[-3000:]
            for name, simulator in simulators.items():
                cursor.execute(f'select domain_id, day, visitors from "{dataset}".visitors where account = %s', [name])
                assert set(cursor.fetchall()) == visitors_truth(simulator)
            cursor.execute(f'select count(*) from "{dataset}".visitors')
            assert cursor.fetchone() == (3 * len(DAYS) * 2,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "select schema_name from information_schema.schemata where schema_name like %s", [dataset + "%"]
            )
            for (schema,) in cursor.fetchall():
                cursor.execute(f'drop schema "{schema}" cascade')
        connection.commit()
        connection.close()


def test_two_webtrekk_accounts_of_one_login_share_its_limits(tmp_path: Path) -> None:
    """Two customer ids behind one login, loaded by two processes at once: Webtrekk counts requests per login, so
    together they must stay within its windows (here 5 / 2 s and 20 / 12 s, the documented shape scaled down)."""
    from simulators.webtrekk import ENDPOINT, WebtrekkData, WebtrekkSimulator

    limits = [(5, 2.0), (20, 12.0)]
    data = WebtrekkData(days=10, last_day=LAST_DAY)
    with WebtrekkSimulator(data, rate_limits=limits) as simulator:
        shop, staging = (account["customerId"] for account in data.accounts())
        env = {
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            "CLICKHAUL_RATE_LIMIT_MEMORY": "on",  # the tests' default is off: here processes must share it
            "SOURCES__WEBTREKK__BASE_URL": simulator.url + ENDPOINT,
            "SOURCES__WEBTREKK__LOGIN": data.login,
            "SOURCES__WEBTREKK__PASSWORD": data.password,
            "SOURCES__WEBTREKK__RATE_LIMITS": str([list(pair) for pair in limits]),
            "SOURCES__WEBTREKK__EXPORT_TYPES": '["content_categories_time"]',
            "SOURCES__WEBTREKK__ACCOUNTS__SHOP__CUSTOMER_ID": shop,
            "SOURCES__WEBTREKK__ACCOUNTS__STAGING__CUSTOMER_ID": staging,
        }
        first, last = DAYS[-1].isoformat(), DAYS[0].isoformat()
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipelines",
                    "run",
                    "webtrekk",
                    "--account",
                    name,
                    "--start",
                    first,
                    "--end",
                    last,
                    "--resources",
                    "export_content_categories_time",
                    "--progress",
                    "off",
                    "--database",
                    str(tmp_path / f"{name}.duckdb"),
                ],
                env={**os.environ, **env},
                cwd=str(ROOT),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("shop", "staging")
        ]
        outcomes = [process.communicate(timeout=300) for process in processes]
        for (_, err), process in zip(outcomes, processes, strict=True):
            assert process.returncode == 0, err[-3000:]
        assert simulator.refusals == 0
        assert len(simulator.accepted_times()) >= 2 * len(DAYS)  # both accounts asked, through one login's windows
        for name in ("shop", "staging"):
            with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as connection:
                for day in DAYS:
                    _, truth = simulator.export_table(
                        {"type": "content_categories_time", "startDate": day.isoformat(), "endDate": day.isoformat()}
                    )
                    rows = connection.execute(
                        "select pages from webtrekk.export_content_categories_time where day = ? and account = ?",
                        [day, name],
                    ).fetchall()
                    assert sorted(row[0] for row in rows) == sorted(row.cells[0] for row in truth)


def test_full_refresh_of_a_named_account_refuses_to_drop_the_shared_tables(tmp_path: Path) -> None:
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "SOURCES__PIRSCH__ACCOUNTS__CLIENT_A__CLIENT_ID": "a",
           "SOURCES__PIRSCH__ACCOUNTS__CLIENT_A__CLIENT_SECRET": "s"}  # fmt: skip
    result = run_cli("run", "pirsch", "--full-refresh", "--yes", "--progress", "off", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "--full-refresh with account 'client_a' would drop the pirsch tables every account shares" in result.stderr
    assert not (tmp_path / "clickhaul_pirsch.duckdb").exists()


def test_a_dry_run_plans_every_account_with_its_own_sites_and_pipeline(
    simulators: dict[str, PirschSimulator], tmp_path: Path
) -> None:
    env = account_env(simulators, tmp_path)
    env["SOURCES__PIRSCH__ACCOUNTS__CLIENT_B__DOMAIN_IDS"] = simulators["client_b"].domain_ids[0]
    result = cli_run("--dry-run", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plans = result.stdout.split("pirsch (account ")[1:]
    assert [plan.split(")")[0] for plan in plans] == list(ACCOUNTS)
    for name, plan in zip(ACCOUNTS, plans, strict=True):
        assert f"(pipeline clickhaul_pirsch__{name})" in plan
        domains = 1 if name == "client_b" else len(simulators[name].domain_ids)
        assert f"domains: {domains}\n" in plan
    assert all(simulator.count("/statistics/") == 0 for simulator in simulators.values())
    selected = cli_run("--dry-run", "--account", "client_c", env=env, cwd=tmp_path)
    assert selected.stdout.count("dry run") == 1 and "(pipeline clickhaul_pirsch__client_c)" in selected.stdout
