from __future__ import annotations

import os

import pytest

from sources.common import redact


def pytest_configure(config: pytest.Config) -> None:
    # dlt must not read a developer's .dlt/secrets.toml or home config during tests.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


@pytest.fixture(autouse=True)
def _clean_secret_registry() -> None:
    redact.forget_secrets()
