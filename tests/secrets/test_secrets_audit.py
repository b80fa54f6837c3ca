"""A secrets audit: every source run through the CLI with -v, then every file the run leaves (logs, dlt state and
traces, load packages, the DuckDB file) and its console output searched for each configured secret and every
token the simulator issued. None may appear anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from simulators.harness import Faults
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from tests.chaos.test_kill import cli_args
from tests.chaos.vendors import VENDORS, Vendor
from tests.support import files_containing, run_cli, sql_now


def audit(workdir: Path, output: str, secrets: list[str]) -> None:
    secrets = [secret for secret in secrets if secret]
    (workdir / "cli.log").write_text(output)  # the console log is one of the files audited
    found = files_containing(workdir, secrets)
    assert not found, "secrets found: " + ", ".join(
        f"{path.relative_to(workdir)} holds {needle[:4]}…" for path, needle in found
    )


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_no_secret_or_token_in_any_file_a_verbose_run_leaves(name: str, tmp_path: Path) -> None:
    vendor: Vendor = VENDORS[name]
    # A few faults too: error paths (retries, refusals, re-logins) are where secrets usually leak.
    with vendor.build(Faults(error_rate=0.05, truncate_rate=0.05, seed=3, exempt_paths=vendor.token_paths)) as server:
        env = {**vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt"), "RUNTIME__LOG_LEVEL": "DEBUG"}
        if vendor.expire is not None:
            vendor.expire(server)  # a re-login mid-run puts a second token in play
        result = run_cli("-v", *cli_args(vendor), env=env, cwd=tmp_path, timeout=300)
        secrets = vendor.secrets(server)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"(?i)request|GET|POST", output), "-v logged no requests: the audit would prove nothing"
    assert len(secrets) >= (2 if vendor.expire else 1), "no token was issued"  # Matomo's token_auth is all there is
    assert list(tmp_path.rglob("*.duckdb")) and list((tmp_path / "dlt").rglob("*")), "the run left no files to audit"
    audit(tmp_path, output, secrets)


def test_no_matomo_token_in_any_file_a_verbose_push_leaves(tmp_path: Path) -> None:
    database = tmp_path / "clickhaul_events.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema events")
        connection.execute(
            f"""create table events.hits as select substr(md5(i::varchar), 1, 16) as visitor_id,
               'https://shop.example/p/' || i as page_url, {sql_now()} - interval '1 hour' as timestamp
               from range(300) t(i)"""
        )
    with MatomoSimulator(Faults(error_rate=0.1, seed=2)) as simulator:
        env = {
            "DESTINATION__MATOMO__TRACKING_URL": f"{simulator.url}/matomo.php",
            "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
            "DESTINATION__MATOMO__IDSITE": "1",
            "CLICKHAUL_RETRY_BASE_DELAY": "0.01",
            "CLICKHAUL_RETRY_MAX_DELAY": "0.05",
        }
        args = ["-v", "push", "matomo", "--table", "events.hits", "--database", str(database), "--progress", "off"]
        result = run_cli(*args, env=env, cwd=tmp_path, timeout=120)
        assert simulator.stored(), "nothing was pushed: the audit would prove nothing"
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    audit(tmp_path, output, [DEMO_SUPERUSER_TOKEN])
