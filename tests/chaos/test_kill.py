"""The process SIGKILLed at random points of a run and started again: the final tables equal a clean run's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults
from tests.support import ROOT, run_cli

from .test_faults import assert_equal
from .vendors import Vendor, snapshot

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out


def cli_args(vendor: Vendor) -> list[str]:
    args = ["run", vendor.name, "--start", vendor.start.isoformat(), "--end", vendor.end.isoformat()]
    args += ["--progress", "off"]
    return args + (["--resources", vendor.resources] if vendor.resources else [])


def test_killed_and_restarted_runs_end_with_the_clean_tables(
    vendor: Vendor, clean: dict[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    rng = random.Random(f"kill-{vendor.name}")
    # Slow answers stretch each run over several seconds, so the kills fall inside it, not after it.
    with vendor.build(Faults(slow_rate=0.5, slow_seconds=0.08, seed=9, exempt_paths=vendor.token_paths)) as server:
        env = {**os.environ, **vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt")}
        killed = 0
        for _ in range(3):
            process = subprocess.Popen(
                [sys.executable, "-m", "pipelines", *cli_args(vendor)],
                cwd=str(tmp_path), env={**env, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # Anywhere from start-up (imports, state restore) through extraction, normalize and load.
            time.sleep(rng.uniform(0.3, 2.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait(timeout=60)
        finished = run_cli(*cli_args(vendor), env={**vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt")},
                           cwd=tmp_path, timeout=300)  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert killed > 0, "every run finished before its kill: nothing was proven"
    assert_equal(snapshot(tmp_path / f"clickhaul_{vendor.name}.duckdb", vendor.name), clean)
