"""CI runs the benchmark only at smoke size: it must still work end to end and write its files (not timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_bench_smoke_runs_every_part_and_writes_its_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "smoke", "--results", str(tmp_path)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    [written] = tmp_path.glob("*.json")
    figures = json.loads(written.read_text())
    assert figures["size"] == "smoke" and not figures["errors"]
    for name in ("pirsch_pages", "pirsch_pages_10ms_latency", "webtrekk_export"):
        entry = figures["throughput"][name]
        assert entry["clickhaul"]["rows"] == entry["rest_api"]["rows"] == entry["ceiling"]["rows"] > 0
    limits = figures["rate_limits"]["webtrekk"]
    assert limits["requests"] > 0 and 0 < limits["utilisation"] <= 1
    assert {"pirsch", "webtrekk", "umami"} <= set(figures["incremental"])
    assert all(entry["first_run_requests"] > 0 for entry in figures["incremental"].values())
    assert set(figures["matomo"]) == {"1", "4", "8"}
    assert all(entry["hits"] == 1_000 for entry in figures["matomo"].values())
    table = (tmp_path / "latest.md").read_text()
    assert "| figure |" in table and "pirsch_pages" in table
    assert table in result.stdout
