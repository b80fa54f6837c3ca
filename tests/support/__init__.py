"""What every vendor's tests share: run a source into a throwaway DuckDB, query it, run the CLI, audit secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import dlt
import duckdb
import pytest

from pipelines.registry import vendor
from pipelines.runner import RunSummary, run_vendor
from sources.common.clock import utc_now
from sources.common.config import environment

ROOT = Path(__file__).resolve().parents[2]


def sql_now() -> str:
    """Now as a SQL literal from clickhaul's clock (CLICKHAUL_TODAY), not the database's own now()."""
    return f"timestamptz '{utc_now().isoformat()}'"


@dataclass
class Loader:
    """Runs one vendor into `<workdir>/load.duckdb` with its pipeline state in `<workdir>/pipelines`."""

    vendor: str
    workdir: Path
    env: Mapping[str, str]
    pipeline_name: str = "test_pipeline"

    @property
    def database(self) -> Path:
        return self.workdir / "load.duckdb"

    @property
    def pipelines_dir(self) -> Path:
        return self.workdir / "pipelines"

    def run(self, start: Any = None, end: Any = None, **kwargs: Any) -> RunSummary:
        with environment(self.env):
            return run_vendor(
                vendor(self.vendor),
                start=start,
                end=end,
                pipeline_name=self.pipeline_name,
                pipelines_dir=str(self.pipelines_dir),
                progress="off",
                destination_config=dlt.destinations.duckdb(str(self.database)),
                **kwargs,
            )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql, params or []).fetchall()

    def count(self, table: str, where: str = "true") -> int:
        return int(self.query(f"select count(*) from {self.vendor}.{table} where {where}")[0][0])

    def tables(self) -> set[str]:
        rows = self.query(
            "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%'",
            [self.vendor],
        )
        return {row[0] for row in rows}


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The real `clickhaul` command in a subprocess, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=str(cwd or ROOT),
        timeout=timeout,
    )


def files_containing(root: Path, needles: Sequence[str]) -> list[tuple[Path, str]]:
    """Every file under `root` (DuckDB files, dlt state and traces, logs) that holds one of `needles`."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for needle in needles:
            if needle.encode() in data:
                found.append((path, needle))
    return found


def required(reason: str, module_level: bool = False) -> NoReturn:
    """A real part (PostgreSQL, dbt, Airflow) is missing: skip with a visible reason on a user's machine; under
    CI=true, where .ci/run installs every part, a missing one fails the run instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def postgres_url() -> str:
    """The PostgreSQL server .ci/services.sh starts (CLICKHAUL_TEST_POSTGRES)."""
    url = os.environ.get("CLICKHAUL_TEST_POSTGRES")
    if not url:
        required("CLICKHAUL_TEST_POSTGRES is not set: start PostgreSQL with .ci/services.sh")
    return url
