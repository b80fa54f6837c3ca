"""The dbt tests' fixtures: the demo-like warehouse, loaded once per session, and the package built on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from tests.support import run_cli
from tests.support.dbt import (
    Loaded,
    copy_of,
    load_all,
)


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    workdir = tmp_path_factory.mktemp("dbt-data")
    database = workdir / "load.duckdb"
    customer_id = load_all(workdir, dlt.destinations.duckdb(str(database)))
    yield Loaded(database, customer_id)


@pytest.fixture(scope="session")
def built(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every vendor, built through the real CLI (`clickhaul dbt build`), as a user runs it."""
    database = copy_of(loaded, tmp_path_factory, "dbt-all")
    site = json.dumps({"clickhaul_webtrekk_site_id": loaded.webtrekk_customer_id})
    result = run_cli("dbt", "build", "--database", str(database), "--vars", site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dbt build (duckdb): ok" in result.stdout
    return database
