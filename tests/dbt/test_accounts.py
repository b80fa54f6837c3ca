"""Accounts through the dbt package: two named accounts of one vendor whose site ids collide stay apart in every mart,
with their own figures and keys; a table loaded before accounts existed (no `account` column) builds as `default`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import pytest

from simulators.pirsch import PirschData, PirschSimulator
from tests.support import run_cli
from tests.support.dbt import Loaded, copy_of, require_dbt

require_dbt()

LAST_DAY = dt.date(2024, 3, 31)
DAYS = [LAST_DAY - dt.timedelta(days=i) for i in range(3)]
# One seed, so both Pirsch logins hold the same domain ids (as two clients of one agency can see one domain); the
# traffic differs (sessions per day), so a mart that collapsed them would show one account's figures, or their sum.
ACCOUNTS = {"client_a": (20, 40), "client_b": (60, 90)}
RESOURCES = "domains,visitors,session_durations,pages,entry_pages,exit_pages,referrers"


def query(database: Path, sql: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql, parameters or []).fetchall()


@pytest.fixture(scope="module")
def simulators() -> Iterator[dict[str, PirschSimulator]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                PirschSimulator(
                    PirschData(days=10, last_day=LAST_DAY, sessions_per_day=sessions, seed=7),
                    clients={f"id-{name}": f"secret-{name}"},
                )
            )
            for name, sessions in ACCOUNTS.items()
        }


@pytest.fixture(scope="module")
def two_accounts(simulators: dict[str, PirschSimulator], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both accounts loaded by `clickhaul run pirsch` (every declared account), then `clickhaul dbt build`."""
    workdir = tmp_path_factory.mktemp("dbt-accounts")
    database = workdir / "accounts.duckdb"
    env = {"DLT_DATA_DIR": str(workdir / "dlt"), "SOURCES__PIRSCH__TIMEZONE": "UTC"}
    for name, simulator in simulators.items():
        prefix = f"SOURCES__PIRSCH__ACCOUNTS__{name.upper()}__"
        env |= {prefix + "BASE_URL": simulator.url, prefix + "CLIENT_ID": f"id-{name}",
                prefix + "CLIENT_SECRET": f"secret-{name}"}  # fmt: skip
    first, last = DAYS[-1].isoformat(), DAYS[0].isoformat()
    loaded = run_cli("run", "pirsch", "--start", first, "--end", last, "--resources", RESOURCES, "--progress", "off",
                     "--database", str(database), env=env, cwd=workdir)  # fmt: skip
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    built = run_cli("dbt", "build", "--database", str(database), env=env, cwd=workdir)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "dbt build (duckdb): ok" in built.stdout
    return database


def test_colliding_site_ids_of_two_accounts_stay_apart(
    two_accounts: Path, simulators: dict[str, PirschSimulator]
) -> None:
    a, b = simulators["client_a"], simulators["client_b"]
    assert a.domain_ids == b.domain_ids and len(a.domain_ids) == 2  # the collision this test is about
    expected = set()
    for name, simulator in simulators.items():
        for domain in simulator.domain_ids:
            for day in DAYS:
                truth = simulator.truth("visitor", domain, day, tz="UTC")[0]
                expected.add((name, domain, f"pirsch:{name}:{domain}", day, truth["visitors"], truth["sessions"],
                              truth["views"]))  # fmt: skip
    # the two accounts' figures differ on every site-day, so one account's rows cannot stand in for the other's
    figures: dict[tuple[str, dt.date], set[tuple[int, ...]]] = {}
    for _name, domain, _, day, *counts in expected:
        figures.setdefault((domain, day), set()).add(tuple(counts))
    assert all(len(pair) == 2 for pair in figures.values())

    traffic = query(
        two_accounts,
        "select account, site_id, site_key, day, visitors, visits, pageviews from analytics.fct_traffic_daily "
        "where vendor = 'pirsch'",
    )
    assert set(traffic) == expected and len(traffic) == len(ACCOUNTS) * 2 * len(DAYS)
    # every daily row has its own account's session duration (the join carries the account)
    assert query(
        two_accounts,
        "select count(*) from analytics.fct_traffic_daily where vendor = 'pirsch' and time_spent_seconds is null",
    ) == [(0,)]

    sites = query(two_accounts, "select account, site_id, site_key, hostname is not null from analytics.dim_sites")
    assert sorted(sites) == sorted(
        (name, domain, f"pirsch:{name}:{domain}", True) for name in ACCOUNTS for domain in a.domain_ids
    )


