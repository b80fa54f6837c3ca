"""The allocator settings a run makes for itself (pipelines/memory.py), read back from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

READ_BACK = (
    "import ctypes\n"
    "from pipelines.memory import tune_allocator\n"
    "def huge_pages(): return next(l.split()[1] for l in open('/proc/self/status') if l.startswith('THP_enabled'))\n"
    "ctypes.CDLL(None).prctl(41, 0, 0, 0, 0)\n"  # PR_SET_THP_DISABLE 0: the flag passes from parent to child
    "before = huge_pages(); tune_allocator(); print(before, huge_pages())"
)


def huge_pages_around_tuning(env: dict[str, str]) -> tuple[str, str]:
    """THP_enabled of a fresh process with huge pages allowed, before and after `tune_allocator`. Allowed first:
    a test worker that already ran a load has them off, and its children inherit that."""
    environment = {key: value for key, value in os.environ.items() if key != "MIMALLOC_ALLOW_THP"}
    result = subprocess.run(
        [sys.executable, "-c", READ_BACK], cwd=ROOT, env={**environment, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.split()
    return before, after


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "THP_enabled" not in Path("/proc/self/status").read_text(),
    reason="no THP_enabled in /proc/self/status: transparent huge pages are a Linux setting, shown per process",
)
def test_a_run_turns_off_transparent_huge_pages_unless_the_user_chose() -> None:
    """Arrow's mimalloc zeroes a 2 MiB page at each touch after giving it back: a run asks for none."""
    assert huge_pages_around_tuning({}) == ("1", "0")
    assert huge_pages_around_tuning({"MIMALLOC_ALLOW_THP": "1"}) == ("1", "1")
