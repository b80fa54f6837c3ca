"""Ctrl-C at random moments of each vendor's run: the CLI ends within 2 s with one "interrupted" line and exit
status 130, and a completing re-run ends with exactly a clean run's tables."""

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
from .test_kill import cli_args
from .vendors import Vendor, snapshot

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out

CONTINUE = "run the same command to continue"


def wait_for_clickhaul(process: subprocess.Popen[str]) -> None:
    """Until clickhaul handles Ctrl-C: its first act, before its imports (dlt maps pyarrow's library then). Before
    that the interpreter itself is starting, and a Ctrl-C gets Python's own answer."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if "pyarrow" in Path(f"/proc/{process.pid}/maps").read_text():
                return
        except OSError:
            return
        time.sleep(0.01)


def test_ctrl_c_ends_within_2_s_and_the_next_run_is_exact(
    vendor: Vendor, clean: dict[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    rng = random.Random(f"sigint-{vendor.name}")
    # Slow answers stretch each run over several seconds, so the signals fall inside it (extraction, normalize,
    # load), not after it; the first moments (imports, state restore) are drawn too.
    with vendor.build(Faults(slow_rate=0.5, slow_seconds=0.08, seed=9, exempt_paths=vendor.token_paths)) as server:
        env = {**os.environ, **vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt"), "PYTHONPATH": str(ROOT)}
        interrupted = []
        for attempt in range(4):
            process = subprocess.Popen(
                [sys.executable, "-m", "pipelines", *cli_args(vendor)], cwd=str(tmp_path), env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            wait_for_clickhaul(process)
            time.sleep(rng.uniform(0.0, 3.0) if attempt else 0.0)
            if process.poll() is not None:
                process.communicate()
                continue
            process.send_signal(signal.SIGINT)
            sent = time.monotonic()
            try:
                _, stderr = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise AssertionError(f"{vendor.name}: still running 30 s after Ctrl-C") from None
            ended = time.monotonic() - sent
            assert process.returncode == 130, (process.returncode, stderr[-3000:])
            assert ended < 2.0, f"{vendor.name}: ended {ended:.2f} s after Ctrl-C"
            lines = stderr.strip().splitlines()
            assert lines and lines[-1].startswith("interrupted: "), stderr[-3000:]
            assert lines[-1].endswith(CONTINUE), lines[-1]
            assert "Traceback" not in stderr and "generator already executing" not in stderr, stderr[-3000:]
            interrupted.append(ended)
        finished = run_cli(*cli_args(vendor), env={**vendor.env(server), "DLT_DATA_DIR": str(tmp_path / "dlt")},
                           cwd=tmp_path, timeout=300)  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert len(interrupted) >= 2, "most runs finished before their Ctrl-C: nothing was proven"
    assert_equal(snapshot(tmp_path / f"clickhaul_{vendor.name}.duckdb", vendor.name), clean)
