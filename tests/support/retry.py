"""Retries in tests: many attempts, millisecond delays, so fault tests finish in seconds while a 30 % fault rate
still gets through. One policy, given to code as an object or to a process as its CLICKHAUL_RETRY_* variables."""

from __future__ import annotations

import dataclasses

from sources.common.http import RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=40, base_delay=0.01, max_delay=0.05, retry_after_floor=0.01, retry_after_cap=0.05)


def retry_env(policy: RetryPolicy) -> dict[str, str]:
    """The variables that give a process `policy` (RetrySettings: CLICKHAUL_RETRY_<field without 'retry_'>)."""
    return {
        f"CLICKHAUL_RETRY_{field.name.removeprefix('retry_').upper()}": str(getattr(policy, field.name))
        for field in dataclasses.fields(policy)
    }


FAST_RETRY_ENV = retry_env(FAST_RETRY)
