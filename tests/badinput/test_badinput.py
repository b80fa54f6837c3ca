"""Malformed config and CLI arguments for every source: one clear message naming what to fix, a non-zero exit,
nothing written (no DuckDB file, no pipeline state) and no data request to the vendor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults, SimulatorServer
from tests.chaos.vendors import VENDORS, Vendor
from tests.support import run_cli

PRODUCTION_HTTP = {
    "pirsch": "http://api.pirsch.io",
    "webtrekk": "http://report2.webtrekk.de/cgi-bin/wt/JSONRPC.cgi",
    "umami": "http://api.umami.is",
    "opentracker": "http://api.opentracker.net/api/views/",
    "matomo": "http://matomo.example.com",
}
SECRET_KEYS = {
    "pirsch": "CLIENT_SECRET",
    "webtrekk": "PASSWORD",
    "umami": "PASSWORD",
    "opentracker": "PASSWORD",
    "matomo": "TOKEN_AUTH",
}
RANGE = ["--start", "2026-11-01", "--end", "2026-11-02"]


def case_id(case: Any) -> str:
    return str(case.values[0] if hasattr(case, "values") else case[0])


# (case id, CLI arguments after `run <vendor>`, config overrides (keys in the vendor's section), expected message)
CASES: list[Any] = [
    ("impossible_date", ["--start", "2024-02-30"], {}, r"--start '2024-02-30' is not a date"),
    ("end_before_start", ["--start", "2024-03-10", "--end", "2024-03-01"], {}, r"before --start"),
    ("end_without_start", ["--end", "2024-03-01"], {}, r"--end needs --start"),
    ("word_for_a_date", ["--start", "yesterday-ish"], {}, r"--start 'yesterday-ish' is not a date"),
    ("unknown_resource", ["--resources", "no_such_table"], {}, r"unknown \w+ resource no_such_table"),
    ("enormous_range", ["--start", "1900-01-01", "--end", "2026-11-02"], {}, r"1900-01-01 \.\. --end 2026-11-02 is"),
    ("bad_pipeline_name", ["--pipeline", "bad name!"], {}, r"pipeline name"),
    ("wrong_type_lookback", RANGE, {"LOOKBACK_DAYS": "three"}, r"(?i)lookback_days"),
    ("negative_lookback", RANGE, {"LOOKBACK_DAYS": "-2"}, r"(?i)lookback_days"),
    ("wrong_type_timeout", RANGE, {"REQUEST_TIMEOUT": "fast"}, r"(?i)request_timeout"),
    ("unknown_timezone", RANGE, {"TIMEZONE": "Mars/Olympus"}, r"Mars/Olympus"),
    ("missing_secret", RANGE, {"<secret>": ""}, r"<secret>"),
    ("invalid_url", RANGE, {"BASE_URL": "not a url"}, r"is not a URL"),
    ("plain_http_production", RANGE, {"BASE_URL": "<production>"}, r"plain HTTP"),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, SimulatorServer]]:
    started = {name: vendor.build(Faults()).start() for name, vendor in VENDORS.items()}
    yield started
    for server in started.values():
        server.stop()


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
@pytest.mark.parametrize(("case", "args", "config", "message"), CASES, ids=[case_id(case) for case in CASES])
def test_bad_input_ends_with_one_clear_message_and_writes_nothing(
    servers: dict[str, SimulatorServer],
    vendor_name: str,
    case: str,
    args: list[str],
    config: dict[str, str],
    message: str,
    tmp_path: Path,
) -> None:
    vendor: Vendor = VENDORS[vendor_name]
    server = servers[vendor_name]
    env = {**vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    secret_key = vendor.section(SECRET_KEYS[vendor_name])
    for key, value in config.items():
        key = secret_key if key == "<secret>" else vendor.section(key)
        env[key] = PRODUCTION_HTTP[vendor_name] if value == "<production>" else value
    message = message.replace("<secret>", secret_key)
    before = server.count()

    # A bad input fails in a second or two; a run that is still going after 20 s has accepted it.
    result = run_cli("run", vendor_name, *args, "--progress", "off", env=env, cwd=tmp_path, timeout=20)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(message, output), f"expected /{message}/ in:\n{output}"
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.strip()]
    assert len(errors) <= 3, f"one clear message, not {len(errors)} lines:\n{output}"
    assert not list(tmp_path.rglob("*.duckdb")), "a DuckDB file was written"
    pipelines = tmp_path / "dlt" / "pipelines"
    assert not pipelines.exists() or not any(pipelines.iterdir()), "pipeline state was written"
    data_requests = [r for r in server.requests[before:] if not any(re.search(p, r.path) for p in vendor.token_paths)]
    assert not data_requests or case in ("unknown_resource",), f"{len(data_requests)} requests made"
