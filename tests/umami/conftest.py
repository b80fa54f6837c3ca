"""Shared pieces of the Umami tests: a simulator per test, its config as environment, day bounds as Umami sees them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from simulators.harness import Faults
from simulators.umami import UmamiData, UmamiSimulator, demo_plan
from sources.common.clock import today_utc
from sources.common.windows import DateWindow
from sources.umami.settings import ApiVersion
from tests.support import Loader

TZ = "Europe/Berlin"
TODAY = today_utc()
# Retries in tests back off in milliseconds, not seconds (no-op where the common layer lacks the override).
FAST_RETRY = {"CLICKHAUL_RETRY_BASE_DELAY": "0.02", "CLICKHAUL_RETRY_MAX_DELAY": "0.2"}


def small_data(**overrides: Any) -> UmamiData:
    values: dict[str, Any] = dict(websites=1, days=40, sessions_per_day=(25, 45), extra_paths=30)
    values.update(overrides)
    return UmamiData(**values)


@pytest.fixture(params=["2", "3"], ids=["umami2", "umami3"])
def version(request: pytest.FixtureRequest) -> ApiVersion:
    return cast(ApiVersion, request.param)


def start(**kwargs: Any) -> UmamiSimulator:
    kwargs.setdefault("data", small_data())
    kwargs.setdefault("faults", Faults(exempt_paths=(r"/auth/login$",)))
    return UmamiSimulator(**kwargs).start()


@pytest.fixture
def simulator(version: str) -> Iterator[UmamiSimulator]:
    sim = start(version=version)
    yield sim
    sim.stop()


def loader(sim: UmamiSimulator, workdir: Path, **extra: str) -> Loader:
    env = {**demo_plan(sim).env, "SOURCES__UMAMI__TIMEZONE": TZ, **FAST_RETRY, **extra}
    return Loader("umami", workdir, env)


def bounds(day: dt.date, tz: str = TZ) -> tuple[float, float]:
    """The instants the source asks for one local day: [midnight, next midnight - 1 ms] in seconds."""
    window = DateWindow(day, day, tz)
    return window.start_at.timestamp(), (int(window.end_at.timestamp() * 1000) - 1) / 1000.0