def test_each_accounts_pages_and_referrers_are_its_own(two_accounts: Path) -> None:
    """Per account and site: the marts' page views, entries, exits and referrer visits are exactly what that
    account's rows in the loaded tables add up to."""
    for name in ACCOUNTS:
        for column, table in (("views", "pages"), ("entries", "entry_pages"), ("exits", "exit_pages")):
            raw = query(
                two_accounts,
                f"select domain_id, sum({column}) from pirsch.{table} where account = ? group by 1 order by 1",
                [name],
            )
            mart = query(
                two_accounts,
                f"select site_id, sum({column}) from analytics.fct_pages_daily "
                "where vendor = 'pirsch' and account = ? group by 1 order by 1",
                [name],
            )
            assert mart == raw and len(raw) == 2, (name, column)
        raw = query(
            two_accounts,
            "select domain_id, sum(sessions) from pirsch.referrers where account = ? group by 1 order by 1",
            [name],
        )
        mart = query(
            two_accounts,
            "select site_id, sum(visits) from analytics.fct_acquisition_daily "
            "where vendor = 'pirsch' and dimension = 'channel' and account = ? group by 1 order by 1",
            [name],
        )
        assert mart == raw and len(raw) == 2, name
    totals = query(two_accounts, "select account, sum(views) from analytics.fct_pages_daily group by 1 order by 1")
    assert [row[0] for row in totals] == sorted(ACCOUNTS) and totals[0][1] != totals[1][1]


