from __future__ import annotations

import os

import pytest

from sources.common.pool import forget_clients
from sources.common.redact import forget_secrets


def pytest_configure(config: pytest.Config) -> None:
    # dlt must not read a developer's .dlt/secrets.toml or home config during tests.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # Retries keep their shape (attempt bounds, Retry-After) but with delays small enough for a test suite.
    os.environ.setdefault("CLICKHAUL_RETRY_BASE_DELAY", "0.01")
    os.environ.setdefault("CLICKHAUL_RETRY_MAX_DELAY", "0.1")
    os.environ.setdefault("CLICKHAUL_RETRY_AFTER_FLOOR", "0.01")
    # Simulators reuse ports and accounts across tests: no test paces itself for another's requests (the memory
    # is tested on its own, tests/webtrekk/test_limit_memory.py).
    os.environ.setdefault("CLICKHAUL_RATE_LIMIT_MEMORY", "off")


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    forget_secrets()
    forget_clients()  # simulators reuse ports: a client cached by an earlier test must not leak into this one
