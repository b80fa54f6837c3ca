"""The allocator settings a run makes for itself (pipelines/memory.py), read back from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

READ_BACK = (
    "from pipelines.memory import tune_allocator; tune_allocator(); "
    "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('THP_enabled')))"
)


def huge_pages_after_tuning(env: dict[str, str]) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "MIMALLOC_ALLOW_THP"}
    result = subprocess.run(
        [sys.executable, "-c", READ_BACK], cwd=ROOT, env={**environment, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "THP_enabled" not in Path("/proc/self/status").read_text(),
    reason="no THP_enabled in /proc/self/status: transparent huge pages are a Linux setting, shown per process",
)
def test_a_run_turns_off_transparent_huge_pages_unless_the_user_chose() -> None:
    """Arrow's mimalloc zeroes a 2 MiB page at each touch after giving it back: a run asks for none."""
    assert huge_pages_after_tuning({}) == "0"
    assert huge_pages_after_tuning({"MIMALLOC_ALLOW_THP": "1"}) == "1"
