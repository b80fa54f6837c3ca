"""The figures `run` and `status` print are what the tables hold, for every vendor: a first load, then the same
days again (every row restated by the vendor), with overlapping pages where the vendor serves rows twice."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from simulators.harness import Faults
from tests.chaos.vendors import VENDORS, Vendor
from tests.support import run_cli

TABLE_LINE = re.compile(
    r"^  (?P<table>[a-z0-9_]+)\s+(?P<loaded>[\d,]+)"
    r"(?:  \(extracted (?P<extracted>[\d,]+), loaded (?P=loaded) after removing (?P<twice>[\d,]+) served twice\))?$"
)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def printed_tables(stdout: str) -> dict[str, tuple[int, int]]:
    """table -> (loaded, extracted) from a run summary."""
    found = {}
    for line in stdout.splitlines():
        match = TABLE_LINE.match(line)
        if match:
            loaded = number(match["loaded"])
            extracted = number(match["extracted"]) if match["extracted"] else loaded
            assert extracted - loaded == (number(match["twice"]) if match["twice"] else 0)
            found[match["table"]] = (loaded, extracted)
    return found


def table_counts(database: Path, schema: str, where: str = "true") -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_name not like '_dlt%'",
                [schema],
            ).fetchall()
        ]
        return {
            table: connection.execute(f'select count(*) from "{schema}"."{table}" where {where}').fetchone()[0]  # type: ignore[index]
            for table in tables
        }


@pytest.mark.parametrize(
    "name",
    # Umami's simulated traffic ends today; the others' end on a fixed day
    [pytest.param(name, marks=[pytest.mark.calendar] if name == "umami" else []) for name in sorted(VENDORS)],
)
def test_run_and_status_print_what_the_tables_hold(name: str, tmp_path: Path) -> None:
    vendor: Vendor = VENDORS[name]
    database = tmp_path / "warehouse.duckdb"
    with vendor.build(Faults(exempt_paths=vendor.token_paths)) as server:
        env = vendor.env(server, DLT_DATA_DIR=str(tmp_path / "dlt"), DESTINATION__DUCKDB__CREDENTIALS=str(database))
        if vendor.name == "opentracker":
            env[vendor.section("page_limit")] = "5"  # pages end inside hours more often: sessions served twice
        args = ["run", vendor.name, "--start", str(vendor.start), "--end", str(vendor.end), "--progress", "off"]
        if vendor.resources:
            args += ["--resources", vendor.resources]

        first = run_cli(*args, env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        printed = printed_tables(first.stdout)
        held = table_counts(database, vendor.name)
        assert {table: loaded for table, (loaded, _) in printed.items()} == {t: n for t, n in held.items() if n}
        if vendor.name == "opentracker":  # overlapping pages: the vendor served sessions twice
            served = sum(count for count, _, _ in server.served)  # type: ignore[attr-defined]
            assert printed["sessions"][1] == served > printed["sessions"][0]

        again = run_cli(*args, env=env, cwd=tmp_path)  # the vendor restates every row of those days
        assert again.returncode == 0, again.stderr
        reprinted = printed_tables(again.stdout)
        latest = f"_dlt_load_id = (select max(load_id) from {vendor.name}._dlt_loads)"
        changed = table_counts(database, vendor.name, latest)
        assert {table: loaded for table, (loaded, _) in reprinted.items()} == {t: n for t, n in changed.items() if n}
        assert table_counts(database, vendor.name) == held  # restated, not added

        status = run_cli("status", vendor.name, env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        last = re.search(r"last success: \S+ \S+, ([\d,]+) rows", status.stdout)
        assert last and number(last[1]) == sum(changed.values()), status.stdout
        for table, count in held.items():
            assert re.search(rf"^    {table}\s+{count:,}$", status.stdout, re.M), status.stdout
