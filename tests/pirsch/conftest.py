from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.harness import Faults
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.support import Loader

LAST_DAY = dt.date(2024, 3, 31)


@pytest.fixture
def simulator() -> Iterator[PirschSimulator]:
    with PirschSimulator(PirschData(days=30, last_day=LAST_DAY, sessions_per_day=(60, 120))) as server:
        yield server  # type: ignore[misc]


def loader_for(simulator: PirschSimulator, workdir: Path, **env: str) -> Loader:
    return Loader("pirsch", workdir, {**demo_plan(simulator).env, **env})


@pytest.fixture
def loader(simulator: PirschSimulator, tmp_path: Path) -> Loader:
    return loader_for(simulator, tmp_path)


def no_faults() -> Faults:
    return Faults(exempt_paths=(r"/api/v1/token$",))
