"""The runner without a dbt build: targets, credentials and their masking, bad input."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest

from pipelines.dbt_runner import DbtResult, NodeResult, pipeline_target, postgres_environment, run_dbt
from sources.common.errors import ConfigError
from sources.common.redact import redact
from tests.support.dbt import require_dbt

require_dbt()


def test_postgres_credentials_reach_dbt_through_the_environment_and_are_masked() -> None:
    env = postgres_environment("postgresql://loader:s3cret-Passw0rd@db.example:6543/warehouse?sslmode=require")
    assert env["CLICKHAUL_DBT_PG_HOST"] == "db.example"
    assert env["CLICKHAUL_DBT_PG_PORT"] == "6543"
    assert env["CLICKHAUL_DBT_PG_USER"] == "loader"
    assert env["CLICKHAUL_DBT_PG_DATABASE"] == "warehouse"
    assert env["CLICKHAUL_DBT_PG_SSLMODE"] == "require"
    assert "s3cret-Passw0rd" not in redact("connection to s3cret-Passw0rd failed")
    failed = DbtResult("build", "postgres", False, [NodeResult("m", "model", "error", "login s3cret-Passw0rd")])
    assert "s3cret-Passw0rd" not in failed.render()


def test_pipeline_target_follows_the_destination(tmp_path: Path) -> None:
    duck = dlt.pipeline(
        pipeline_name="dbt_target",
        destination=dlt.destinations.duckdb(str(tmp_path / "x.duckdb")),
        pipelines_dir=str(tmp_path),
    )
    assert pipeline_target(duck) == {"target": "duckdb", "database_path": str(tmp_path / "x.duckdb")}


def test_bad_input_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--database"):
        run_dbt("build", database_path=tmp_path / "missing.duckdb")
    with pytest.raises(ConfigError, match="--target"):
        run_dbt("build", target="snowflake")
    with pytest.raises(ConfigError, match="dbt command"):
        run_dbt("seedz", database_path=tmp_path)
    with pytest.raises(ConfigError, match="postgresql://"):
        postgres_environment("mysql://a:b@c/d")