# -- a load from before accounts -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def old_load(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo-like Pirsch load with `account` dropped from its daily totals and domains, as clickhaul wrote them
    before accounts; the other Pirsch tables keep the column (`default`), as after a partial adoption."""
    database = copy_of(loaded, tmp_path_factory, "dbt-old-load")
    with duckdb.connect(str(database)) as connection:
        for vendor in ("webtrekk", "umami", "opentracker", "matomo"):
            connection.execute(f'drop schema if exists "{vendor}" cascade')
        for table in ("visitors", "domains"):
            connection.execute(f"alter table pirsch.{table} drop column account")
    built = run_cli("dbt", "build", "--database", str(database))
    assert built.returncode == 0, built.stdout + built.stderr
    return database


def test_a_table_without_the_account_column_builds_as_default(old_load: Path) -> None:
    columns = {row[0] for row in query(old_load, "describe pirsch.visitors")}
    assert "account" not in columns
    traffic = query(
        old_load,
        "select account, site_key, site_id, day, visits, pageviews, time_spent_seconds is not null "
        "from analytics.fct_traffic_daily order by site_key, day",
    )
    raw = query(old_load, "select domain_id, day, sessions, views from pirsch.visitors order by domain_id, day")
    assert [row[2:6] for row in traffic] == raw and raw
    # `default`, with the key it had before accounts, and joined to durations that do carry the column
    assert {row[:2] for row in traffic} == {("default", f"pirsch:{domain}") for domain, *_ in raw}
    assert all(row[6] for row in traffic)
    domains = query(old_load, "select id from pirsch.domains")
    sites = query(old_load, "select account, site_key, hostname is not null from analytics.dim_sites")
    assert sorted(sites) == sorted(("default", f"pirsch:{domain}", True) for (domain,) in domains) and domains


# -- Matomo: idsite 1 on two servers -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    """Two Matomo servers, each with its own traffic on idsite 1 (and visit ids from 1), loaded as two named accounts
    by `clickhaul run matomo`, built by `clickhaul dbt build`. Yields the database and the hits each server holds."""
    from simulators.matomo import DEMO_VIEW_TOKEN, MatomoSimulator, demo_plan, seed_demo_traffic

    workdir = tmp_path_factory.mktemp("dbt-matomo-accounts")
    database = workdir / "accounts.duckdb"
    env = {"DLT_DATA_DIR": str(workdir / "dlt"), "SOURCES__MATOMO__SITE_IDS": "1"}
    hits = {}
    with ExitStack() as stack:
        servers = {"server_a": (40, 0), "server_b": (25, 1)}
        days = []
        for name, (visits_per_day, seed) in servers.items():
            simulator = stack.enter_context(MatomoSimulator())
            hits[name] = seed_demo_traffic(simulator, visits_per_day=visits_per_day, seed=seed)
            plan = demo_plan(simulator)
            days += [plan.start, plan.end]
            prefix = f"SOURCES__MATOMO__ACCOUNTS__{name.upper()}__"
            env |= {prefix + "BASE_URL": simulator.url, prefix + "TOKEN_AUTH": DEMO_VIEW_TOKEN}
        loaded = run_cli("run", "matomo", "--start", min(days).isoformat(), "--end", max(days).isoformat(),
                         "--resources", "sites,visits,visits_summary,pages,referrers", "--progress", "off",
                         "--database", str(database), env=env, cwd=workdir)  # fmt: skip
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    built = run_cli("dbt", "build", "--database", str(database), env=env, cwd=workdir)
    assert built.returncode == 0, built.stdout + built.stderr
    yield database, hits


def test_one_matomo_idsite_on_two_servers_is_two_sites(two_servers: tuple[Path, dict[str, int]]) -> None:
    database, hits = two_servers
    assert hits["server_a"] != hits["server_b"]
    assert query(database, "select account, site_id, site_key from analytics.dim_sites order by 1") == [
        ("server_a", "1", "matomo:server_a:1"),
        ("server_b", "1", "matomo:server_b:1"),
    ]
    # the same visit ids on both servers: two sessions each, told apart by account and session_key
    shared = query(
        database,
        "select count(*) from (select id_visit from matomo.visits group by id_visit "
        "having count(distinct account) = 2)",
    )[0][0]
    assert shared > 0
    for name in ("server_a", "server_b"):
        raw = query(
            database,
            "select day, sum(nb_visits), sum(bounce_count) from matomo.visits_summary where account = ? "
            "group by day order by day",
            [name],
        )
        pageviews = query(
            database, "select day, sum(nb_hits) from matomo.pages where account = ? group by day order by day", [name]
        )
        traffic = query(
            database,
            "select day, visits, bounces, pageviews from analytics.fct_traffic_daily "
            "where vendor = 'matomo' and account = ? order by day",
            [name],
        )
        assert [(day, visits, bounces) for day, visits, bounces, _ in traffic] == raw and raw, name
        assert [(day, views) for day, *_, views in traffic if views] == pageviews, name
        visits = query(database, "select count(*), sum(actions) from matomo.visits where account = ?", [name])[0]
        sessions = query(
            database,
            "select count(*), count(distinct session_key), sum(pageviews) > 0, "
            "bool_and(session_key = 'matomo:' || account || ':' || session_id) "
            "from analytics.fct_sessions where account = ?",
            [name],
        )[0]
        assert sessions == (visits[0], visits[0], True, True), name
        # every visit's page views come from its own server's actions (the joins carry the account)
        own = query(
            database,
            "select sum(case when type = 'action' then 1 else 0 end) from matomo.actions where account = ?",
            [name],
        )
        assert query(database, "select sum(pageviews) from analytics.fct_sessions where account = ?", [name]) == own, (
            name
        )
